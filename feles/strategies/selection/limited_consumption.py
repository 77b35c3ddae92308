"""`limited_consumption`: the biggest-loss devices whose summed estimated consumption fits the budgets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import optional_number, take_params
from feles.strategies.estimates import communication_time, computation_time, planned_iterations, transferred_parameters
from feles.strategies.selection.base import SELECTORS, SelectionContext, Selector
from feles.strategies.selection.ranking import loss_scores, ranked

LIMITS = ("energy_limit", "computation_limit", "network_limit")
DEFAULTS: dict[str, Any] = dict.fromkeys(LIMITS)
OWNER = "selection limited_consumption"


@SELECTORS.register("limited_consumption")
class LimitedConsumptionSelector(Selector):
    """Up to k * devices devices, biggest last loss first (never-trained first), skipping any device whose
    consumption would overflow a budget: energy [mWh], computation [local iterations], network [parameters].

    FELES's original solved this knapsack as an integer program; the greedy order keeps it linear in the
    number of devices. The energy estimate needs the orchestrator's pow_comp_s and pow_net_s.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.limits = {key: optional_number(OWNER, key, self.params[key]) for key in LIMITS}

    def consumption(self, context: SelectionContext) -> dict[str, np.ndarray]:
        """Estimated consumption of every device (indexed by device id) for each limit that is set."""
        view = context.devices
        costs: dict[str, np.ndarray] = {}
        if self.limits["computation_limit"] is not None:
            costs["computation_limit"] = planned_iterations(context.params, view.data_sizes).astype(np.float64)
        if self.limits["network_limit"] is not None:
            costs["network_limit"] = np.full(len(view.ips), transferred_parameters(context))
        if self.limits["energy_limit"] is not None:
            if view.pow_comp_s is None or view.pow_net_s is None:
                raise RuntimeError(
                    f"{OWNER}: energy_limit needs the energy model (DeviceView.pow_comp_s and pow_net_s), "
                    "which this orchestrator does not provide"
                )
            costs["energy_limit"] = view.pow_comp_s * computation_time(context) + view.pow_net_s * communication_time(
                context
            )
        return costs

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        costs = self.consumption(context)
        spent = dict.fromkeys(costs, 0.0)
        chosen: list[int] = []
        for device in ranked(context, loss_scores(context), largest=True):
            if len(chosen) == context.size:
                break
            if all(spent[key] + costs[key][device] <= self.limits[key] for key in costs):
                for key in costs:
                    spent[key] += costs[key][device]
                chosen.append(int(device))
        return np.sort(np.asarray(chosen, dtype=np.int64))
