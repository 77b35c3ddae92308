"""Stacked training: several devices' local SGD of one model in one pass, the models stacked along a new axis.

Each step computes every task's gradient at once (`torch.func.vmap` over `grad` of a `functional_call`) and
applies torch's SGD update (weight decay, momentum) to the stacked parameters. The tasks must share the model,
the number of examples, epochs and batch size, so that every step's batches have one shape; each task keeps its
own batch order from its own CPU generator. Batched kernels sum in another order than one model's kernels, so
the results match one-by-one training within float tolerance, not bit for bit (docs/accelerators.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from feles.algorithms import ClientAlgorithm
from feles.algorithms.fedprox import FedProxClient
from feles.config import AlgorithmsSection

#: Layers whose forward pass is deterministic and keeps no state: a model built of these (and containers of
#: them) trains the same stacked as alone. Dropout, batch norm and recurrent layers fall back to one by one.
STACKABLE_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.ReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Flatten,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.Identity,
)


@dataclass(frozen=True)
class LocalRule:
    """The local update every stacked task follows: SGD at `lr` with momentum and weight decay, and FedProx's mu."""

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    mu: float = 0.0


@dataclass
class StackedTask:
    """One device's local training: its examples and the CPU generator of its batch order."""

    x: torch.Tensor
    y: torch.Tensor
    generator: torch.Generator


@dataclass(frozen=True)
class StackedOutcome:
    """One task's trained model (CPU tensors, the model's state_dict names), mean training loss and steps."""

    weights: dict[str, torch.Tensor]
    loss: float
    num_steps: int


def local_rule(config: AlgorithmsSection, client: ClientAlgorithm) -> LocalRule | None:
    """The rule of the spec's local training, or None when stacking does not apply to it.

    Applies to plain SGD under FedAvg, FedNova (whose worker half is FedAvg's) and FedProx; SCAFFOLD's and
    FedDyn's extra tensors and the adaptive optimizers (per-parameter state) train one by one.
    """
    if config.optimizer != "sgd":
        return None
    if type(client) is ClientAlgorithm:
        return LocalRule(config.local_learning_rate, config.momentum, config.weight_decay)
    if type(client) is FedProxClient:
        return LocalRule(config.local_learning_rate, config.momentum, config.weight_decay, client.mu)
    return None


def stackable_model(model: nn.Module) -> bool:
    """Whether the model has no buffers and only layers of STACKABLE_LAYERS (containers aside)."""
    if next(model.buffers(), None) is not None:
        return False
    leaves = [module for module in model.modules() if next(module.children(), None) is None]
    return all(isinstance(module, STACKABLE_LAYERS) for module in leaves)


def train_stacked(
    model: nn.Module,
    weights: Mapping[str, torch.Tensor],
    tasks: Sequence[StackedTask],
    epochs: int,
    batch_size: int,
    rule: LocalRule,
) -> list[StackedOutcome]:
    """Train a copy of `weights` on each task's examples as ClientAlgorithm.train would, all at once.

    `model` is the architecture (its own weights are not used); every task has the same number of examples.
    The parameters and examples live on the model's device; a random op in the model's forward pass raises
    (vmap refuses randomness), so nothing random is ever silently shared between tasks.
    """
    sizes = {len(task.y) for task in tasks}
    if len(sizes) != 1:
        raise ValueError(f"stacked tasks need the same number of examples, got {sorted(sizes)}")
    device = next(model.parameters()).device
    names = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    anchor = {name: weights[name].to(device) for name in names}
    params = {name: anchor[name].unsqueeze(0).repeat(len(tasks), *[1] * anchor[name].dim()) for name in names}
    step = vmap(grad(_objective(model, rule.mu), has_aux=True), in_dims=(0, None, 0, 0))
    buffers: dict[str, torch.Tensor] = {}
    totals, steps, n = [0.0] * len(tasks), 0, sizes.pop()
    for _ in range(epochs):
        orders = [torch.randperm(n, generator=task.generator).to(device) for task in tasks]
        for start in range(0, n, batch_size):
            batches = [order[start : start + batch_size] for order in orders]
            x = torch.stack([task.x[batch] for task, batch in zip(tasks, batches, strict=True)])
            y = torch.stack([task.y[batch] for task, batch in zip(tasks, batches, strict=True)])
            grads, losses = step(params, anchor, x, y)
            _sgd_step(params, grads, buffers, rule)
            for index, loss in enumerate(losses.tolist()):
                totals[index] += loss
            steps += 1
    return [_outcome(weights, params, index, totals[index], steps) for index in range(len(tasks))]


Objective = Callable[
    [dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]


def _objective(model: nn.Module, mu: float) -> Objective:
    """One task's objective (loss + proximal term) and, as grad's aux output, its loss alone."""
    half_mu = mu / 2

    def objective(
        params: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loss = nn.functional.cross_entropy(functional_call(model, params, (x,)), y)
        if mu == 0.0:
            return loss, loss.detach()
        # FedProx's term as FedProxClient writes it: the same sum, in the same parameter order.
        proximal = half_mu * sum(((params[name] - anchor[name]) ** 2).sum() for name in params)
        return loss + proximal, loss.detach()

    return objective


def _sgd_step(
    params: dict[str, torch.Tensor],
    grads: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    rule: LocalRule,
) -> None:
    """torch.optim.SGD's update (dampening 0, no Nesterov), element for element, on the stacked tensors."""
    for name, parameter in params.items():
        gradient = grads[name]
        if rule.weight_decay != 0:
            gradient = gradient.add(parameter, alpha=rule.weight_decay)
        if rule.momentum != 0:
            if name not in buffers:
                buffers[name] = gradient.detach().clone()
            else:
                buffers[name].mul_(rule.momentum).add_(gradient)
            gradient = buffers[name]
        parameter.add_(gradient, alpha=-rule.lr)


def _outcome(
    start: Mapping[str, torch.Tensor], params: dict[str, torch.Tensor], index: int, total: float, steps: int
) -> StackedOutcome:
    weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in start.items()}  # frozen ones
    weights.update({name: stacked[index].detach().to("cpu", copy=True) for name, stacked in params.items()})
    return StackedOutcome(weights=weights, loss=total / max(steps, 1), num_steps=steps)
