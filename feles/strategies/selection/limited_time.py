"""`limited_time`: a random choice among the devices whose estimated times respect the limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import boolean, optional_number, take_params
from feles.strategies.estimates import communication_time, computation_time
from feles.strategies.selection.base import SELECTORS, SelectionContext, Selector

LIMITS = ("computation_time_limit", "communication_time_limit", "total_time_limit")
DEFAULTS: dict[str, Any] = {**dict.fromkeys(LIMITS), "auto": False}
OWNER = "selection limited_time"


def automatic_limit(times: np.ndarray) -> float:
    """Mean plus mean absolute deviation: excludes the devices far slower than the rest."""
    mean = float(times.mean())
    return mean + float(np.abs(times - mean).mean())


@SELECTORS.register("limited_time")
class LimitedTimeSelector(Selector):
    """Uniform sample of the available devices within every limit [s] (fewer than k * devices if few qualify).

    With `auto: true`, each limit left unset becomes the mean plus the mean absolute deviation of that
    estimate over the available devices.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.limits = {key: optional_number(OWNER, key, self.params[key], positive=True) for key in LIMITS}
        self.auto = boolean(OWNER, "auto", self.params["auto"])

    def eligible(self, context: SelectionContext) -> np.ndarray:
        """Ids of the available devices whose estimates respect the limits."""
        candidates = context.available
        computation = computation_time(context)[candidates]
        communication = communication_time(context)[candidates]
        estimates = {
            "computation_time_limit": computation,
            "communication_time_limit": communication,
            "total_time_limit": computation + communication,
        }
        keep = np.ones(len(candidates), dtype=bool)
        for key, times in estimates.items():
            limit = self.limits[key]
            if limit is None and self.auto and len(times):
                limit = automatic_limit(times)
            if limit is not None:
                keep &= times <= limit
        return candidates[keep]

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        eligible = self.eligible(context)
        count = min(context.size, len(eligible))
        return np.sort(context.rng.choice(eligible, size=count, replace=False))
