"""`limited_time`: the biggest-loss devices among those whose times respect the limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import boolean, optional_number, take_params
from feles.strategies.estimates import communication_time, computation_time, observed_times
from feles.strategies.selection.base import SELECTORS, SelectionContext
from feles.strategies.selection.history_based import HistoryBasedSelector
from feles.strategies.selection.ranking import loss_scores, top

LIMITS = ("computation_time_limit", "communication_time_limit", "total_time_limit")
#: The original FELES's: only a total limit, of 5 s.
DEFAULTS: dict[str, Any] = {**dict.fromkeys(LIMITS), "total_time_limit": 5.0, "auto": False}
OWNER = "selection limited_time"


def automatic_limit(times: np.ndarray) -> float:
    """Mean plus mean absolute deviation: excludes the devices far slower than the rest."""
    mean = float(times.mean())
    return mean + float(np.abs(times - mean).mean())


@SELECTORS.register("limited_time")
class LimitedTimeSelector(HistoryBasedSelector):
    """The largest last losses (never-trained first) among the available devices within every limit [s];
    fewer than the phase's count if few qualify.

    Total time: the quadratic mean of the device's observed fit times, 0 if it has none (as in the original,
    an unknown device is within the limit). Computation: this round's E * ceil(N/B) / ips. Communication:
    this round's transfers / net_speed. With `auto: true`, each limit left null becomes the mean plus the
    mean absolute deviation of that time over the available devices.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.limits = {key: optional_number(OWNER, key, self.params[key], positive=True) for key in LIMITS}
        self.auto = boolean(OWNER, "auto", self.params["auto"])

    def eligible(self, context: SelectionContext) -> np.ndarray:
        """Ids of the available devices whose times respect the limits."""
        candidates = context.available
        observed, _ = observed_times(context.devices)
        times = {
            "computation_time_limit": computation_time(context)[candidates],
            "communication_time_limit": communication_time(context)[candidates],
            "total_time_limit": np.nan_to_num(observed, nan=0.0)[candidates],
        }
        keep = np.ones(len(candidates), dtype=bool)
        for key, values in times.items():
            limit = self.limits[key]
            if limit is None and self.auto and len(values):
                limit = automatic_limit(values)
            if limit is not None:
                keep &= values <= limit
        return candidates[keep]

    def select_from_history(self, context: SelectionContext) -> np.ndarray:
        eligible = self.eligible(context)
        count = min(context.size, len(eligible))
        return top(context, loss_scores(context), count, largest=True, candidates=eligible)
