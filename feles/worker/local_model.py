"""The worker's one model instance and its local optimizer, reused by every job with the state of a fresh pair.

A tiny job spends most of its time on per-job set-up, not on arithmetic: `load_state_dict` walks the module
tree and checks every key (~30 us for a 650-parameter model), a new optimizer validates its parameter groups,
`state_dict()` rebuilds its ordered dict. Here the module's tensors are copied in place from a list built
once, and the optimizer is built once and emptied per job. Each job still starts exactly where a new model
loaded with `load_state_dict` and a new optimizer would (tests/unit/test_local_model.py checks the tensors
bit for bit over sequences of different jobs).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from feles.algorithms.base import LocalOptimizer
from feles.config import AlgorithmsSection
from feles.worker.sgd import SGD


def make_optimizer(parameters: list[torch.nn.Parameter], config: AlgorithmsSection) -> LocalOptimizer:
    """The local optimizer the spec names, at the spec's learning rate or the optimizer's default.

    Apart from the learning rate, each keeps torch's defaults (rmsprop: alpha 0.99, eps 1e-8; adagrad: eps
    1e-10); `momentum` applies to sgd and rmsprop, which have one. SGD is feles.worker.sgd's (torch.optim.SGD's
    update, bit for bit, without importing torch._dynamo); the others are torch.optim's.
    """
    lr, decay = config.local_learning_rate, config.weight_decay
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, momentum=config.momentum, weight_decay=decay)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(parameters, lr=lr, weight_decay=decay)
    return SGD(parameters, lr=lr, momentum=config.momentum, weight_decay=decay)


def plain_loading(module: nn.Module) -> bool:
    """Whether `load_state_dict` does nothing but copy each tensor in place (no module overrides how it loads,
    no load hooks): then copying the tensors directly loads the same values."""
    for sub in module.modules():
        if type(sub)._load_from_state_dict is not nn.Module._load_from_state_dict and not isinstance(
            sub, nn.modules.batchnorm._NormBase
        ):
            return False  # its own loading may transform what it reads (BatchNorm only fills a missing counter)
        if sub._load_state_dict_pre_hooks or sub._load_state_dict_post_hooks:
            return False
    return True


class LocalModel:
    """One module and one optimizer for every job of a worker: `load` the global weights, take a `fresh_optimizer`."""

    def __init__(self, module: nn.Module, config: AlgorithmsSection) -> None:
        self.module = module
        self.config = config
        self.parameters = list(module.parameters())
        # The module's own parameter and buffer objects, by state_dict name and in state_dict order.
        self._tensors: dict[str, torch.Tensor] = dict(module.state_dict(keep_vars=True))
        self._plain = plain_loading(module)
        self._optimizer = make_optimizer(self.parameters, config)
        # Each group's settings (lr, momentum, ...) as built: a plug-in that changes them mid-job changes only its job.
        self._settings = [{key: value for key, value in group.items() if key != "params"}
                          for group in self._optimizer.param_groups]  # fmt: skip
        # SGD, Adam and RMSprop create their state at the first step: emptied, the optimizer is as new. Adagrad
        # fills its state when built: it is built again for each job.
        self._reusable = not self._optimizer.state

    def load(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Put `weights` into the module, as `module.load_state_dict(weights)` does (strict)."""
        tensors = self._tensors
        if not self._plain or weights.keys() != tensors.keys():
            self.module.load_state_dict(weights)  # its errors name the missing and unexpected keys
            return
        with torch.no_grad():
            for name, target in tensors.items():
                source = weights[name]
                if source.shape != target.shape:
                    self.module.load_state_dict(weights)  # raises its size-mismatch error
                    return
                target.copy_(source)

    def fresh_optimizer(self) -> LocalOptimizer:
        """An optimizer over the module's parameters as `make_optimizer` builds it: no state, no gradients."""
        for parameter in self.parameters:
            parameter.grad = None
        if not self._reusable:
            return make_optimizer(self.parameters, self.config)
        self._optimizer.state.clear()
        for group, settings in zip(self._optimizer.param_groups, self._settings, strict=True):
            group.update(settings)
        return self._optimizer

    def weights(self) -> dict[str, torch.Tensor]:
        """CPU copies of the module's state, as `module.state_dict()` names and orders it."""
        return {name: tensor.detach().to("cpu", copy=True) for name, tensor in self._tensors.items()}
