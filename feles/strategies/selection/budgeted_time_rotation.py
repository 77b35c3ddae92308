"""`budgeted_time_rotation`: rotate biggest-loss and least-selected rounds while the mean round time is in budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import PluginParamsError, integer, optional_number, take_params
from feles.seeding import numpy_rng
from feles.strategies.selection.base import SELECTORS, SelectionContext
from feles.strategies.selection.history_based import HistoryBasedSelector
from feles.strategies.selection.rotation import biggest_loss, fastest, least_selected

#: The original FELES's: an automatic budget, one biggest-loss round per 50 least-selected rounds.
DEFAULTS = {"time_budget": None, "loss_rounds": 1, "fairness_rounds": 50}
OWNER = "selection budgeted_time_rotation"


@SELECTORS.register("budgeted_time_rotation")
class BudgetedTimeRotationSelector(HistoryBasedSelector):
    """Fastest devices ("a fast round") while the mean fit time of the earlier rounds exceeds the budget;
    otherwise a cycle of `loss_rounds` biggest-loss rounds then `fairness_rounds` least-selected rounds,
    counted over the rounds that were not fast. Round 0 is a uniform draw.

    The budget is `time_budget` [s], or, when null, the original FELES's automatic one: round 1 takes
    round 0's time; every later round draws U(mean time of the fast rounds, mean time of the other rounds),
    a mean over no round being 0 and round 0 counting as an other round. No state is kept: each round
    replays the earlier rounds' decisions from their times and draws (seeded by the run's seed, the
    repetition and the round). Without the orchestrator's `round_times` no round is fast.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.budget = optional_number(OWNER, "time_budget", self.params["time_budget"], positive=True)
        self.loss_rounds = integer(OWNER, "loss_rounds", self.params["loss_rounds"], minimum=0)
        self.fairness_rounds = integer(OWNER, "fairness_rounds", self.params["fairness_rounds"], minimum=0)
        if self.loss_rounds + self.fairness_rounds == 0:
            raise PluginParamsError(f"{OWNER}: loss_rounds and fairness_rounds cannot both be 0")

    def fast_rounds(self, context: SelectionContext) -> list[bool]:
        """Whether each round 1..context.round was (or, for this round, is) a fast round."""
        times = [] if context.round_times is None else [float(t) for t in context.round_times]
        # One draw per round from one stream: round r's budget is the same whenever it is replayed.
        draws = numpy_rng(context.seed, f"budgeted_time_rotation-{context.phase}", context.repetition).random(
            max(context.round, 0)
        )
        fast: list[bool] = []
        # Running sums over the rounds before `round_`: all of them, the fast ones, the others (round 0 included).
        total = fast_sum = other_sum = 0.0
        fast_count = other_count = 0
        for round_ in range(1, context.round + 1):
            if round_ > len(times):
                fast.append(False)
                continue
            previous = times[round_ - 1]
            total += previous
            if round_ > 1 and fast[-1]:
                fast_sum, fast_count = fast_sum + previous, fast_count + 1
            else:
                other_sum, other_count = other_sum + previous, other_count + 1
            budget = self.budget
            if budget is None:
                low = fast_sum / fast_count if fast_count else 0.0
                high = other_sum / other_count if other_count else 0.0
                budget = times[0] if round_ == 1 else low + float(draws[round_ - 1]) * (high - low)
            fast.append(total / round_ > budget)
        return fast

    def select_from_history(self, context: SelectionContext) -> np.ndarray:
        fast = self.fast_rounds(context)
        if fast[-1]:
            return fastest(context)
        position = sum(not was_fast for was_fast in fast[:-1]) % (self.loss_rounds + self.fairness_rounds)
        return biggest_loss(context) if position < self.loss_rounds else least_selected(context)
