"""`best_round_time`: the devices whose job this round is estimated to finish first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import take_params
from feles.strategies.estimates import round_time
from feles.strategies.selection.base import SELECTORS, SelectionContext, Selector
from feles.strategies.selection.ranking import top


@SELECTORS.register("best_round_time")
class BestRoundTimeSelector(Selector):
    """Smallest E*ceil(N/B)/ips + transfers*P/net_speed, from the resources each device reports this round."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params("selection best_round_time", params, {}))

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        return top(context, round_time(context), context.size, largest=False)
