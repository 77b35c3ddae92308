"""The update interface: local epochs, batch size and examples for each selected device."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from feles.config import PhaseParams
from feles.registry import Registry
from feles.strategies.selection.base import DeviceView


@dataclass(frozen=True)
class LocalWork:
    """Epochs, batch size and examples of each selected device, as arrays aligned with `devices`."""

    devices: np.ndarray
    epochs: np.ndarray
    batch_size: np.ndarray
    num_examples: np.ndarray


@dataclass(frozen=True)
class UpdateContext:
    repetition: int
    round: int
    phase: str
    selected: np.ndarray
    params: PhaseParams
    devices: DeviceView
    rng: np.random.Generator


class UpdateOptimizer(ABC):
    """An update strategy; `params` are the phase's `update_params`."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    @abstractmethod
    def plan(self, context: UpdateContext) -> LocalWork:
        """The local work of every selected device; num_examples never exceeds a device's data."""


UPDATE_OPTIMIZERS: Registry[type[UpdateOptimizer]] = Registry("update strategy", base=UpdateOptimizer)
