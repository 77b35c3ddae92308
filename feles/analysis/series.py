"""Per-round curves of a run: a column's mean and standard deviation over repetitions, round by round."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feles.analysis.loading import Run
from feles.analysis.summary import repetition_rounds


@dataclass(frozen=True)
class Series:
    """x: 1-based round numbers; mean/std of the column over the repetitions that ran the round (n of them)."""

    rounds: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray


def round_series(run: Run, column: str) -> Series:
    """The column's curve over rounds; missing (null) values are left out of the mean."""
    groups = repetition_rounds(run.rounds)
    length = max((int(record["round"]) + 1 for records in groups.values() for record in records), default=0)
    values = np.full((len(groups), length), np.nan)
    for row, records in enumerate(groups.values()):
        for record in records:
            value = record.get(column)
            if value is not None:
                values[row, int(record["round"])] = float(value)
    counts = np.sum(~np.isnan(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(values, axis=0)
        mean = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
        deviation = np.where(counts > 0, values - mean, np.nan)
        squares = np.nansum(deviation**2, axis=0)
        std = np.where(counts > 1, np.sqrt(squares / np.maximum(counts - 1, 1)), 0.0)
    return Series(rounds=np.arange(1, length + 1), mean=mean, std=std, n=counts)
