"""The workers: a StatefulSet (stable pod names = stable worker names) and its headless Service."""

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


def worker_args(sim: Simulation) -> list[str]:
    """`feles worker ...` against the orchestrator's Service, named after its pod."""
    return [
        "worker",
        "--orchestrator",
        sim.orchestrator_service_url,
        "--name",
        "$(POD_NAME)",
        "--threads",
        str(threads(sim, names.WORKER)),
        "--metrics-port",
        str(names.WORKER_METRICS_PORT),
        *data_args(sim),
    ]


def worker_pod_template(sim: Simulation) -> dict[str, Any]:
    tmp, tmp_mount = tmp_volume()
    volumes, mounts = [tmp], [tmp_mount]
    data = data_volume(sim)
    if data is not None:
        volumes.append(data[0])
        mounts.append(data[1])
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, token_env(sim)]
    main = container(sim, names.WORKER, worker_args(sim), env, mounts)
    main["ports"] = [{"name": "metrics", "containerPort": names.WORKER_METRICS_PORT, "protocol": "TCP"}]
    return {
        "metadata": {"labels": labels(sim, names.WORKER)},
        "spec": pod_spec(sim, names.WORKER, main, volumes),
    }


def worker_stateful_set(sim: Simulation, replicas: int) -> dict[str, Any]:
    template = worker_pod_template(sim)
    annotations = {TEMPLATE_HASH_ANNOTATION: digest(template)}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(sim, names.workers(sim.name), names.WORKER, annotations),
        "spec": {
            "replicas": replicas,
            "serviceName": names.workers_service(sim.name),
            # Workers are interchangeable: start and stop them all at once, not one by one.
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": names.selector_labels(sim.name, names.WORKER)},
            "template": template,
        },
    }


def workers_service(sim: Simulation) -> dict[str, Any]:
    """Headless: gives each worker pod a DNS name; nothing connects to the workers."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(sim, names.workers_service(sim.name), names.WORKER),
        "spec": {
            "clusterIP": "None",
            "selector": names.selector_labels(sim.name, names.WORKER),
            "publishNotReadyAddresses": True,
        },
    }
