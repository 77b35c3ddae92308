"""The real kopf operator against kmock's Kubernetes API emulator (real HTTP), with a real orchestrator.

kmock 0.8 has no garbage collector, no label selectors and no separate /status: those parts are covered by
the schema tests and the e2e suite (tests/e2e). Everything else here is the operator as it runs in a pod.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import kopf
import pytest
import pytest_asyncio
import yaml

import feles_operator  # noqa: F401  (registers the operator's handlers in kopf's default registry)
from feles_operator.simulation import names
from feles_operator.sweep import names as sweep_names

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

CRS = f"{names.API_VERSION}/{names.PLURAL}"
SWEEPS = f"{names.API_VERSION}/{sweep_names.PLURAL}"
NAMESPACE = "sims"
#: A digits simulation that finishes 2 rounds in seconds with one worker.
DIGITS = {
    "simulation": {"dataset": "digits", "model": "mlp", "num_rounds": 2, "seed": 3},
    "algorithms": {"fit": {"params": {"k": 0.3}}, "eval": {"params": {"k": 0.3}}},
    "devices": {"num": 20},
    "data": {"num_examples_mean": 60},
}


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kmock speaks plain HTTP with a fake token: kopf's minimal kubeconfig login is enough."""
    return kopf.login_with_kubeconfig(**kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """kmock with the FelesSimulation resource, and helpers to act as `kubectl` would."""

    def __init__(self, server: kmock.KubernetesEmulator) -> None:
        self.server = server
        self.uids = 0

    async def create(self, name: str, spec: dict[str, Any]) -> None:
        self.uids += 1
        body = {
            "apiVersion": names.API_VERSION,
            "kind": names.KIND,
            # kmock assigns nothing: uid, resourceVersion and generation come from the "client".
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "uid": f"uid-{name}-{self.uids}",
                "resourceVersion": "1",
                "generation": 1,
            },
            "spec": spec,
        }
        response = await self.server.post(f"/apis/{names.API_VERSION}/namespaces/{NAMESPACE}/{names.PLURAL}", json=body)
        assert response.status == 200, await response.text()

    async def patch_spec(self, name: str, spec: dict[str, Any], generation: int) -> None:
        patch = {"spec": spec, "metadata": {"generation": generation, "resourceVersion": str(generation)}}
        url = f"/apis/{names.API_VERSION}/namespaces/{NAMESPACE}/{names.PLURAL}/{name}"
        response = await self.server.patch(url, json=patch)
        assert response.status == 200, await response.text()

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        try:
            found = self.server.objects[resource, NAMESPACE, name]
        except KeyError:
            return None
        return None if found.deleted else _plain(found)

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for (resource, namespace, _), obj in list(self.server.objects.items()):
            if resource.plural == "events" and resource.group == "":
                event = _plain(obj)
                if namespace == NAMESPACE and event.get("involvedObject", {}).get("name") == name:
                    found.append(event)
        return found

    async def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


@pytest.fixture
def orchestrator_port() -> int:
    return free_port()


@pytest_asyncio.fixture
async def cluster(
    kmock: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, orchestrator_port: int
) -> AsyncIterator[Cluster]:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "kmock", "user": {"token": "kmock-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock", "namespace": NAMESPACE}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    # The operator runs "outside the cluster": it reaches the orchestrator through a URL template.
    monkeypatch.setenv("FELES_ORCHESTRATOR_URL_TEMPLATE", f"http://127.0.0.1:{orchestrator_port}")
    monkeypatch.setenv("FELES_POLL_INTERVAL", "0.3")
    monkeypatch.setenv("FELES_OPERATOR_NAMESPACE", "feles-system")
    monkeypatch.setenv("FELES_OPERATOR_LABELS", "app.kubernetes.io/name=feles-operator")
    monkeypatch.setenv("FELES_IMAGE", "registry.example/feles:test")

    kmock.resources.load_bundled()
    # Every kind the operator serves (it waits for each at startup); tests/operator/test_sweep_kmock.py uses sweeps.
    for resource, kind, subresources in ((CRS, names, {"status", "scale"}), (SWEEPS, sweep_names, {"status"})):
        kmock.resources[resource] = kmock.ResourceInfo(
            kind=kind.KIND,
            singular=kind.SINGULAR,
            namespaced=True,
            verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
            shortnames={kind.SHORT_NAME},
            subresources=subresources,
        )
    # The operator gets a thread and an event loop of its own, as in its pod: on exit kopf cancels every task
    # of its loop that it did not start with, which would include pytest's.
    stop = threading.Event()
    operator = threading.Thread(
        target=kopf.run, kwargs={"clusterwide": True, "standalone": True, "stop_flag": stop}, name="operator"
    )
    operator.start()
    helper = Cluster(kmock)
    # Objects created before kopf's watch is open would be missed by kmock's stream.
    await helper.wait_for("the operator's watch", lambda: len(kmock[kmock.action.WATCH, kmock.resource(CRS)]))
    try:
        yield helper
    finally:
        stop.set()
        await asyncio.to_thread(operator.join, 20)
        assert not operator.is_alive(), "the operator did not stop"


async def test_children_owned_scaled_and_invalid_specs_fail(cluster: Cluster) -> None:
    await cluster.create("demo", {"simulation": DIGITS, "workers": 2, "storage": {"results": {"size": "1Gi"}}})
    sts = await cluster.wait_for("the StatefulSet", lambda: cluster.get("apps/v1/statefulsets", "demo-worker"))
    cr = cluster.get(CRS, "demo")
    owner = {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "name": "demo",
        "uid": cr["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    children = {
        "v1/configmaps": "demo-spec",
        "v1/secrets": "demo-api-token",
        "v1/persistentvolumeclaims": "demo-results",
        "v1/services": "demo-orchestrator",
        "apps/v1/deployments": "demo-orchestrator",
        "networking.k8s.io/v1/networkpolicies": "demo-orchestrator",
        "apps/v1/statefulsets": "demo-worker",
    }
    for resource, name in children.items():
        child = cluster.get(resource, name)
        assert child is not None, f"{resource} {name} missing"
        assert child["metadata"]["ownerReferences"] == [owner], name
        assert child["metadata"]["labels"][names.SIMULATION_LABEL] == "demo"
    assert cluster.get("v1/services", "demo-workers")["spec"]["clusterIP"] == "None"
    assert sts["spec"]["replicas"] == 2
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/feles:test"
    spec = yaml.safe_load(cluster.get("v1/configmaps", "demo-spec")["data"]["simulation.yaml"])
    assert spec["simulation"]["dataset"] == "digits" and spec["devices"]["num"] == 20

    # No finalizer: deleting the resource never waits for the operator.
    assert not cr["metadata"].get("finalizers")
    status = await cluster.wait_for("a Pending status", lambda: cluster.get(CRS, "demo").get("status"))
    assert status["phase"] == "Pending"
    assert status["selector"] == "feles.io/simulation=demo,app.kubernetes.io/component=worker"
    assert {condition["type"] for condition in status["conditions"]} == {"Ready", "Progressing", "Completed", "Failed"}

    # kubectl scale fsim demo --replicas 5
    await cluster.patch_spec("demo", {"workers": 5}, generation=2)
    await cluster.wait_for(
        "5 replicas", lambda: cluster.get("apps/v1/statefulsets", "demo-worker")["spec"]["replicas"] == 5
    )
    await cluster.wait_for("a Scaled event", lambda: [e for e in cluster.events("demo") if e["reason"] == "Scaled"])
    created = [event for event in cluster.events("demo") if event["reason"] == "Created"]
    assert len(created) == 1 and "StatefulSet demo-worker" in created[0]["message"]
    assert not [event for event in cluster.events("demo") if event["reason"] == "Updated"]

    # A new image rolls both pod templates; the replicas stay.
    await cluster.patch_spec("demo", {"image": "registry.example/feles:next"}, generation=3)

    def rolled() -> bool:
        sts = cluster.get("apps/v1/statefulsets", "demo-worker")
        deployment = cluster.get("apps/v1/deployments", "demo-orchestrator")
        images = {obj["spec"]["template"]["spec"]["containers"][0]["image"] for obj in (sts, deployment)}
        return images == {"registry.example/feles:next"} and sts["spec"]["replicas"] == 5

    await cluster.wait_for("the new image in both templates", rolled)
    updated = await cluster.wait_for(
        "an Updated event", lambda: [e for e in cluster.events("demo") if e["reason"] == "Updated"]
    )
    assert (
        "Deployment demo-orchestrator" in updated[0]["message"] and "StatefulSet demo-worker" in updated[0]["message"]
    )
    await cluster.wait_for(
        "observedGeneration 3", lambda: cluster.get(CRS, "demo")["status"].get("observedGeneration") == 3
    )

    # A rule the CRD schema cannot express: network speeds down to 0 (speed_var not below speed_mean).
    bad = {**DIGITS, "network": {"speed_mean": 10, "speed_var": 10}}
    await cluster.create("bad", {"simulation": bad})
    status = await cluster.wait_for("a Failed status", lambda: (cluster.get(CRS, "bad") or {}).get("status"))
    assert status["phase"] == "Failed"
    assert "spec.simulation.network.speed_var" in status["message"]
    failed = next(item for item in status["conditions"] if item["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "InvalidSpec")
    assert cluster.get("apps/v1/deployments", "bad-orchestrator") is None
    assert cluster.get("v1/secrets", "bad-api-token") is None
    warnings = [event for event in cluster.events("bad") if event["type"] == "Warning"]
    assert warnings and warnings[0]["reason"] == "InvalidSpec"


def _local(args: list[str], replacements: dict[str, str]) -> list[str]:
    return [replacements.get(arg, arg) for arg in args]


async def _run_to_succeeded(cluster: Cluster, name: str, port: int, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """Run the pods' command lines of the FelesSimulation `name` on 127.0.0.1 until its status says Succeeded.

    Returns the status and the API token (the pods would get it from the Secret).
    """
    deployment = await cluster.wait_for(
        "the Deployment", lambda: cluster.get("apps/v1/deployments", f"{name}-orchestrator")
    )
    sts = await cluster.wait_for("the StatefulSet", lambda: cluster.get("apps/v1/statefulsets", f"{name}-worker"))
    token = base64.b64decode(cluster.get("v1/secrets", f"{name}-api-token")["data"]["token"]).decode()
    spec_file = tmp_path / "simulation.yaml"
    spec_file.write_text(cluster.get("v1/configmaps", f"{name}-spec")["data"]["simulation.yaml"])

    url = f"http://127.0.0.1:{port}"
    replacements = {
        "/etc/feles/simulation.yaml": str(spec_file),
        "0.0.0.0": "127.0.0.1",
        "8080": str(port),
        "/results": str(tmp_path / "results"),
        f"http://{name}-orchestrator.sims.svc:8080": url,
        "$(POD_NAME)": f"{name}-worker-0",
    }
    orchestrator_args = _local(deployment["spec"]["template"]["spec"]["containers"][0]["args"], replacements)
    worker_args = _local(sts["spec"]["template"]["spec"]["containers"][0]["args"], replacements)
    environment = {**os.environ, "FELES_API_TOKEN": token}
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = []
    try:
        for component, args in (("orchestrator", orchestrator_args), ("worker", worker_args)):
            with (logs / f"{component}.log").open("wb") as log:
                command = [sys.executable, "-m", "feles", *args]
                processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment))
        try:
            status = await cluster.wait_for(
                "phase Succeeded",
                lambda: (
                    (cluster.get(CRS, name).get("status") or {}).get("phase") == "Succeeded"
                    and cluster.get(CRS, name)["status"]
                ),
                timeout=120,
            )
        except AssertionError:
            for log in logs.iterdir():
                print(log.name, log.read_text(errors="replace")[-3000:])
            print("status:", cluster.get(CRS, name).get("status"))
            raise
    finally:
        for process in processes:
            process.kill()
            process.wait()
    return status, token


async def test_status_follows_a_real_orchestrator_to_succeeded(
    cluster: Cluster, orchestrator_port: int, tmp_path: Path
) -> None:
    await cluster.create("digits", {"simulation": DIGITS, "workers": 1})
    status, token = await _run_to_succeeded(cluster, "digits", orchestrator_port, tmp_path)

    assert status["round"] == 2 and status["rounds"] == 2 and status["roundProgress"] == "2/2"
    assert status["repetitionProgress"] == "1/1" and status["stopReason"] == "RoundsCompleted"
    assert 0 <= status["accuracy"] <= 1 and status["loss"] > 0 and status["simulatedTime"] > 0
    assert (status["metric"], status["metricValue"]) == ("accuracy", status["accuracy"])
    assert status["startTime"] <= status["completionTime"]
    assert status["observedGeneration"] == 1 and "unreachableSince" not in status
    conditions = {item["type"]: item for item in status["conditions"]}
    assert (conditions["Completed"]["status"], conditions["Completed"]["reason"]) == ("True", "RoundsCompleted")
    assert (conditions["Progressing"]["status"], conditions["Failed"]["status"]) == ("False", "False")
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "OrchestratorReady")
    assert (tmp_path / "results" / "results.json").is_file()

    # Over: the workers go (they would exit and be restarted), the orchestrator stays for /v1/results.
    await cluster.wait_for(
        "workers scaled to 0", lambda: cluster.get("apps/v1/statefulsets", "digits-worker")["spec"]["replicas"] == 0
    )
    assert cluster.get("apps/v1/deployments", "digits-orchestrator")["spec"]["replicas"] == 1
    await cluster.wait_for(
        "the WorkersReleased event", lambda: [e for e in cluster.events("digits") if e["reason"] == "WorkersReleased"]
    )
    events = cluster.events("digits")
    reasons = [event["reason"] for event in events]
    rounds = sorted(event["message"] for event in events if event["reason"] == "RoundFinished")
    assert len(rounds) == 2 and "round 1/2 finished" in rounds[0] and "round 2/2 finished" in rounds[1]
    assert "test accuracy" in rounds[1]
    for reason in ("Created", "OrchestratorReady", "SimulationStarted", "SimulationSucceeded"):
        assert reasons.count(reason) == 1, (reason, reasons)
    assert all(event["involvedObject"]["uid"] == cluster.get(CRS, "digits")["metadata"]["uid"] for event in events)
    # The token never leaks into what `kubectl get/describe` shows.
    assert token not in repr(cluster.get(CRS, "digits")) and token not in repr(events)


#: A diabetes regression that finishes 2 rounds in seconds with one worker; its metric is the mean absolute error.
DIABETES = {
    "simulation": {"dataset": "diabetes", "metric": "mae", "num_rounds": 2, "seed": 3, "test_shard_size": 50},
    "algorithms": {"fit": {"params": {"k": 0.5, "epochs": 2}}, "eval": {"params": {"k": 0.5}}},
    "devices": {"num": 8, "p_available": 1.0, "p_fail": 0.0},
    "data": {"num_examples_mean": 40, "num_examples_var": 5},
}


async def test_a_regression_run_shows_its_mae_in_status_and_events(
    cluster: Cluster, orchestrator_port: int, tmp_path: Path
) -> None:
    await cluster.create("diabetes", {"simulation": DIABETES, "workers": 1})
    status, _ = await _run_to_succeeded(cluster, "diabetes", orchestrator_port, tmp_path)

    results = json.loads((tmp_path / "results" / "results.json").read_text())
    final_mae = results["repetitions"][0]["final_test_mae"]
    assert status["metric"] == "mae" and status["metricValue"] == pytest.approx(final_mae, abs=1e-4)
    assert status["metricValue"] > 1 and "accuracy" not in status  # an error in the targets' units, no accuracy
    await cluster.wait_for(
        "the SimulationSucceeded event",
        lambda: [e for e in cluster.events("diabetes") if e["reason"] == "SimulationSucceeded"],
    )
    events = cluster.events("diabetes")
    last_round = next(event["message"] for event in events if "round 2/2 finished" in event["message"])
    assert f"test mae {status['metricValue']:.4f}, loss" in last_round
    succeeded = next(event["message"] for event in events if event["reason"] == "SimulationSucceeded")
    assert succeeded.startswith(f"RoundsCompleted: test mae {status['metricValue']:.4f}")
    assert not [event for event in events if "accuracy" in event["message"]]
