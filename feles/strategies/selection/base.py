"""The selection interface: `select_devices(context) -> device ids`."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from feles.config import PhaseParams
from feles.registry import Registry


@dataclass(frozen=True)
class DeviceView:
    """Device state a strategy may read (arrays indexed by device id; never write to them).

    ips and data sizes are fixed per repetition; net_speed and energy (left this round) are the
    round's; the history arrays count fit phases: times selected/failed, last round selected
    (-1 = never), last local training loss (NaN = never trained).
    """

    ips: np.ndarray
    data_sizes: np.ndarray
    net_speed: np.ndarray
    energy: np.ndarray
    times_selected: np.ndarray
    times_failed: np.ndarray
    last_selected_round: np.ndarray
    last_loss: np.ndarray
    model_parameters: int


@dataclass(frozen=True)
class SelectionContext:
    """Everything a selector may read for one phase of one round."""

    repetition: int
    round: int
    phase: str
    k: float
    num_devices: int
    params: PhaseParams
    available: np.ndarray
    devices: DeviceView
    rng: np.random.Generator


def selection_size(k: float, num_devices: int, num_available: int) -> int:
    """floor(k * devices), at most the available devices."""
    # The epsilon absorbs binary rounding: 0.29 * 100 is 28.999999999999996, and the user meant 29.
    return min(math.floor(k * num_devices + 1e-9), num_available)


class Selector(ABC):
    """A selection strategy; `params` are the phase's `selection_params`."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    @abstractmethod
    def select_devices(self, context: SelectionContext) -> np.ndarray:
        """Ids of the selected devices, a subset of `context.available`."""


SELECTORS: Registry[type[Selector]] = Registry("selection strategy")
