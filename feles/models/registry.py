"""The model registry: a name -> a factory (input_shape, num_classes) -> torch module emitting logits."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from feles.registry import Registry

ModelFactory = Callable[[tuple[int, ...], int], nn.Module]

MODELS: Registry[ModelFactory] = Registry("model", base=nn.Module)


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A fresh model called `name` (or given as an import path `pkg.mod:factory`)."""
    return MODELS.get(name)(tuple(input_shape), num_classes)
