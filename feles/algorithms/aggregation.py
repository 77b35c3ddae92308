"""Aggregation strategies (`fit.aggregation`): how a round's local models become the next global model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from feles.algorithms.base import DeviceUpdate, FederatedAlgorithm, ServerAlgorithm, ServerSetup
from feles.algorithms.tensors import check_known_keys, map_float_tensors, ordered_sum, strip_prefix, with_prefix
from feles.registry import Registry


class Aggregation(ABC):
    """One aggregation rule; it reads the `param_defaults` keys of `algorithm_params` and may keep state."""

    param_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, params: Mapping[str, Any], setup: ServerSetup) -> None:
        self.values = {key: params.get(key, default) for key, default in self.param_defaults.items()}
        self.setup = setup

    @abstractmethod
    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        """The aggregated model; `updates` are sorted by device id and never empty."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        check_known_keys(f"aggregation {type(self).__name__}", state, ())


AGGREGATIONS: Registry[type[Aggregation]] = Registry("aggregation strategy", base=Aggregation)


def default_aggregation(algorithm: type[FederatedAlgorithm]) -> str:
    """The aggregation an algorithm uses when `fit.aggregation` is not set."""
    return getattr(algorithm.server, "default_aggregation", "fedavg")


def weighted_average(updates: Sequence[DeviceUpdate], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Per-tensor weighted mean in update order; integer tensors (counters) come from the first update."""
    total = float(sum(weights))
    shares = [weight / total for weight in weights]

    def mean(name: str, first: torch.Tensor) -> torch.Tensor:
        # In update order, as `total += tensor * share` one update after another (bit for bit).
        return ordered_sum([update.tensors[name] for update in updates], shares)

    return map_float_tensors(updates[0].tensors, mean)


def required_num_devices(owner: str, values: Mapping[str, Any], setup: ServerSetup) -> int:
    """N, the number of devices: from the orchestrator (devices.num) or `algorithm_params.num_devices`."""
    given, known = values.get("num_devices"), setup.num_devices
    if given is not None and (not isinstance(given, int) or isinstance(given, bool) or given < 1):
        raise ValueError(f"{owner}: algorithm_params.num_devices must be an integer >= 1, got {given!r}")
    if given is not None and known is not None and given != known:
        raise ValueError(f"{owner}: algorithm_params.num_devices = {given} differs from devices.num = {known}")
    number = known if known is not None else given
    if number is None:
        raise ValueError(
            f"{owner} needs the number of devices N: the orchestrator passes devices.num "
            "(build_server(config, num_devices=...)); or set algorithm_params.num_devices"
        )
    return number


@AGGREGATIONS.register("fedavg")
class FedAvgAggregation(Aggregation):
    """McMahan et al. 2017: x <- sum_i (n_i / n) y_i, the example-weighted mean of the local models."""

    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        return weighted_average(updates, [update.num_examples for update in updates])


def fednova_norm(steps: int, momentum: float = 0.0, learning_rate: float = 0.0, mu: float = 0.0) -> float:
    """||a_i||_1 of FedNova (Wang et al. 2020, Sec. 4): the total weight local SGD gives its gradients.

    x - y_i = eta * sum_k a_ik g_ik is linear in the gradients, so ||a_i||_1 is the response to unit gradients
    of SGD with momentum rho and FedProx's pull mu (y - x); it is tau_i for vanilla SGD and
    sum_k (1 - rho^k) / (1 - rho) with momentum.
    """
    if momentum == 0.0 and mu == 0.0:
        return float(steps)
    buffer = offset = 0.0  # momentum buffer and (y - x) / eta under unit gradients
    for _ in range(steps):
        buffer = momentum * buffer + 1.0 + mu * learning_rate * offset
        offset -= buffer
    return -offset


@AGGREGATIONS.register("fednova")
class FedNovaAggregation(Aggregation):
    """Wang et al. 2020: d_i = (x - y_i) / a_i, x <- x - tau_eff sum_i p_i d_i, tau_eff = sum_i p_i a_i.

    a_i = ||a_i||_1 follows from the device's local steps and the spec's SGD settings (and FedProx's mu), so
    devices that ran more steps no longer pull the model toward their own optimum (objective inconsistency).
    """

    def __init__(self, params: Mapping[str, Any], setup: ServerSetup) -> None:
        super().__init__(params, setup)
        config = setup.config
        if config.optimizer != "sgd":
            raise ValueError(
                f"aggregation fednova normalises SGD updates (Wang et al. 2020); optimizer {config.optimizer!r} "
                "has no normalising vector a_i: use optimizer sgd"
            )
        self.momentum = config.momentum
        self.learning_rate = config.local_learning_rate
        self.mu = float(params.get("mu", 0.0))  # FedProx's proximal term changes a_i

    def norm(self, steps: int) -> float:
        return fednova_norm(steps, self.momentum, self.learning_rate, self.mu)

    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        total = float(sum(update.num_examples for update in updates))
        shares = [update.num_examples / total for update in updates]
        norms = [self.norm(update.num_steps) for update in updates]
        tau_eff = sum(p * a for p, a in zip(shares, norms, strict=True))

        def step(name: str, first: torch.Tensor) -> torch.Tensor:
            x = global_weights[name].to(torch.float64)
            direction = torch.zeros_like(x)
            for update, p, a in zip(updates, shares, norms, strict=True):
                direction += (p / a) * (x - update.tensors[name].to(torch.float64))
            return x - tau_eff * direction

        return map_float_tensors(updates[0].tensors, step)


@AGGREGATIONS.register("feddyn")
class FedDynAggregation(Aggregation):
    """Acar et al. 2021: h <- h - alpha (1/m) sum_k (theta_k - theta), theta <- mean_k(theta_k) - h / alpha."""

    param_defaults: ClassVar[Mapping[str, Any]] = {"alpha": 0.01, "num_devices": None}
    PREFIX = "h/"

    def __init__(self, params: Mapping[str, Any], setup: ServerSetup) -> None:
        super().__init__(params, setup)
        self.alpha = float(self.values["alpha"])
        if not self.alpha > 0:
            raise ValueError(f"aggregation feddyn: alpha must be > 0, got {self.alpha!r}")
        self.num_devices = required_num_devices("aggregation feddyn", self.values, setup)
        self.h: dict[str, torch.Tensor] = {}

    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        def step(name: str, first: torch.Tensor) -> torch.Tensor:
            previous = global_weights[name].to(torch.float64)
            total = torch.zeros_like(previous)
            for update in updates:
                total += update.tensors[name].to(torch.float64)
            h = self.h.get(name, torch.zeros_like(previous)).to(torch.float64)
            h = h - self.alpha / self.num_devices * (total - len(updates) * previous)
            self.h[name] = h.to(first.dtype)
            return total / len(updates) - h / self.alpha

        return map_float_tensors(updates[0].tensors, step)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return with_prefix(self.PREFIX, self.h)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        check_known_keys("aggregation feddyn", state, (self.PREFIX,))
        self.h = {name: tensor.clone() for name, tensor in strip_prefix(self.PREFIX, state).items()}


class AggregatingServer(ServerAlgorithm):
    """An orchestrator half whose model update is an aggregation strategy: `fit.aggregation` or its own default."""

    default_aggregation: ClassVar[str] = "fedavg"
    AGGREGATION_PREFIX = "aggregation/"

    def __init__(self, params: Mapping[str, Any], setup: ServerSetup | None = None) -> None:
        super().__init__(params, setup)
        name = self.setup.aggregation or self.default_aggregation
        self.aggregation = AGGREGATIONS.get(name)(self.params, self.setup)

    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        return self.aggregation.aggregate(global_weights, updates)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return with_prefix(self.AGGREGATION_PREFIX, self.aggregation.state_dict())

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        check_known_keys(type(self).__name__, state, (self.AGGREGATION_PREFIX,))
        self.aggregation.load_state_dict(strip_prefix(self.AGGREGATION_PREFIX, state))
