"""`best_time_expected`: a weighted trade-off of speed, stability and fairness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import PluginParamsError, number, take_params
from feles.strategies.estimates import expected_time, observed_times
from feles.strategies.selection.base import SELECTORS, SelectionContext, Selector
from feles.strategies.selection.ranking import top

DEFAULTS = {"speed": 0.5, "stability": 0.0, "fairness": 0.5}
OWNER = "selection best_time_expected"


@SELECTORS.register("best_time_expected")
class BestTimeExpectedSelector(Selector):
    """Smallest w_speed * q_i + w_stability * s_i + w_fairness * n_i * mean(q), all in seconds.

    q_i is the quadratic mean of the device's observed fit times (this round's estimate if it has none), s_i
    their standard deviation (0 without two observations), n_i the times it was selected.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.weights = {key: number(OWNER, key, self.params[key], minimum=0.0) for key in DEFAULTS}
        if sum(self.weights.values()) == 0:
            raise PluginParamsError(f"{OWNER}: speed, stability and fairness cannot all be 0")

    def scores(self, context: SelectionContext) -> np.ndarray:
        """The score of every device (indexed by device id); lower is better."""
        speed = expected_time(context)
        _, spread = observed_times(context.devices)
        spread = np.nan_to_num(spread, nan=0.0)
        # The fairness term turns a selection count into seconds, so the three weights are comparable.
        typical = float(speed[context.available].mean()) if len(context.available) else 0.0
        fairness = context.devices.times_selected * typical
        w = self.weights
        return w["speed"] * speed + w["stability"] * spread + w["fairness"] * fairness

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        return top(context, self.scores(context), context.size, largest=False)
