"""Federated algorithms: an orchestrator half (aggregation, server state) and a worker half each."""

from feles.algorithms import fedavg as _fedavg  # noqa: F401  (registers "fedavg")
from feles.algorithms.base import (
    ALGORITHMS,
    ClientAlgorithm,
    DeviceUpdate,
    FederatedAlgorithm,
    LocalOutcome,
    LocalTask,
    ServerAlgorithm,
    build_client,
    build_server,
    resolve_algorithm,
)

__all__ = [
    "ALGORITHMS",
    "ClientAlgorithm",
    "DeviceUpdate",
    "FederatedAlgorithm",
    "LocalOutcome",
    "LocalTask",
    "ServerAlgorithm",
    "build_client",
    "build_server",
    "resolve_algorithm",
]
