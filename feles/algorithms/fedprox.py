"""FedProx (Li et al. 2020): local objective F_k(w) + mu/2 ||w - w^t||^2, FedAvg aggregation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from feles.algorithms.aggregation import AggregatingServer
from feles.algorithms.base import ALGORITHMS, ClientAlgorithm, FederatedAlgorithm, LocalTask, ObjectiveTerm


class FedProxClient(ClientAlgorithm):
    """Adds the proximal term (Li et al. 2020, eq. 2) that keeps the local model near the global one."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.mu = float(self.params.get("mu", FedProx.param_defaults["mu"]))

    def objective_term(self, task: LocalTask) -> ObjectiveTerm:
        if self.mu == 0.0:
            # No term at all, not a zero term: mu = 0 must reproduce FedAvg bit for bit.
            return lambda: None
        pairs = [
            (parameter, task.global_weights[name].detach())
            for name, parameter in task.model.named_parameters()
            if parameter.requires_grad
        ]
        half_mu = self.mu / 2

        def proximal() -> torch.Tensor:
            return half_mu * sum(((parameter - anchor) ** 2).sum() for parameter, anchor in pairs)

        return proximal


class FedProxServer(AggregatingServer):
    """FedProx's server is FedAvg's (the heterogeneity handling is all in the local objective)."""


@ALGORITHMS.register("fedprox")
class FedProx(FederatedAlgorithm):
    server = FedProxServer
    client = FedProxClient
    param_defaults: ClassVar[Mapping[str, Any]] = {"mu": 0.01}

    @staticmethod
    def validate(values: Mapping[str, Any]) -> None:
        mu = values["mu"]
        if isinstance(mu, bool) or not isinstance(mu, int | float) or mu < 0:
            raise ValueError(f"mu must be a number >= 0, got {mu!r}")
