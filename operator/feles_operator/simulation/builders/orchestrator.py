"""The orchestrator: a one-replica Deployment (Recreate: never two on one checkpoint) and its Service."""

from __future__ import annotations

from typing import Any

from feles_operator.simulation import names
from feles_operator.simulation.builders.common import (
    TEMPLATE_HASH_ANNOTATION,
    Simulation,
    container,
    data_args,
    data_volume,
    digest,
    labels,
    metadata,
    pod_spec,
    threads,
    tmp_volume,
    token_env,
)
from feles_operator.simulation.builders.config import results_claim_name

SPEC_PATH = f"{names.CONFIG_DIR}/{names.SPEC_KEY}"


def orchestrator_args(sim: Simulation) -> list[str]:
    """`feles orchestrator ...`: serve on all addresses, results to the volume, keep serving when done."""
    return [
        "orchestrator",
        "--config",
        SPEC_PATH,
        "--host",
        "0.0.0.0",
        "--port",
        str(names.API_PORT),
        "--output-folder",
        names.RESULTS_DIR,
        "--threads",
        str(threads(sim, names.ORCHESTRATOR)),
        *data_args(sim),
    ]


def probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def orchestrator_pod_template(sim: Simulation) -> dict[str, Any]:
    tmp, tmp_mount = tmp_volume()
    claim = results_claim_name(sim)
    results: dict[str, Any] = {"name": "results"}
    if claim is None:
        results["emptyDir"] = {}
    else:
        results["persistentVolumeClaim"] = {"claimName": claim}
    volumes = [
        {"name": "spec", "configMap": {"name": names.spec_config_map(sim.name)}},
        results,
        tmp,
    ]
    mounts = [
        {"name": "spec", "mountPath": names.CONFIG_DIR, "readOnly": True},
        {"name": "results", "mountPath": names.RESULTS_DIR},
        tmp_mount,
    ]
    data = data_volume(sim)
    if data is not None:
        volumes.append(data[0])
        mounts.append(data[1])
    main = container(sim, names.ORCHESTRATOR, orchestrator_args(sim), [token_env(sim)], mounts)
    main["ports"] = [{"name": "http", "containerPort": names.API_PORT, "protocol": "TCP"}]
    # Loading a dataset and importing torch take a while: the startup probe holds the liveness probe back.
    main["startupProbe"] = probe("/healthz", period=5, failures=60)
    main["livenessProbe"] = probe("/healthz", period=10, failures=6)
    # /readyz answers 503 until the first model is published: the Service sends workers only then.
    main["readinessProbe"] = probe("/readyz", period=5, failures=3)
    return {
        "metadata": {"labels": labels(sim, names.ORCHESTRATOR)},
        "spec": pod_spec(sim, names.ORCHESTRATOR, main, volumes),
    }


def orchestrator_deployment(sim: Simulation) -> dict[str, Any]:
    template = orchestrator_pod_template(sim)
    annotations = {TEMPLATE_HASH_ANNOTATION: digest(template)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(sim, names.orchestrator(sim.name), names.ORCHESTRATOR, annotations),
        "spec": {
            "replicas": 1,
            # Two orchestrators must never write one checkpoint: the old pod goes before the new one starts.
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": names.selector_labels(sim.name, names.ORCHESTRATOR)},
            "template": template,
        },
    }


def orchestrator_service(sim: Simulation) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(sim, names.orchestrator(sim.name), names.ORCHESTRATOR),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector_labels(sim.name, names.ORCHESTRATOR),
            "ports": [{"name": "http", "port": names.API_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
