"""FedDyn (Acar et al. 2021): a dynamic regulariser per device aligns local and global stationary points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from feles.algorithms.aggregation import AggregatingServer
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
from feles.algorithms.tensors import DeviceTensors, check_known_keys, select_prefix, strip_prefix, with_prefix

#: The device's gradient state grad L_i(theta_i^{t-1}): travels with the job, comes back updated.
GRADIENT = "grad/"
DEFAULT_ALPHA = 0.01


class FedDynClient(ClientAlgorithm):
    """Local objective L_i(theta) - <grad L_i(theta_i^{t-1}), theta> + alpha/2 ||theta - theta^{t-1}||^2."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.alpha = float(self.params.get("alpha", DEFAULT_ALPHA))

    def objective_term(self, task: LocalTask) -> ObjectiveTerm:
        triples = []
        for name, parameter in task.model.named_parameters():
            if parameter.requires_grad:
                anchor = task.global_weights[name].detach()
                gradient = task.extra.get(GRADIENT + name)
                triples.append((parameter, anchor, None if gradient is None else gradient.detach()))
        half_alpha = self.alpha / 2

        def dynamic_regulariser() -> torch.Tensor:
            total = torch.zeros(())
            for parameter, anchor, gradient in triples:
                total = total + half_alpha * ((parameter - anchor) ** 2).sum()
                if gradient is not None:  # zero before the device's first round
                    total = total - (gradient * parameter).sum()
            return total

        return dynamic_regulariser

    def report(self, task: LocalTask, num_steps: int) -> dict[str, torch.Tensor]:
        # grad L_i(theta_i^t) = grad L_i(theta_i^{t-1}) - alpha (theta_i^t - theta^{t-1})  (Algorithm 1)
        states = {}
        for name, parameter in task.model.named_parameters():
            if not parameter.requires_grad:
                continue
            drift = parameter.detach().to(torch.float64) - task.global_weights[name].to(torch.float64)
            state = -self.alpha * drift
            previous = task.extra.get(GRADIENT + name)
            if previous is not None:
                state += previous.to(torch.float64)
            states[GRADIENT + name] = state.to(parameter.dtype)
        return states


class FedDynServer(AggregatingServer):
    """Aggregation `feddyn` (server state h) plus each device's gradient state, kept between its jobs."""

    default_aggregation: ClassVar[str] = "feddyn"

    def __init__(self, params: Mapping[str, Any], setup: ServerSetup | None = None) -> None:
        super().__init__(params, setup)
        self.gradients = DeviceTensors()

    def job_tensors(self, device: int) -> dict[str, torch.Tensor]:
        return with_prefix(GRADIENT, self.gradients.get(device))

    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        for update in updates:
            state = strip_prefix(GRADIENT, update.extra)
            if not state:
                raise ValueError(f"feddyn: the update of device {update.device} carries no gradient state")
            self.gradients.set(update.device, state)
        return super().aggregate(global_weights, updates)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**super().state_dict(), **self.gradients.state_dict(GRADIENT)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        check_known_keys("feddyn", state, (self.AGGREGATION_PREFIX, GRADIENT))
        super().load_state_dict(select_prefix(self.AGGREGATION_PREFIX, state))
        self.gradients.load_state_dict(GRADIENT, state)


@ALGORITHMS.register("feddyn")
class FedDyn(FederatedAlgorithm):
    server = FedDynServer
    client = FedDynClient
    param_defaults: ClassVar[Mapping[str, Any]] = {"alpha": DEFAULT_ALPHA, "num_devices": None}
    validate = staticmethod(positive_parameter("alpha"))
