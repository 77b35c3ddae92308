"""`loss_and_fairness` (Cho et al. 2020, UCB-CS): exploit devices with a large local loss, explore the rest."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import number, take_params
from feles.strategies.selection.base import SELECTORS, SelectionContext
from feles.strategies.selection.history_based import HistoryBasedSelector
from feles.strategies.selection.ranking import loss_scores, top

DEFAULTS = {"exploration": 1.0}


@SELECTORS.register("loss_and_fairness")
class LossAndFairnessSelector(HistoryBasedSelector):
    """Largest upper confidence bound A_i = loss_i + sigma * sqrt(2 ln(t) / n_i).

    loss_i is the device's last local loss (UCB-CS's discounted mean loss in the limit of a short memory,
    which tracks a loss that falls as the model trains); n_i its completed fit jobs; t = round + 1.
    A device never trained has an infinite bound, so every device is explored before any is repeated.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params("selection loss_and_fairness", params, DEFAULTS))
        self.exploration = number("selection loss_and_fairness", "exploration", self.params["exploration"], minimum=0)

    def bounds(self, context: SelectionContext) -> np.ndarray:
        """A_i of every device (indexed by device id)."""
        completed = context.devices.times_completed.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):  # n_i = 0 is handled below
            bonus = np.sqrt(2.0 * math.log(context.round + 1) / completed)
        bounds = loss_scores(context) + self.exploration * bonus
        return np.where(completed > 0, bounds, np.inf)

    def select_from_history(self, context: SelectionContext) -> np.ndarray:
        return top(context, self.bounds(context), context.size, largest=True)
