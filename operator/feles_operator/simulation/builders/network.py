"""The NetworkPolicy: only this simulation's workers and the operator reach its orchestrator's API."""

from __future__ import annotations

from typing import Any

from feles_operator.simulation import names
from feles_operator.simulation.builders.common import Simulation, metadata


def orchestrator_network_policy(sim: Simulation) -> dict[str, Any]:
    peers: list[dict[str, Any]] = [{"podSelector": {"matchLabels": names.selector_labels(sim.name, names.WORKER)}}]
    settings = sim.settings
    if settings.operator_namespace:
        operator: dict[str, Any] = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.operator_namespace}},
        }
        # Without the operator's labels, any pod of its namespace may call (a looser but working rule).
        operator["podSelector"] = {"matchLabels": dict(settings.operator_labels)} if settings.operator_labels else {}
        peers.append(operator)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(sim, names.orchestrator(sim.name), names.ORCHESTRATOR),
        "spec": {
            "podSelector": {"matchLabels": names.selector_labels(sim.name, names.ORCHESTRATOR)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": names.API_PORT}]}],
        },
    }
