"""The two halves of a federated algorithm and the registry that names them; `factory` builds them from a spec."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

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


class LocalOptimizer(Protocol):
    """What local training uses of an optimizer: torch.optim's parameter groups and step (feles.worker.sgd.SGD
    has them too)."""

    param_groups: list[dict[str, Any]]
    #: Per-parameter state (momentum buffers, moments), emptied before each job.
    state: Any

    def step(self) -> Any: ...


@dataclass
class LocalTask:
    """One fit job prepared by the worker: a model holding the global weights and the local data."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    epochs: int
    batch_size: int
    optimizer: LocalOptimizer
    generator: torch.Generator
    global_weights: Mapping[str, torch.Tensor]
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)
    #: The task's loss on a batch: cross-entropy (classification) or mean squared error (regression).
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy

    @property
    def learning_rate(self) -> float:
        """The local optimizer's learning rate (SCAFFOLD's eta_l)."""
        return float(self.optimizer.param_groups[0]["lr"])


@dataclass(frozen=True)
class LocalOutcome:
    """What local training reports besides the model: mean loss, steps, and algorithm tensors."""

    loss: float
    num_steps: int
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)


#: One extra term of the local objective, evaluated at the model's current weights.
ObjectiveTerm = Callable[[], torch.Tensor | None]


class ClientAlgorithm:
    """The worker half: local training; subclasses add a term to the local objective."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def regularizer(self, task: LocalTask) -> torch.Tensor | None:
        """An extra term of the local objective (FedProx's proximal term, ...); none for FedAvg."""
        return None

    def objective_term(self, task: LocalTask) -> ObjectiveTerm:
        """The extra term for one job, set up once per job; by default `regularizer` at every step."""
        return lambda: self.regularizer(task)

    def report(self, task: LocalTask, num_steps: int) -> dict[str, torch.Tensor]:
        """Tensors sent back with the trained model (SCAFFOLD's control variate change, ...)."""
        return {}

    def train(self, task: LocalTask) -> LocalOutcome:
        """Mini-batch training for `epochs` passes over the local data in a seeded order."""
        term = self.objective_term(task)
        task.model.train()
        n = len(task.y)
        total, steps = 0.0, 0
        for _ in range(task.epochs):
            # Drawn on the generator's device (the CPU), then moved: the same order on any device.
            order = torch.randperm(n, generator=task.generator).to(task.x.device)
            for start in range(0, n, task.batch_size):
                batch = order[start : start + task.batch_size]
                clear_gradients(task.optimizer)
                loss = task.loss(task.model(task.x[batch]), task.y[batch])
                extra = term()
                objective = loss if extra is None else loss + extra
                objective.backward()
                task.optimizer.step()
                total += loss.item()
                steps += 1
        return LocalOutcome(loss=total / max(steps, 1), num_steps=steps, extra=self.report(task, steps))


def clear_gradients(optimizer: LocalOptimizer) -> None:
    """What `optimizer.zero_grad(set_to_none=True)` does, without its profiling wrapper (~10 us a step, as much as
    a tiny model's forward pass)."""
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            parameter.grad = None


@dataclass(frozen=True)
class ServerSetup:
    """What an orchestrator half may know besides its parameters: the algorithms section and the device count."""

    config: AlgorithmsSection = field(default_factory=AlgorithmsSection)
    num_devices: int | None = None

    @property
    def aggregation(self) -> str | None:
        """The spec's `fit.aggregation` (None: the algorithm's own)."""
        return self.config.fit.aggregation


class ServerAlgorithm(ABC):
    """The orchestrator half: turns the round's updates into the next global weights."""

    def __init__(self, params: Mapping[str, Any], setup: ServerSetup | None = None) -> None:
        self.params = dict(params)
        self.setup = setup or ServerSetup()

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
    """Names the two halves of an algorithm; register subclasses in ALGORITHMS.

    `param_defaults` lists the `algorithm_params` keys both halves read, with their defaults; None skips
    validation (plug-ins that read free-form parameters). `fit_model_copies` is how many model-sized
    tensors a fit job moves each way over the simulated network (the model down and the update up: 1;
    SCAFFOLD adds its control variates: 2).
    """

    server: ClassVar[type[ServerAlgorithm]]
    client: ClassVar[type[ClientAlgorithm]]
    param_defaults: ClassVar[Mapping[str, Any] | None] = None
    fit_model_copies: ClassVar[int] = 1


ALGORITHMS: Registry[type[FederatedAlgorithm]] = Registry("federated algorithm", base=FederatedAlgorithm)


def positive_parameter(name: str) -> Callable[[Mapping[str, Any]], None]:
    """A `validate` for algorithms whose one parameter `name` must be a number > 0 (not a bool)."""

    def validate(values: Mapping[str, Any]) -> None:
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")

    return validate
