"""FedAvg (McMahan et al. 2017): the mean of the local models weighted by local examples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from feles.algorithms.aggregation import AggregatingServer, weighted_average
from feles.algorithms.base import ALGORITHMS, ClientAlgorithm, FederatedAlgorithm

__all__ = ["FedAvg", "FedAvgServer", "weighted_average"]


class FedAvgServer(AggregatingServer):
    """x <- sum_i (n_i / n) y_i, or the aggregation `fit.aggregation` names."""

    default_aggregation: ClassVar[str] = "fedavg"


@ALGORITHMS.register("fedavg")
class FedAvg(FederatedAlgorithm):
    server = FedAvgServer
    client = ClientAlgorithm
    param_defaults: ClassVar[Mapping[str, Any]] = {}
