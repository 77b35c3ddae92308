"""SCAFFOLD (Karimireddy et al. 2020): control variates correct the client drift of local SGD."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from feles.algorithms.aggregation import AggregatingServer, required_num_devices
from feles.algorithms.base import (
    ALGORITHMS,
    ClientAlgorithm,
    DeviceUpdate,
    FederatedAlgorithm,
    LocalTask,
    ObjectiveTerm,
    ServerSetup,
    positive_parameter,
)
from feles.algorithms.tensors import (
    DeviceTensors,
    add_into,
    check_known_keys,
    map_float_tensors,
    select_prefix,
    strip_prefix,
    with_prefix,
)

#: Names of the tensors that travel: the server variate c and the device's c_i with the job, delta c_i back.
SERVER_VARIATE, DEVICE_VARIATE, VARIATE_CHANGE = "c/", "ci/", "delta_c/"


class ScaffoldClient(ClientAlgorithm):
    """Local steps y <- y - eta_l (g_i(y) - c_i + c); option II control update on the way back."""

    def objective_term(self, task: LocalTask) -> ObjectiveTerm:
        # The linear term <c - c_i, y> adds exactly c - c_i to every gradient (Algorithm 1, line 10).
        pairs = []
        for name, parameter in task.model.named_parameters():
            c, c_i = task.extra.get(SERVER_VARIATE + name), task.extra.get(DEVICE_VARIATE + name)
            if not parameter.requires_grad or (c is None and c_i is None):
                continue  # a zero variate (first round, new device) corrects nothing
            correction = torch.zeros_like(parameter)
            if c is not None:
                correction += c
            if c_i is not None:
                correction -= c_i
            pairs.append((parameter, correction.detach()))
        if not pairs:
            return lambda: None
        return lambda: sum((parameter * correction).sum() for parameter, correction in pairs)

    def report(self, task: LocalTask, num_steps: int) -> dict[str, torch.Tensor]:
        # Option II (eq. 4): c_i+ = c_i - c + (x - y_i) / (K eta_l), so delta c_i = -c + (x - y_i) / (K eta_l).
        scale = 1.0 / (max(num_steps, 1) * task.learning_rate)
        changes = {}
        for name, parameter in task.model.named_parameters():
            if not parameter.requires_grad:
                continue
            x = task.global_weights[name].to(torch.float64)
            change = (x - parameter.detach().to(torch.float64)) * scale
            c = task.extra.get(SERVER_VARIATE + name)
            if c is not None:
                change -= c.to(torch.float64)
            changes[VARIATE_CHANGE + name] = change.to(parameter.dtype)
        return changes


class ScaffoldServer(AggregatingServer):
    """x <- x + eta_g (aggregate - x); c <- c + (1/N) sum_{i in S} delta c_i (Algorithm 1, lines 16-17)."""

    default_aggregation: ClassVar[str] = "fedavg"

    def __init__(self, params: Mapping[str, Any], setup: ServerSetup | None = None) -> None:
        super().__init__(params, setup)
        self.server_learning_rate = float(self.params.get("server_learning_rate", 1.0))
        self.num_devices = required_num_devices("scaffold", self.params, self.setup)
        self.c: dict[str, torch.Tensor] = {}
        self.c_i = DeviceTensors()

    def job_tensors(self, device: int) -> dict[str, torch.Tensor]:
        return {**with_prefix(SERVER_VARIATE, self.c), **with_prefix(DEVICE_VARIATE, self.c_i.get(device))}

    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        merged = self.aggregation.aggregate(global_weights, updates)
        if self.server_learning_rate != 1.0:

            def step(name: str, value: torch.Tensor) -> torch.Tensor:
                x = global_weights[name].to(torch.float64)
                return x + self.server_learning_rate * (value.to(torch.float64) - x)

            merged = map_float_tensors(merged, step)
        total: dict[str, torch.Tensor] = {}
        for update in updates:
            change = strip_prefix(VARIATE_CHANGE, update.extra)
            if not change:
                raise ValueError(f"scaffold: the update of device {update.device} carries no control variate change")
            c_i = self.c_i.get(update.device)
            add_into(c_i, change)
            self.c_i.set(update.device, c_i)
            add_into(total, change)
        add_into(self.c, total, 1.0 / self.num_devices)
        return merged

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            **super().state_dict(),
            **with_prefix(SERVER_VARIATE, self.c),
            **self.c_i.state_dict(DEVICE_VARIATE),
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        check_known_keys("scaffold", state, (self.AGGREGATION_PREFIX, SERVER_VARIATE, DEVICE_VARIATE))
        super().load_state_dict(select_prefix(self.AGGREGATION_PREFIX, state))
        self.c = {name: tensor.clone() for name, tensor in strip_prefix(SERVER_VARIATE, state).items()}
        self.c_i.load_state_dict(DEVICE_VARIATE, state)


@ALGORITHMS.register("scaffold")
class Scaffold(FederatedAlgorithm):
    server = ScaffoldServer
    client = ScaffoldClient
    param_defaults: ClassVar[Mapping[str, Any]] = {"server_learning_rate": 1.0, "num_devices": None}
    validate = staticmethod(positive_parameter("server_learning_rate"))
    # Down: the model and the server's control variate; up: the model and the device's control variate change.
    fit_model_copies: ClassVar[int] = 2
