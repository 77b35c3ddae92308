"""`best_time_expected`: a weighted trade-off of speed, stability and fairness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import PluginParamsError, number, take_params
from feles.strategies.estimates import observed_times
from feles.strategies.selection.base import SELECTORS, SelectionContext
from feles.strategies.selection.history_based import HistoryBasedSelector
from feles.strategies.selection.ranking import top

#: The original FELES's weights.
DEFAULTS = {"speed": 0.34, "stability": 0.33, "fairness": 0.33}
OWNER = "selection best_time_expected"


@SELECTORS.register("best_time_expected")
class BestTimeExpectedSelector(HistoryBasedSelector):
    """Smallest w_speed * q_i + w_stability * s_i + w_fairness * n_i * mean(q), all in seconds.

    q_i is the quadratic mean of the device's observed fit times, 0 if it has none (as in the original:
    with n_i = 0 too, a device never seen scores 0 and is tried first); s_i their standard deviation (0
    without two observations); n_i the times it was selected; mean(q) over the devices with an observation.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.weights = {key: number(OWNER, key, self.params[key], minimum=0.0) for key in DEFAULTS}
        if sum(self.weights.values()) == 0:
            raise PluginParamsError(f"{OWNER}: speed, stability and fairness cannot all be 0")

    def scores(self, context: SelectionContext) -> np.ndarray:
        """The score of every device (indexed by device id); lower is better."""
        observed, spread = observed_times(context.devices)
        seen = observed[~np.isnan(observed)]
        # The fairness term turns a selection count into seconds, so the three weights are comparable.
        typical = float(seen.mean()) if len(seen) else 0.0
        speed = np.nan_to_num(observed, nan=0.0)
        fairness = context.devices.times_selected * typical
        w = self.weights
        return w["speed"] * speed + w["stability"] * np.nan_to_num(spread, nan=0.0) + w["fairness"] * fairness

    def select_from_history(self, context: SelectionContext) -> np.ndarray:
        return top(context, self.scores(context), context.size, largest=False)
