"""FedNova (Wang et al. 2020): plain local SGD; the server normalises each update by its local steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from feles.algorithms.aggregation import AggregatingServer
from feles.algorithms.base import ALGORITHMS, ClientAlgorithm, FederatedAlgorithm


class FedNovaServer(AggregatingServer):
    """Normalised averaging (aggregation `fednova`): x <- x - tau_eff sum_i p_i (x - y_i) / a_i."""

    default_aggregation: ClassVar[str] = "fednova"


@ALGORITHMS.register("fednova")
class FedNova(FederatedAlgorithm):
    server = FedNovaServer
    client = ClientAlgorithm
    param_defaults: ClassVar[Mapping[str, Any]] = {}
