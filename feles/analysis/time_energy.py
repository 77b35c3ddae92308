"""Round time split into computation and communication, and what each round consumed.

A phase lasts as long as its slowest completed job (feles.devices.JobCosts.round_time); a round is its
fit phase followed by its eval phase. Failed jobs spent nothing (feles/records.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from feles.analysis.columns import count_by_device, equals, group_last, of_phase, values

#: The parts of a job's time, in the order they are stacked.
TIME_PARTS = ("computation_time", "download_time", "upload_time")


@dataclass(frozen=True)
class PhaseTimes:
    """Per (repetition, round) with a job of the phase: the phase's time and its slowest completed job's parts.

    All in simulated seconds; a round whose jobs all failed has time 0 (and parts 0).
    """

    repetition: np.ndarray
    round: np.ndarray
    computation: np.ndarray
    download: np.ndarray
    upload: np.ndarray

    @property
    def time(self) -> np.ndarray:
        return self.computation + self.download + self.upload

    @property
    def communication(self) -> np.ndarray:
        return self.download + self.upload


def _keys(records: pa.Table, num_rounds: int) -> np.ndarray:
    return values(records, "repetition").astype(np.int64) * num_rounds + values(records, "round")


def phase_times(records: pa.Table, phase: str) -> PhaseTimes:
    """The time of each (repetition, round) of `phase`, as the computation, download and upload of its slowest job."""
    rows = of_phase(records, phase)
    num_rounds = int(values(rows, "round").max()) + 1 if rows.num_rows else 1
    keys = np.unique(_keys(rows, num_rounds))
    completed = rows.filter(equals(rows, "failed", False))
    parts = np.zeros((len(TIME_PARTS), len(keys)))
    if completed.num_rows:
        times = np.vstack([values(completed, part) for part in TIME_PARTS])
        found, slowest = group_last(_keys(completed, num_rounds), times.sum(axis=0))
        parts[:, np.searchsorted(keys, found)] = times[:, slowest]
    return PhaseTimes(keys // num_rounds, keys % num_rounds, *parts)


@dataclass(frozen=True)
class RoundTimes:
    """Per (repetition, round) present in the records: the fit and the eval phase (zero where one did not run)."""

    repetition: np.ndarray
    round: np.ndarray
    fit: PhaseTimes
    eval: PhaseTimes

    @property
    def time(self) -> np.ndarray:
        """The round time of results.json: fit phase + eval phase."""
        return self.fit.time + self.eval.time

    @property
    def communication(self) -> np.ndarray:
        return self.fit.communication + self.eval.communication

    def communication_share(self) -> float:
        """Communication's share of all the rounds' time together (NaN when no time passed)."""
        total = float(self.time.sum())
        return float(self.communication.sum()) / total if total > 0 else float("nan")


def _aligned(times: PhaseTimes, repetition: np.ndarray, round_: np.ndarray) -> PhaseTimes:
    """`times` on the rows (repetition, round), zero where the phase had no job."""
    size = int(round_.max()) + 1 if len(round_) else 1
    keys, own = repetition * size + round_, times.repetition * size + times.round
    where = np.searchsorted(keys, own)
    parts = []
    for part in (times.computation, times.download, times.upload):
        full = np.zeros(len(keys))
        full[where] = part
        parts.append(full)
    return PhaseTimes(repetition, round_, *parts)


def round_times(records: pa.Table) -> RoundTimes:
    """Every round's time split by phase and part (a phase that selected nobody counts 0)."""
    fit, evaluation = phase_times(records, "fit"), phase_times(records, "eval")
    size = int(max([*fit.round, *evaluation.round], default=0)) + 1
    keys = np.union1d(fit.repetition * size + fit.round, evaluation.repetition * size + evaluation.round)
    repetition, round_ = keys // size, keys % size
    return RoundTimes(repetition, round_, _aligned(fit, repetition, round_), _aligned(evaluation, repetition, round_))


@dataclass(frozen=True)
class RoundConsumption:
    """Per (repetition, round): what its completed jobs (of both phases) consumed.

    energy in mWh; computation and communication in device-seconds (the sum over jobs, not the round's
    duration); local_iterations: mini-batch steps.
    """

    repetition: np.ndarray
    round: np.ndarray
    energy: np.ndarray
    computation: np.ndarray
    communication: np.ndarray
    local_iterations: np.ndarray


def round_consumption(records: pa.Table, phase: str | None = None) -> RoundConsumption:
    """The sums over each round's completed jobs of `phase` (None: both)."""
    rows = of_phase(records, phase)
    completed = rows.filter(equals(rows, "failed", False))
    size = int(values(rows, "round").max()) + 1 if rows.num_rows else 1
    keys = np.unique(_keys(rows, size))
    own = _keys(completed, size)

    def total(column: np.ndarray) -> np.ndarray:
        return count_by_device(keys, own, column.astype(float))

    return RoundConsumption(
        repetition=keys // size,
        round=keys % size,
        energy=total(values(completed, "energy")),
        computation=total(values(completed, "computation_time")),
        communication=total(values(completed, "upload_time") + values(completed, "download_time")),
        local_iterations=total(values(completed, "local_iterations")),
    )


@dataclass(frozen=True)
class DeviceTimes:
    """Per device (aligned with `devices`): total simulated seconds of its completed jobs, by part."""

    devices: np.ndarray
    computation: np.ndarray
    download: np.ndarray
    upload: np.ndarray

    @property
    def communication(self) -> np.ndarray:
        return self.download + self.upload


def device_times(records: pa.Table, devices: np.ndarray) -> DeviceTimes:
    """Totals per device of one repetition's completed jobs (both phases)."""
    completed = records.filter(equals(records, "failed", False))
    ids = values(completed, "device")
    parts = [count_by_device(devices, ids, values(completed, part)) for part in TIME_PARTS]
    return DeviceTimes(devices, *parts)


def mean_by_round(round_: np.ndarray, value: np.ndarray, num_rounds: int | None = None) -> np.ndarray:
    """The mean of `value` over the repetitions that ran each round (NaN for a round none ran)."""
    length = num_rounds if num_rounds is not None else (int(round_.max()) + 1 if len(round_) else 0)
    total = np.bincount(round_, weights=value, minlength=length)[:length]
    count = np.bincount(round_, minlength=length)[:length]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
