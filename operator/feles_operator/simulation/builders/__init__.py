"""Pure builders of a FelesSimulation's children: a parsed spec in, Kubernetes objects (dicts) out."""

from __future__ import annotations

from typing import Any

from feles_operator.simulation.builders.common import Simulation
from feles_operator.simulation.builders.config import results_claim, simulation_hash, spec_config_map, token_secret
from feles_operator.simulation.builders.network import orchestrator_network_policy
from feles_operator.simulation.builders.orchestrator import orchestrator_deployment, orchestrator_service
from feles_operator.simulation.builders.workers import worker_stateful_set, workers_service

__all__ = [
    "Simulation",
    "build_children",
    "orchestrator_deployment",
    "orchestrator_network_policy",
    "orchestrator_service",
    "results_claim",
    "simulation_hash",
    "spec_config_map",
    "token_secret",
    "worker_stateful_set",
    "workers_service",
]


def build_children(sim: Simulation, token: str, replicas: int) -> list[dict[str, Any]]:
    """Every child, in creation order: what a pod mounts exists before the pod."""
    children = [spec_config_map(sim), token_secret(sim, token)]
    claim = results_claim(sim)
    if claim is not None:
        children.append(claim)
    children += [orchestrator_service(sim), orchestrator_deployment(sim)]
    if sim.settings.network_policy:
        children.append(orchestrator_network_policy(sim))
    children += [workers_service(sim), worker_stateful_set(sim, replicas)]
    return children
