"""The two halves of a federated algorithm and the registry that names them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from feles.config import AlgorithmsSection
from feles.registry import Registry


@dataclass(frozen=True)
class DeviceUpdate:
    """A device's fit result as the orchestrator half sees it."""

    device: int
    num_examples: int
    num_steps: int
    loss: float
    tensors: Mapping[str, torch.Tensor]
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class LocalTask:
    """One fit job prepared by the worker: a model holding the global weights and the local data."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    epochs: int
    batch_size: int
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    global_weights: Mapping[str, torch.Tensor]
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalOutcome:
    """What local training reports besides the model: mean loss, steps, and algorithm tensors."""

    loss: float
    num_steps: int
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)


class ClientAlgorithm:
    """The worker half: local training; subclasses add a term to the local objective."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def regularizer(self, task: LocalTask) -> torch.Tensor | None:
        """An extra term of the local objective (FedProx's proximal term, ...); none for FedAvg."""
        return None

    def train(self, task: LocalTask) -> LocalOutcome:
        """Mini-batch training for `epochs` passes over the local data in a seeded order."""
        loss_fn = nn.CrossEntropyLoss()
        task.model.train()
        n = len(task.y)
        total, steps = 0.0, 0
        for _ in range(task.epochs):
            order = torch.randperm(n, generator=task.generator)
            for start in range(0, n, task.batch_size):
                batch = order[start : start + task.batch_size]
                task.optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(task.model(task.x[batch]), task.y[batch])
                extra = self.regularizer(task)
                objective = loss if extra is None else loss + extra
                objective.backward()
                task.optimizer.step()
                total += loss.item()
                steps += 1
        return LocalOutcome(loss=total / max(steps, 1), num_steps=steps)


class ServerAlgorithm(ABC):
    """The orchestrator half: turns the round's updates into the next global weights."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    @abstractmethod
    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        """The next global weights; `updates` come sorted by device id and are never empty."""

    def job_tensors(self, device: int) -> dict[str, torch.Tensor]:
        """Tensors that travel with the device's fit job (SCAFFOLD's control variates, ...)."""
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Server state to checkpoint (control variates, ...); FedAvg has none."""
        return {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:  # noqa: B027  (stateless default)
        """Restore what state_dict returned."""


class FederatedAlgorithm:
    """Names the two halves of an algorithm; register subclasses in ALGORITHMS."""

    server: ClassVar[type[ServerAlgorithm]]
    client: ClassVar[type[ClientAlgorithm]]


ALGORITHMS: Registry[type[FederatedAlgorithm]] = Registry("federated algorithm")


def resolve_algorithm(name: str) -> type[FederatedAlgorithm]:
    """The algorithm registered as `name` (or imported from `pkg.mod:Class`)."""
    return ALGORITHMS.get(name)


def build_server(config: AlgorithmsSection) -> ServerAlgorithm:
    """The orchestrator half the spec's `algorithms` section asks for."""
    return resolve_algorithm(config.federated_algorithm).server(config.algorithm_params)


def build_client(config: AlgorithmsSection) -> ClientAlgorithm:
    """The worker half the spec's `algorithms` section asks for."""
    return resolve_algorithm(config.federated_algorithm).client(config.algorithm_params)
