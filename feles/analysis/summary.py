"""Per-run figures of the analysis table, as mean ± standard deviation over the run's repetitions."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from feles.analysis.loading import Run

#: How tables abbreviate a metric's name.
METRIC_ABBREVIATIONS = {"accuracy": "acc"}


def higher_is_better(metric: str) -> bool:
    """Accuracy improves upwards; the errors (mae, mse) downwards."""
    return metric == "accuracy"


def metric_label(metrics: Sequence[str]) -> str:
    """The name a table gives the metric of its runs: theirs (abbreviated) if they share one, else `metric`."""
    names = set(metrics)
    if len(names) != 1:
        return "metric" if names else METRIC_ABBREVIATIONS["accuracy"]
    (name,) = names
    return METRIC_ABBREVIATIONS.get(name, name)


class TargetError(ValueError):
    """A target that is no value of the runs' metric; the message says why."""


def check_target(target: float | None, metrics: Sequence[str]) -> None:
    """Raise TargetError unless `target` (None: none) is a value of the runs' one metric: an accuracy in [0, 1],
    or an error (mae, mse) of at least 0."""
    if target is None:
        return
    if not math.isfinite(target):
        raise TargetError(f"{target} is not a number")
    names = sorted(set(metrics))
    if len(names) > 1:
        raise TargetError(
            f"the runs measure different metrics ({', '.join(names)}) and a target is a value of one: "
            "analyse the runs of each metric apart"
        )
    metric = names[0] if names else "accuracy"
    if higher_is_better(metric) and not 0 <= target <= 1:
        raise TargetError(f"{target:g} is not an accuracy: the runs measure accuracy, between 0 and 1")
    if target < 0:
        raise TargetError(f"{target:g} is not a {metric}: the runs measure {metric}, an error of at least 0")


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (0 for a single value) of n values; mean None when n is 0."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        finite = [float(value) for value in values if value is not None and math.isfinite(value)]
        if not finite:
            return cls(None, None, 0)
        std = statistics.stdev(finite) if len(finite) > 1 else 0.0
        return cls(statistics.fmean(finite), std, len(finite))


@dataclass(frozen=True)
class RepetitionFigures:
    """What one repetition achieved; rounds_to_target None when the target was never reached (or unset)."""

    repetition: int
    rounds: int
    final_metric: float
    best_metric: float
    final_loss: float | None
    rounds_to_target: int | None
    simulated_time: float
    energy: float
    failures: int


@dataclass(frozen=True)
class RunSummary:
    """One row of the analysis table: a run's figures over its repetitions; `metric` names what the metric
    figures measure (accuracy, mae or mse)."""

    label: str
    path: str
    algorithm: str
    dataset: str
    status: str
    repetitions: int
    metric: str
    rounds: Stat
    final_metric: Stat
    best_metric: Stat
    final_loss: Stat
    target: float | None
    rounds_to_target: Stat
    target_reached: int
    simulated_time: Stat
    energy: Stat
    failures: Stat


def repetition_rounds(rounds: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The round records grouped by repetition, each group in round order."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for record in rounds:
        groups.setdefault(int(record["repetition"]), []).append(record)
    return {rep: sorted(records, key=lambda record: record["round"]) for rep, records in sorted(groups.items())}


def repetition_figures(
    repetition: int, records: Sequence[dict[str, Any]], target: float | None, metric: str = "accuracy"
) -> RepetitionFigures:
    """The figures of one repetition from its round records (at least one); the best and the target follow the
    metric's direction (an accuracy at least the target, an error at most it)."""
    values = [_number(record[f"test_{metric}"]) for record in records]
    up = higher_is_better(metric)
    reached = None
    if target is not None:
        reached = next((i + 1 for i, value in enumerate(values) if (value >= target if up else value <= target)), None)
    finite = [value for value in values if math.isfinite(value)]
    return RepetitionFigures(
        repetition=repetition,
        rounds=len(records),
        final_metric=values[-1],
        best_metric=(max if up else min)(finite, default=math.nan),
        final_loss=records[-1].get("test_loss"),
        rounds_to_target=reached,
        simulated_time=_number(records[-1]["simulated_time"]),
        energy=sum(_number(record["energy"]) for record in records),
        failures=sum(int(record["fit_failed"]) + int(record["eval_failed"]) for record in records),
    )


def summarise(run: Run, target: float | None = None) -> RunSummary:
    """The run's table row; `target` (a test metric) overrides the spec's stop_conds.metric."""
    goal = target if target is not None else run.target_metric
    rounds = repetition_rounds(run.rounds).items()
    figures = [repetition_figures(rep, records, goal, run.metric) for rep, records in rounds]
    reached = [f.rounds_to_target for f in figures if f.rounds_to_target is not None]
    simulation = run.spec.get("simulation") or {}
    return RunSummary(
        label=run.label,
        path=str(run.path),
        algorithm=run.algorithm,
        dataset=str(simulation.get("dataset", "?")),
        status=str(run.document.get("status", "?")),
        repetitions=len(figures),
        metric=run.metric,
        rounds=Stat.of([f.rounds for f in figures]),
        final_metric=Stat.of([f.final_metric for f in figures]),
        best_metric=Stat.of([f.best_metric for f in figures]),
        final_loss=Stat.of([f.final_loss for f in figures]),
        target=goal,
        rounds_to_target=Stat.of(reached),
        target_reached=len(reached),
        simulated_time=Stat.of([f.simulated_time for f in figures]),
        energy=Stat.of([f.energy for f in figures]),
        failures=Stat.of([f.failures for f in figures]),
    )


def _number(value: Any) -> float:
    # The results JSON writes non-finite floats as null.
    return math.nan if value is None else float(value)
