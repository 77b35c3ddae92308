"""Stochastic gradient descent with momentum and weight decay, the update of torch.optim.SGD without torch.optim.

Why not torch.optim.SGD: its first use imports torch._dynamo (its methods are wrapped by `torch._disable_dynamo`
and `step` marks graph breaks), which costs each worker about 0.9 s in its first job and 71 MiB of memory, and
its `step` spends ~100 us of Python per call, a third of a tiny model's training step. This class performs
torch.optim.SGD's single-tensor update (what it runs for CPU tensors) in the same operations and order, so the
weights are the same bits (tests/unit/test_sgd.py compares them step by step).
"""

from __future__ import annotations

from typing import Any

import torch


class SGD:
    """SGD over `parameters` with torch.optim.SGD's `lr`, `momentum` (dampening 0, no Nesterov) and
    `weight_decay`; the same `param_groups` and `state` surface for the local training loop."""

    def __init__(
        self, parameters: list[torch.nn.Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        if lr < 0.0 or momentum < 0.0 or weight_decay < 0.0:
            raise ValueError(f"invalid SGD setting: lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        settings = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "dampening": 0.0}
        self.param_groups: list[dict[str, Any]] = [{"params": list(parameters), **settings}]
        #: Per parameter, its momentum buffer (as torch.optim.SGD keeps it), once a step has made one.
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, momentum, decay, dampening = group["lr"], group["momentum"], group["weight_decay"], group["dampening"]
            for parameter in group["params"]:
                grad = parameter.grad
                if grad is None:
                    continue
                if decay != 0:
                    grad = grad.add(parameter, alpha=decay)
                if momentum != 0:
                    grad = self._momentum(parameter, grad, momentum, dampening)
                parameter.add_(grad, alpha=-lr)

    def _momentum(self, parameter: torch.Tensor, grad: torch.Tensor, momentum: float, dampening: float) -> torch.Tensor:
        state = self.state.setdefault(parameter, {})
        buffer = state.get("momentum_buffer")
        if buffer is None:
            buffer = state["momentum_buffer"] = grad.detach().clone()
        else:
            buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
        return buffer
