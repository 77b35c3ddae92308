"""Fairness of the selection: participation per device, Jain's index, Gini coefficient, failures by reason.

Participation counts every device of the population, a device never selected counting 0: a strategy
that never picks half the devices is unfair however evenly it treats the other half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from feles.analysis.columns import count_by_device, equals, of_phase, values
from feles.records import Failure

PHASES = ("fit", "eval")
#: The failure reasons in the order tables and figures show them (feles.records.Failure).
REASONS = tuple(failure.value for failure in Failure)


def participation(records: pa.Table, devices: np.ndarray, phase: str | None = "fit") -> np.ndarray:
    """Times each device of `devices` (sorted ids) was selected in `phase` (None: either), 0 for never.

    `records` holds one repetition: a device's selections in different repetitions are not the same device's.
    """
    return count_by_device(devices, values(of_phase(records, phase), "device")).astype(np.int64)


def jain_index(counts: np.ndarray) -> float:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all are equal, 1/n when one device takes all.

    NaN when there is nothing to share (no device, or every count 0).
    """
    x = np.asarray(counts, dtype=float)
    squares = float(np.sum(x**2))
    if len(x) == 0 or squares == 0:
        return float("nan")
    return float(np.sum(x) ** 2 / (len(x) * squares))


def gini(counts: np.ndarray) -> float:
    """Gini coefficient, sum_ij |x_i - x_j| / (2 n^2 mean): 0 when all are equal, (n-1)/n when one takes all.

    NaN when there is nothing to share.
    """
    x = np.sort(np.asarray(counts, dtype=float))
    total = float(np.sum(x))
    if len(x) == 0 or total == 0:
        return float("nan")
    n = len(x)
    ranks = np.arange(1, n + 1)
    return float(2 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def histogram(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, devices selected exactly k times) for k = 0 .. max(counts)."""
    frequencies = np.bincount(np.asarray(counts, dtype=np.int64))
    return np.arange(len(frequencies)), frequencies


def failures_by_reason(records: pa.Table) -> dict[str, dict[str, int]]:
    """Failed jobs per phase and reason: every phase of PHASES and reason of REASONS, 0 when none.

    Reasons not in REASONS (a newer FELES) are counted under their own name.
    """
    failed = records.filter(equals(records, "failed", True))
    counts: dict[str, dict[str, int]] = {phase: dict.fromkeys(REASONS, 0) for phase in PHASES}
    phases = failed.column("phase").to_pylist()
    reasons = failed.column("failure").to_pylist()
    for phase, reason in zip(phases, reasons, strict=True):
        by_reason = counts.setdefault(phase, dict.fromkeys(REASONS, 0))
        key = reason or "unknown"
        by_reason[key] = by_reason.get(key, 0) + 1
    return counts


@dataclass(frozen=True)
class Fairness:
    """The fairness figures of one repetition's `phase` selections."""

    devices: np.ndarray
    counts: np.ndarray
    jain: float
    gini: float

    @property
    def never_selected(self) -> np.ndarray:
        """The ids of the devices never selected."""
        return self.devices[self.counts == 0]


def fairness(records: pa.Table, devices: np.ndarray, phase: str | None = "fit") -> Fairness:
    """Participation and its fairness over every device of `devices`, for one repetition's `records`."""
    counts = participation(records, devices, phase)
    return Fairness(devices, counts, jain_index(counts), gini(counts))
