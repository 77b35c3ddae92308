"""Federated algorithms: an orchestrator half (aggregation, server state) and a worker half each."""

# Importing the modules registers the built-ins: fedavg, fedprox, fednova, scaffold, feddyn and the aggregations.
from feles.algorithms import fedavg, feddyn, fednova, fedprox, scaffold  # noqa: F401
from feles.algorithms.aggregation import (
    AGGREGATIONS,
    AggregatingServer,
    Aggregation,
    default_aggregation,
    weighted_average,
)
from feles.algorithms.base import (
    ALGORITHMS,
    ClientAlgorithm,
    DeviceUpdate,
    FederatedAlgorithm,
    LocalOutcome,
    LocalTask,
    ObjectiveTerm,
    ServerAlgorithm,
    ServerSetup,
)
from feles.algorithms.factory import algorithm_params, build_client, build_server, resolve_algorithm

__all__ = [
    "AGGREGATIONS",
    "ALGORITHMS",
    "AggregatingServer",
    "Aggregation",
    "ClientAlgorithm",
    "DeviceUpdate",
    "FederatedAlgorithm",
    "LocalOutcome",
    "LocalTask",
    "ObjectiveTerm",
    "ServerAlgorithm",
    "ServerSetup",
    "algorithm_params",
    "build_client",
    "build_server",
    "default_aggregation",
    "resolve_algorithm",
    "weighted_average",
]
