"""End to end on a real cluster (kind, k3d, ...): helm install, a simulation to Succeeded, scale, delete; a sweep.

Opt-in: set FELES_E2E_KUBECONFIG to the cluster's kubeconfig; the image must be pullable there, e.g.

    docker build -t feles:0.1.0 . && kind load docker-image feles:0.1.0
    FELES_E2E_KUBECONFIG=~/.kube/config python -m pytest tests/e2e -v

FELES_E2E_IMAGE overrides the image (default feles:<version>); FELES_E2E_KEEP=1 leaves everything installed.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

KUBECONFIG = os.environ.get("FELES_E2E_KUBECONFIG")
pytestmark = [
    pytest.mark.skipif(not KUBECONFIG, reason="set FELES_E2E_KUBECONFIG to run against a real cluster"),
    pytest.mark.timeout(1200),
]
ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("FELES_E2E_IMAGE") or f"feles:{importlib.metadata.version('feles')}"
OPERATOR_NAMESPACE = "feles-e2e-system"
#: A digits simulation: small enough for a laptop's kind cluster, long enough to scale it while it runs.
SIMULATION = {
    "simulation": {"dataset": "digits", "model": "mlp", "num_rounds": 6, "seed": 1},
    "algorithms": {"fit": {"params": {"k": 0.3, "epochs": 2}}, "eval": {"params": {"k": 0.3}}},
    "devices": {"num": 20},
    "data": {"num_examples_mean": 60},
}
SMALL_PODS = {"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}


def binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    from tests.operator.tools import tool

    return str(tool(name))


def run(
    command: str, *arguments: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(Path(KUBECONFIG or "").expanduser())}
    result = subprocess.run(
        [binary(command), *arguments], capture_output=True, text=True, env=env, input=stdin, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command} {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def kubectl(*arguments: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run("kubectl", *arguments, check=check, stdin=stdin)


def get(kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def wait_for(what: str, check: Callable[[], Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def simulation(name: str, spec: dict[str, Any]) -> str:
    document = {"apiVersion": "feles.io/v1alpha1", "kind": "FelesSimulation", "metadata": {"name": name}, "spec": spec}
    return yaml.safe_dump(document)


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    """The CRD and the operator (Helm), and a fresh namespace for the simulations."""
    repository, _, tag = IMAGE.rpartition(":")
    run(
        "helm", "upgrade", "--install", "feles-e2e", str(ROOT / "charts" / "feles"),
        "--namespace", OPERATOR_NAMESPACE, "--create-namespace", "--wait", "--timeout", "5m",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "simulations.pollInterval=2",
    )  # fmt: skip
    kubectl("wait", "--for=condition=Established", "crd/felessimulations.feles.io", "--timeout=60s")
    name = f"feles-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    try:
        yield name
    finally:
        if not os.environ.get("FELES_E2E_KEEP"):
            kubectl("delete", "namespace", name, "--wait=false", check=False)
            run("helm", "uninstall", "feles-e2e", "--namespace", OPERATOR_NAMESPACE, check=False)


def test_admission_rejects_invalid_specs_naming_the_field(namespace: str) -> None:
    bad = {**SIMULATION, "algorithms": {"fit": {"params": {"k": 0}}}}
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=simulation("bad-k", {"simulation": bad}), check=False)
    assert result.returncode != 0 and "spec.simulation.algorithms.fit.params.k" in result.stderr


def test_semantic_errors_fail_the_resource(namespace: str) -> None:
    spec = {"simulation": {**SIMULATION, "devices": {"num": 3}, "algorithms": {"fit": {"params": {"k": 0.1}}}}}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=simulation("too-few", spec))
    status = wait_for("Failed", lambda: (get("fsim", "too-few", namespace) or {}).get("status") or {}, 60)
    assert status["phase"] == "Failed" and "spec.simulation.algorithms.fit.params.k" in status["message"]
    assert get("deployment", "too-few-orchestrator", namespace) is None


def test_a_simulation_from_apply_to_delete(namespace: str) -> None:
    spec = {"simulation": SIMULATION, "workers": 1, "orchestrator": SMALL_PODS, "worker": SMALL_PODS}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=simulation("digits", spec))
    resource = wait_for(
        "the status",
        lambda: (get("fsim", "digits", namespace) or {}).get("status") and get("fsim", "digits", namespace),
    )
    assert not resource["metadata"].get("finalizers")  # deletion never waits for the operator

    # spec.simulation is immutable (CEL), spec.workers is not.
    patch = json.dumps({"spec": {"simulation": {"simulation": {"num_rounds": 99}}}})
    result = kubectl("patch", "fsim", "digits", "-n", namespace, "--type=merge", "-p", patch, check=False)
    assert result.returncode != 0 and "immutable" in result.stderr
    kubectl("scale", "fsim", "digits", "-n", namespace, "--replicas", "2")
    wait_for("2 worker replicas", lambda: get("statefulset", "digits-worker", namespace)["spec"]["replicas"] == 2, 60)

    def succeeded() -> dict[str, Any] | None:
        status = (get("fsim", "digits", namespace) or {}).get("status") or {}
        assert status.get("phase") != "Failed", status
        return status if status.get("phase") == "Succeeded" else None

    status = wait_for("Succeeded", succeeded, 900)
    assert status["roundProgress"] == "6/6" and status["stopReason"] == "RoundsCompleted"
    table = kubectl("get", "fsim", "digits", "-n", namespace).stdout
    assert table.split()[:8] == ["NAME", "PHASE", "ROUND", "METRIC", "VALUE", "LOSS", "WORKERS", "AGE"]
    assert table.split()[11] == "accuracy"  # the row: name, phase, round, then the metric by name
    assert "Succeeded" in table and "6/6" in table
    wait_for("workers at 0", lambda: get("statefulset", "digits-worker", namespace)["spec"]["replicas"] == 0, 60)
    events = kubectl("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=digits").stdout
    assert "RoundFinished" in events and "SimulationSucceeded" in events

    # The orchestrator stays to serve /v1/results.
    token = base64.b64decode(get("secret", "digits-api-token", namespace)["data"]["token"]).decode()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "KUBECONFIG": str(Path(KUBECONFIG or "").expanduser())}
    forward = subprocess.Popen(
        [binary("kubectl"), "port-forward", "-n", namespace, "svc/digits-orchestrator", f"{port}:8080"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def results() -> dict[str, Any] | None:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/v1/results", headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.TransportError:
                return None
            return response.json() if response.status_code == 200 else None

        document = wait_for("/v1/results", results, 60)
        assert len(document["rounds"]) == 6
    finally:
        forward.kill()

    kubectl("delete", "fsim", "digits", "-n", namespace, "--timeout=60s")
    for kind, name in [
        ("deployment", "digits-orchestrator"), ("statefulset", "digits-worker"), ("service", "digits-orchestrator"),
        ("secret", "digits-api-token"), ("configmap", "digits-spec"), ("networkpolicy", "digits-orchestrator"),
    ]:  # fmt: skip
        wait_for(
            f"{kind} {name} garbage-collected", lambda kind=kind, name=name: get(kind, name, namespace) is None, 120
        )


def test_a_sweep_runs_its_cells_within_parallelism_and_deletes_them_with_it(namespace: str) -> None:
    kubectl("wait", "--for=condition=Established", "crd/felessweeps.feles.io", "--timeout=60s")
    base = {**SIMULATION, "simulation": {**SIMULATION["simulation"], "num_rounds": 2}}
    spec = {
        "base": base,
        "axes": [{"path": "data.non_iid_partitions", "values": [0.5, 10.0], "name": "alpha"}],
        "seeds": [1],
        "parallelism": 1,
        "template": {"workers": 1, "orchestrator": SMALL_PODS, "worker": SMALL_PODS},
    }
    document = {"apiVersion": "feles.io/v1alpha1", "kind": "FelesSweep", "metadata": {"name": "grid"}, "spec": spec}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(document))
    cells = ["grid-alpha-0p5-seed-1", "grid-alpha-10-seed-1"]
    most_unfinished = 0

    def succeeded() -> dict[str, Any] | None:
        nonlocal most_unfinished
        found = json.loads(kubectl("get", "fsim", "-n", namespace, "-l", "feles.io/sweep=grid", "-o", "json").stdout)
        phases = [(item.get("status") or {}).get("phase") for item in found["items"]]
        most_unfinished = max(most_unfinished, sum(phase not in ("Succeeded", "Failed") for phase in phases))
        status = (get("fsweep", "grid", namespace) or {}).get("status") or {}
        assert status.get("phase") != "Failed", status
        return status if status.get("phase") == "Succeeded" else None

    status = wait_for("the sweep Succeeded", succeeded, 900)
    assert most_unfinished == 1  # parallelism 1: the second cell waited for the first
    assert (status["progress"], status["running"], status["best"]["metric"]) == ("2/2", 0, "accuracy")
    assert status["best"]["simulation"] in cells
    table = kubectl("get", "fsweep", "grid", "-n", namespace).stdout
    assert table.split()[:6] == ["NAME", "PHASE", "DONE/TOTAL", "RUNNING", "BEST", "AGE"] and "2/2" in table
    for cell in cells:
        owners = get("fsim", cell, namespace)["metadata"]["ownerReferences"]
        assert [(owner["kind"], owner["name"]) for owner in owners] == [("FelesSweep", "grid")]

    kubectl("delete", "fsweep", "grid", "-n", namespace, "--timeout=60s")
    for cell in cells:
        wait_for(f"{cell} garbage-collected", lambda cell=cell: get("fsim", cell, namespace) is None, 120)
