"""What a phase and a round produced: the plan beside the results, read by the loop, the records, the results."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from feles.devices import JobCosts, RoundConditions
from feles.evaluation import Evaluation
from feles.orchestrator.jobs import Completed
from feles.orchestrator.planning import PhasePlan


@dataclass(frozen=True)
class PhaseOutcome:
    """A dispatched phase: its plan, the results by device, and which devices' results were refused."""

    plan: PhasePlan
    results: dict[int, Completed]
    rejected: frozenset[int]

    @property
    def selected(self) -> np.ndarray:
        return self.plan.selected

    @cached_property
    def completed(self) -> np.ndarray:
        """Per selected device (plan order): whether its result came and was accepted."""
        completed = np.zeros(len(self.selected), dtype=bool)
        # Both are in device order: each result's device is found by a sorted search.
        completed[np.searchsorted(self.selected, np.fromiter(self.results, np.int64, len(self.results)))] = True
        return completed

    @cached_property
    def costs(self) -> JobCosts:
        """The plan's costs with every device that brought no result counted as failed."""
        return self.plan.costs.with_failed(self.plan.costs.failed | ~self.completed)

    @property
    def failed(self) -> int:
        return len(self.selected) - len(self.results)

    def weighted(self, metric: str) -> float | None:
        """Mean of a result metric weighted by examples; None when no device completed."""
        pairs = [(getattr(r, metric), r.num_examples) for r, _ in self.results.values() if r.num_examples]
        total = sum(n for _, n in pairs)
        if not total:
            return None
        return sum(value * n for value, n in pairs) / total


@dataclass(frozen=True)
class RoundOutcome:
    """Everything a round produced, in the order it happened."""

    round: int
    conditions: RoundConditions
    fit: PhaseOutcome
    evaluation: PhaseOutcome
    test: Evaluation
    wall_time: float

    @property
    def round_time(self) -> float:
        return self.fit.costs.round_time() + self.evaluation.costs.round_time()

    @property
    def energy(self) -> float:
        return self.fit.costs.energy_spent() + self.evaluation.costs.energy_spent()
