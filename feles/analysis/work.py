"""Configured vs executed work: the epochs, batch size and examples a job was given after the update strategy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from feles.analysis.columns import of_phase, values

#: The quantities an update strategy may change, as records columns (`<name>` executed, `<name>_configured`).
QUANTITIES = ("epochs", "batch_size", "num_examples")


@dataclass(frozen=True)
class WorkComparison:
    """One quantity over a set of jobs: what the spec configured and what the job ran, job by job."""

    quantity: str
    configured: np.ndarray
    executed: np.ndarray

    @property
    def changed(self) -> float:
        """Share of the jobs whose executed value differs from the configured one (NaN without jobs)."""
        return float(np.mean(self.configured != self.executed)) if len(self.executed) else float("nan")

    @property
    def mean_ratio(self) -> float:
        """Mean of executed / configured over the jobs (1 when nothing changed)."""
        if not len(self.executed):
            return float("nan")
        return float(np.mean(self.executed / np.maximum(self.configured, 1)))


def configured_vs_executed(records: pa.Table, phase: str | None = "fit") -> dict[str, WorkComparison]:
    """Per quantity of QUANTITIES, configured and executed values of every job of `phase` (None: both)."""
    rows = of_phase(records, phase)
    return {name: WorkComparison(name, values(rows, f"{name}_configured"), values(rows, name)) for name in QUANTITIES}
