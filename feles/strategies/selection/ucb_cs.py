"""`ucb_cs` (Cho et al. 2020, UCB-CS) as the original FELES has it: a discounted UCB of the local loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import PluginParamsError, number, take_params
from feles.strategies.estimates import planned_examples
from feles.strategies.selection.base import SELECTORS, SelectionContext
from feles.strategies.selection.history_based import HistoryBasedSelector
from feles.strategies.selection.ranking import top

#: The original FELES's discount and exploration scale.
DEFAULTS = {"gamma": 0.2, "delta": 10.0}
OWNER = "selection ucb_cs"


@SELECTORS.register("ucb_cs")
class UcbCsSelector(HistoryBasedSelector):
    """Largest A_i = p_i * (L_i + U_i) over the available devices.

    With w_r = gamma^(t - r) the weight of an earlier round r at round t: N_i = sum of w_r over the rounds
    where device i completed a fit job, L_i = the w-weighted mean of its local losses in those rounds,
    T = sum of w_r over all earlier rounds, U_i = delta * sqrt(2 ln(T / N_i)) (infinite if N_i = 0: such
    devices are explored first), p_i = the device's share of the planned examples. Round 0 is a uniform draw.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.gamma = number(OWNER, "gamma", self.params["gamma"], positive=True)
        if self.gamma > 1:
            raise PluginParamsError(f"{OWNER}: gamma must be at most 1 (1: no discount), got {self.gamma}")
        self.delta = number(OWNER, "delta", self.params["delta"], minimum=0.0)

    def indexes(self, context: SelectionContext) -> np.ndarray:
        """A_i of every device (indexed by device id)."""
        view = context.devices
        num = len(view.ips)
        t = context.round
        rounds, devices, losses = view.loss_rounds, view.loss_devices, view.loss_values
        if rounds is None or devices is None or losses is None:
            raise RuntimeError(f"{OWNER}: needs the loss log (DeviceView.loss_rounds/devices/values)")
        earlier = rounds < t
        weights = self.gamma ** (t - rounds[earlier]).astype(np.float64)
        participation = np.bincount(devices[earlier], weights=weights, minlength=num)
        weighted_loss = np.bincount(devices[earlier], weights=weights * losses[earlier], minlength=num)
        total = float(np.sum(self.gamma ** np.arange(t, 0, -1, dtype=np.float64)))
        with np.errstate(divide="ignore", invalid="ignore"):  # N_i = 0 is handled below
            exploitation = weighted_loss / participation
            # N_i <= T, so the log is >= 0; the clip absorbs rounding.
            exploration = self.delta * np.sqrt(2.0 * np.maximum(np.log(total / participation), 0.0))
        share = planned_examples(context.params, view.data_sizes).astype(np.float64)
        share = share / share.sum() if share.sum() > 0 else np.full(num, 1.0 / num)
        return np.where(participation > 0, share * (exploitation + exploration), np.inf)

    def select_from_history(self, context: SelectionContext) -> np.ndarray:
        return top(context, self.indexes(context), context.size, largest=True)
