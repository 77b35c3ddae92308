"""The fairness / time / energy comparison of runs: one row per run, each figure over the run's repetitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from feles.analysis.device_records import DeviceRun
from feles.analysis.fairness import PHASES, REASONS, failures_by_reason, fairness
from feles.analysis.summary import RunSummary, Stat, metric_label
from feles.analysis.tables import MISSING, format_stat
from feles.analysis.time_energy import round_consumption, round_times


@dataclass(frozen=True)
class DeviceSummary:
    """A run's device figures, each a Stat over its repetitions (fit selections for the fairness figures)."""

    label: str
    repetitions: int
    devices: Stat
    jain: Stat
    gini: Stat
    never_selected: Stat
    #: phase -> reason -> failed jobs per repetition
    failures: dict[str, dict[str, Stat]]
    #: Failed jobs per repetition, all phases and reasons.
    failed_jobs: Stat
    round_time: Stat
    communication_share: Stat
    energy: Stat
    #: Per repetition, the ids of the devices never selected for fit.
    never_selected_ids: list[list[int]]


def device_summary(device_run: DeviceRun) -> DeviceSummary:
    data = device_run.data
    fair, failed, times, shares, energy, sizes = [], [], [], [], [], []
    for repetition in data.repetitions:
        one = data.of_repetition(repetition)
        devices = data.devices(repetition)
        fair.append(fairness(one.records, devices))
        failed.append(failures_by_reason(one.records))
        split = round_times(one.records)
        times.append(float(np.mean(split.time)) if len(split.time) else float("nan"))
        shares.append(split.communication_share())
        energy.append(float(np.sum(round_consumption(one.records).energy)))
        sizes.append(len(devices))
    phases = list(dict.fromkeys([*PHASES, *(phase for counts in failed for phase in counts)]))
    reasons = list(dict.fromkeys([*REASONS, *(r for counts in failed for by in counts.values() for r in by)]))
    return DeviceSummary(
        label=device_run.label,
        repetitions=len(fair),
        devices=Stat.of(sizes),
        jain=Stat.of([f.jain for f in fair]),
        gini=Stat.of([f.gini for f in fair]),
        never_selected=Stat.of([len(f.never_selected) for f in fair]),
        failures={
            phase: {reason: Stat.of([counts.get(phase, {}).get(reason, 0) for counts in failed]) for reason in reasons}
            for phase in phases
        },
        failed_jobs=Stat.of([sum(sum(by.values()) for by in counts.values()) for counts in failed]),
        round_time=Stat.of(times),
        communication_share=Stat.of(shares),
        energy=Stat.of(energy),
        never_selected_ids=[[int(device) for device in f.never_selected] for f in fair],
    )


def _count(stat: Stat) -> str:
    return format_stat(stat, 0 if stat.std == 0 else 1, thousands=True)


Cell = Callable[[RunSummary, DeviceSummary | None], str]


def _device(cell: Callable[[DeviceSummary], str]) -> Cell:
    return lambda _, device: MISSING if device is None else cell(device)


#: (header, cell) of the comparison table; a run without device records has n/a in the device columns.
COMPARISON_COLUMNS: list[tuple[str, Cell]] = [
    ("run", lambda run, _: run.label),
    ("reps", lambda run, _: str(run.repetitions)),
    ("final test acc", lambda run, _: format_stat(run.final_metric, 4)),
    ("devices", _device(lambda d: _count(d.devices))),
    ("Jain", _device(lambda d: format_stat(d.jain, 3))),
    ("Gini", _device(lambda d: format_stat(d.gini, 3))),
    ("never selected", _device(lambda d: _count(d.never_selected))),
    ("failed jobs", _device(lambda d: _count(d.failed_jobs))),
    ("mean round time (s)", _device(lambda d: format_stat(d.round_time, 1, thousands=True))),
    ("communication share", _device(lambda d: _percent(d.communication_share))),
    ("energy (mWh)", _device(lambda d: format_stat(d.energy, 0, thousands=True))),
]


def comparison_columns(runs: list[RunSummary]) -> list[tuple[str, Cell]]:
    """COMPARISON_COLUMNS with the metric's column headed by the runs' metric (acc, mae, mse or metric)."""
    header = f"final test {metric_label([run.metric for run in runs])}"
    return [(header, cell) if index == 2 else (name, cell) for index, (name, cell) in enumerate(COMPARISON_COLUMNS)]


def _percent(share: Stat) -> str:
    if share.mean is None or share.std is None:
        return MISSING
    return format_stat(Stat(share.mean * 100, share.std * 100, share.n), 1) + " %"


#: (header, cell) of the failures table: failed jobs per repetition by reason and phase.
FAILURE_COLUMNS: list[tuple[str, Cell]] = [
    ("run", lambda run, _: run.label),
    *(
        (f"{reason} ({phase})", _device(lambda d, r=reason, p=phase: _count(d.failures[p][r])))
        for reason in REASONS
        for phase in PHASES
    ),
]


def comparison_rows(
    runs: list[RunSummary], devices: list[DeviceSummary | None], columns: list[tuple[str, Cell]] = COMPARISON_COLUMNS
) -> list[list[str]]:
    """The table's cells, one row per run."""
    return [[cell(run, device) for _, cell in columns] for run, device in zip(runs, devices, strict=True)]
