"""Deterministic model initialisation by name, without touching torch's global random state."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from feles.registry import Registry

# Initialises a freshly reset model in place, drawing from torch's RNG (seeded and forked by the caller).
ModelInitializer = Callable[[nn.Module], None]
# Fills one weight matrix or kernel in place.
WeightInit = Callable[[torch.Tensor], object]

INITIALIZERS: Registry[ModelInitializer] = Registry("initializer")


def initialize_model(model: nn.Module, initializer: str, seed: int) -> None:
    """Re-initialise every parameter of `model` from `seed`; the same seed gives the same weights."""
    apply_initializer = INITIALIZERS.get(initializer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # Reset first so the result depends on the seed only, not on the model's earlier state.
        for module in model.modules():
            if module is not model and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        apply_initializer(model)


@INITIALIZERS.register("default")
def keep_torch_default(model: nn.Module) -> None:
    """Torch's own per-layer initialisation, as left by reset_parameters()."""


def layerwise(weight_init: WeightInit) -> ModelInitializer:
    """An initializer applying `weight_init` to every weight matrix or kernel and zeroing its bias."""

    def apply(model: nn.Module) -> None:
        with torch.no_grad():
            for module in model.modules():
                weight = getattr(module, "weight", None)
                # 1-D weights (normalisation scales) keep their default of ones.
                if not isinstance(weight, nn.Parameter) or weight.dim() < 2:
                    continue
                weight_init(weight)
                bias = getattr(module, "bias", None)
                if isinstance(bias, nn.Parameter):
                    bias.zero_()

    return apply


INITIALIZERS.register("xavier_uniform")(layerwise(nn.init.xavier_uniform_))
INITIALIZERS.register("kaiming_uniform")(layerwise(nn.init.kaiming_uniform_))
INITIALIZERS.register("zeros")(layerwise(nn.init.zeros_))
