"""`limited_consumption`: the integer program of the original FELES, k devices of small 1/loss within budgets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import optional_number, take_params
from feles.strategies.estimates import communication_time, computation_time, planned_iterations, transferred_parameters
from feles.strategies.selection.base import SELECTORS, SelectionContext
from feles.strategies.selection.history_based import HistoryBasedSelector

LIMITS = ("energy_limit", "computation_limit", "network_limit")
#: The original FELES's: an energy budget of 3,400 mWh per round, no other.
DEFAULTS: dict[str, Any] = {**dict.fromkeys(LIMITS), "energy_limit": 3400.0}
OWNER = "selection limited_consumption"
#: Losses below this count as this: 1/loss stays finite for the solver.
SMALLEST_LOSS = 1e-6


def inverse_losses(last_loss: np.ndarray) -> np.ndarray:
    """1 / last loss per device; 0 for a device never trained (nothing known: it costs nothing to try)."""
    losses = np.maximum(np.nan_to_num(last_loss, nan=np.inf, posinf=np.inf), SMALLEST_LOSS)
    return 1.0 / losses


def solve(scores: np.ndarray, costs: np.ndarray, limits: np.ndarray, count: int) -> np.ndarray | None:
    """Positions of `count` items of smallest total score with costs @ x <= limits; None if none exists.

    `costs` has one row per budget. scipy is imported here: only this selector needs it.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(scores)
    constraints = [LinearConstraint(np.ones((1, n)), count, count)]
    if len(costs):
        constraints.append(LinearConstraint(costs, -np.inf, limits))
    result = milp(scores, integrality=np.ones(n), bounds=Bounds(0, 1), constraints=constraints)
    if result.x is None:
        return None
    return np.flatnonzero(np.round(result.x) == 1)


def cheapest_if_within(scores: np.ndarray, costs: np.ndarray, limits: np.ndarray, count: int) -> np.ndarray | None:
    """The `count` smallest scores if they fit every budget (then they are optimal), else None.

    Most rounds end here: the solver is only needed when a budget binds, and it is slow on large pools.
    """
    best = np.argsort(scores, kind="stable")[:count]
    return best if (costs[:, best].sum(axis=1) <= limits).all() else None


def undominated(scores: np.ndarray, costs: np.ndarray, count: int) -> np.ndarray:
    """Positions of the items that fewer than `count` others dominate (no worse score, no larger cost).

    An optimal set never needs the others: an item with `count` dominators has one outside any set of
    `count`, and swapping it in is no worse. Ties go to the earlier position, so equal items are not all
    dropped. This shrinks the solver's problem from every available device to a few per selected one.
    """
    order = np.lexsort((np.arange(len(scores)), *costs[::-1], scores))  # every dominator comes first
    ordered = costs[:, order]
    keep = np.zeros(len(scores), dtype=bool)
    for rank, position in enumerate(order):
        dominators = np.all(ordered[:, :rank] <= ordered[:, rank : rank + 1], axis=0).sum()
        keep[position] = dominators < count
    return np.flatnonzero(keep)


def feasible_counts(costs: np.ndarray, limits: np.ndarray, count: int) -> int:
    """An upper bound on how many items fit every budget: the cheapest ones of each budget, at most `count`."""
    bound = count
    for row, limit in zip(costs, limits, strict=True):
        cumulative = np.cumsum(np.sort(row))
        bound = min(bound, int(np.searchsorted(cumulative, limit * (1 + 1e-12), side="right")))
    return bound


def choose(scores: np.ndarray, costs: np.ndarray, limits: np.ndarray, count: int) -> np.ndarray:
    """Positions of the best set of `count` items within the budgets, or of the largest count that fits."""
    for size in range(feasible_counts(costs, limits, count), 0, -1):
        chosen = cheapest_if_within(scores, costs, limits, size)
        if chosen is None:
            candidates = undominated(scores, costs, size)
            solved = solve(scores[candidates], costs[:, candidates], limits, size)
            chosen = None if solved is None else candidates[solved]
        if chosen is not None:
            return chosen
    return np.zeros(0, dtype=np.int64)


@SELECTORS.register("limited_consumption")
class LimitedConsumptionSelector(HistoryBasedSelector):
    """Exactly the phase's count of available devices minimising the sum of 1/loss (the largest losses,
    never-trained devices first) with their summed estimated consumption within every budget that is set:
    energy [mWh], computation [local iterations], network [parameters]. An integer program (scipy's HiGHS).

    When no set of that many devices fits, the largest count that fits is selected (possibly none): the
    budgets are never exceeded. The energy estimate needs the orchestrator's pow_comp_s and pow_net_s.
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
                    "which this orchestrator does not provide; set energy_limit: null to select without it"
                )
            costs["energy_limit"] = view.pow_comp_s * computation_time(context) + view.pow_net_s * communication_time(
                context
            )
        return costs

    def select_from_history(self, context: SelectionContext) -> np.ndarray:
        consumption = self.consumption(context)
        # The solver returns one of several equally good sets; a seeded order makes that a fair draw.
        pool = context.rng.permutation(context.available)
        scores = inverse_losses(context.devices.last_loss)[pool]
        costs = np.array([consumption[key][pool] for key in consumption]).reshape(len(consumption), len(pool))
        limits = np.array([self.limits[key] for key in consumption], dtype=np.float64)
        return np.sort(pool[choose(scores, costs, limits, context.size)])
