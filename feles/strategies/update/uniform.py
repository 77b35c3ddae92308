"""`uniform`: E, B and N drawn uniformly from ranges, per device and round (heterogeneous local work).

The original FELES keeps E and B and draws N from [20, N): heterogeneous amounts of data, not of epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import PluginParamsError, number, optional_integer, take_params
from feles.strategies.update.base import UPDATE_OPTIMIZERS, LocalWork, UpdateContext, UpdateOptimizer

RANGES = ("epochs", "batch_size", "num_examples")
#: The original's smallest drawn N: a job on fewer examples hardly trains.
MIN_EXAMPLES = 20
DEFAULTS: dict[str, Any] = {
    **{f"{name}_{end}": None for name in RANGES for end in ("min", "max")},
    "p_heterogeneous": 1.0,
}
OWNER = "update uniform"


@UPDATE_OPTIMIZERS.register("uniform")
class UniformUpdate(UpdateOptimizer):
    """With probability p_heterogeneous a device draws E, B, N uniformly (inclusive) from the ranges,
    otherwise it takes the maximum of each; N is capped by the device's data.

    Unset bounds (the original FELES's): epochs E..E, batch_size B..B, num_examples 20..N (N: the phase's
    num_examples, or the device's data size when that is unset; a device with N < 20 keeps its N).
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        bounds = [f"{name}_{end}" for name in RANGES for end in ("min", "max")]
        self.bounds = {key: optional_integer(OWNER, key, self.params[key], minimum=1) for key in bounds}
        for name in RANGES:
            low, high = self.bounds[f"{name}_min"], self.bounds[f"{name}_max"]
            if low is not None and high is not None and low > high:
                raise PluginParamsError(f"{OWNER}: {name}_min ({low}) is larger than {name}_max ({high})")
        self.p_heterogeneous = number(OWNER, "p_heterogeneous", self.params["p_heterogeneous"], minimum=0.0)
        if self.p_heterogeneous > 1:
            raise PluginParamsError(f"{OWNER}: p_heterogeneous must be at most 1, got {self.p_heterogeneous}")

    def ranges(self, context: UpdateContext) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Inclusive (low, high) of E, B and N for each selected device."""
        n = len(context.selected)
        phase = context.params
        sizes = context.devices.data_sizes[context.selected].astype(np.int64)
        examples = sizes if phase.num_examples is None else np.minimum(sizes, phase.num_examples)
        defaults = {
            "epochs": (np.full(n, phase.epochs, np.int64), np.full(n, phase.epochs, np.int64)),
            "batch_size": (np.full(n, phase.batch_size, np.int64), np.full(n, phase.batch_size, np.int64)),
            "num_examples": (np.full(n, MIN_EXAMPLES, np.int64), examples),
        }
        ranges = {}
        for name, (low, high) in defaults.items():
            given_low, given_high = self.bounds[f"{name}_min"], self.bounds[f"{name}_max"]
            high = high if given_high is None else np.full(n, given_high, np.int64)
            low = low if given_low is None else np.full(n, given_low, np.int64)
            if name == "num_examples":
                high = np.minimum(high, sizes)
            ranges[name] = (np.minimum(low, high), high)
        return ranges

    def plan(self, context: UpdateContext) -> LocalWork:
        n = len(context.selected)
        ranges = self.ranges(context)
        heterogeneous = context.rng.random(n) < self.p_heterogeneous
        drawn = {}
        for name in RANGES:
            low, high = ranges[name]
            values = context.rng.integers(low, high, endpoint=True, size=n) if n else high
            drawn[name] = np.where(heterogeneous, values, high).astype(np.int64)
        return LocalWork(devices=context.selected, **drawn)
