"""FedAvg (McMahan et al. 2017): the mean of the local models weighted by local examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from feles.algorithms.base import (
    ALGORITHMS,
    ClientAlgorithm,
    DeviceUpdate,
    FederatedAlgorithm,
    ServerAlgorithm,
)


def weighted_average(updates: Sequence[DeviceUpdate], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Per-tensor weighted mean in update order; integer tensors (counters) come from the first update."""
    total = float(sum(weights))
    averaged: dict[str, torch.Tensor] = {}
    for name, first in updates[0].tensors.items():
        if not first.is_floating_point():
            averaged[name] = first.clone()
            continue
        accumulator = torch.zeros_like(first, dtype=torch.float64)
        for update, weight in zip(updates, weights, strict=True):
            accumulator += update.tensors[name].to(torch.float64) * (weight / total)
        averaged[name] = accumulator.to(first.dtype)
    return averaged


class FedAvgServer(ServerAlgorithm):
    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        return weighted_average(updates, [update.num_examples for update in updates])


@ALGORITHMS.register("fedavg")
class FedAvg(FederatedAlgorithm):
    server = FedAvgServer
    client = ClientAlgorithm
