"""`budgeted_fairness_rotation`: alternate fastest and biggest-loss rounds while fairness stays in budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import number, optional_number, take_params
from feles.strategies.selection.base import SELECTORS, SelectionContext
from feles.strategies.selection.history_based import HistoryBasedSelector
from feles.strategies.selection.rotation import biggest_loss, fastest, least_selected

DEFAULTS = {"fairness_budget": None, "fairness_slope": 0.125}
OWNER = "selection budgeted_fairness_rotation"


@SELECTORS.register("budgeted_fairness_rotation")
class BudgetedFairnessRotationSelector(HistoryBasedSelector):
    """Least selected devices when std(times selected) exceeds the budget; else fastest (even rounds) or
    biggest loss (odd rounds). The budget is `fairness_budget`, or `fairness_slope * round` when unset."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.budget = optional_number(OWNER, "fairness_budget", self.params["fairness_budget"])
        self.slope = number(OWNER, "fairness_slope", self.params["fairness_slope"], minimum=0.0)

    def fairness_budget(self, round_: int) -> float:
        # Counts spread as rounds accumulate, so an automatic budget grows with the round (as in FELES).
        return self.budget if self.budget is not None else self.slope * round_

    def select_from_history(self, context: SelectionContext) -> np.ndarray:
        unfairness = float(np.std(context.devices.times_selected))
        if unfairness > self.fairness_budget(context.round):
            return least_selected(context)
        # The rotation's position comes from the round number, not a counter, so a restart resumes it.
        return fastest(context) if context.round % 2 == 0 else biggest_loss(context)
