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
    (-1 = never), last local training loss (NaN = never trained). The optional fields below are None
    when the orchestrator does not provide them: the sum and the sum of squares of the simulated time
    [s] of each device's completed fit jobs, the energy model's mWh per second of computation and
    of communication, and the loss log: round, device and local loss of every completed fit job
    (three aligned arrays, in round order).
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
    time_sum: np.ndarray | None = None
    time_sq_sum: np.ndarray | None = None
    pow_comp_s: float | None = None
    pow_net_s: float | None = None
    loss_rounds: np.ndarray | None = None
    loss_devices: np.ndarray | None = None
    loss_values: np.ndarray | None = None
    fit_model_copies: int = 1

    @property
    def times_completed(self) -> np.ndarray:
        """Fit jobs each device finished (selected and not failed)."""
        return self.times_selected - self.times_failed


@dataclass(frozen=True)
class SelectionContext:
    """Everything a selector may read for one phase of one round.

    `round_times` (optional, None when the orchestrator does not provide it): the simulated fit time [s]
    of each earlier round of the repetition, in round order. `seed`: the run's seed, for a strategy that
    replays the random draws of earlier rounds (it keeps no state between rounds).
    """

    repetition: int
    round: int
    phase: str
    k: float
    num_devices: int
    params: PhaseParams
    available: np.ndarray
    devices: DeviceView
    rng: np.random.Generator
    round_times: np.ndarray | None = None
    seed: int = 0

    @property
    def size(self) -> int:
        """How many devices the phase asks for: floor(k * available devices), at least 1 if any is available."""
        return selection_size(self.k, len(self.available))


def selection_size(k: float, num_available: int) -> int:
    """floor(k * available devices), as the original FELES's int(k * available); at least 1 if any is available.

    The original could select no device at all (k * available < 1) and so run a round without training;
    FELES selects one instead, so a small k on a small population still trains.
    """
    # The epsilon absorbs binary rounding: 0.29 * 100 is 28.999999999999996, and the user meant 29.
    return min(max(math.floor(k * num_available + 1e-9), 1), num_available)


class Selector(ABC):
    """A selection strategy; `params` are the phase's `selection_params`."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    @abstractmethod
    def select_devices(self, context: SelectionContext) -> np.ndarray:
        """Ids of the selected devices, a subset of `context.available`."""


SELECTORS: Registry[type[Selector]] = Registry("selection strategy", base=Selector)
