"""`budgeted_time_rotation`: rotate biggest-loss and least-selected rounds while the mean round time is in budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import PluginParamsError, integer, optional_number, take_params
from feles.strategies.selection.base import SELECTORS, SelectionContext, Selector
from feles.strategies.selection.rotation import biggest_loss, fastest, least_selected

DEFAULTS = {"time_budget": None, "loss_rounds": 1, "fairness_rounds": 1}
OWNER = "selection budgeted_time_rotation"


@SELECTORS.register("budgeted_time_rotation")
class BudgetedTimeRotationSelector(Selector):
    """Fastest devices while the mean past fit round time exceeds the budget; otherwise a cycle of
    `loss_rounds` biggest-loss rounds then `fairness_rounds` least-selected rounds (by round number).

    The budget is `time_budget` [s], or the first round's fit time when unset. It needs the orchestrator's
    `round_times`; without them the budget is never exceeded.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.budget = optional_number(OWNER, "time_budget", self.params["time_budget"], positive=True)
        self.loss_rounds = integer(OWNER, "loss_rounds", self.params["loss_rounds"], minimum=0)
        self.fairness_rounds = integer(OWNER, "fairness_rounds", self.params["fairness_rounds"], minimum=0)
        if self.loss_rounds + self.fairness_rounds == 0:
            raise PluginParamsError(f"{OWNER}: loss_rounds and fairness_rounds cannot both be 0")

    def over_budget(self, context: SelectionContext) -> bool:
        """Whether the mean fit time of the earlier rounds exceeds the budget."""
        times = context.round_times
        if times is None or len(times) == 0:
            return False
        budget = self.budget if self.budget is not None else float(times[0])
        return float(np.mean(times)) > budget

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        if self.over_budget(context):
            return fastest(context)
        position = context.round % (self.loss_rounds + self.fairness_rounds)
        return biggest_loss(context) if position < self.loss_rounds else least_selected(context)
