"""The device records of a run (feles/records.py: Parquet under `<output folder>/devices/`), if it has them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from feles.analysis.columns import of_repetition, values
from feles.analysis.loading import Run
from feles.records import Table, read_table, records_root


@dataclass(frozen=True, eq=False)
class DeviceRecords:
    """The three tables of one run; `num_devices` (the spec's devices.num) stands in for a missing population."""

    records: pa.Table
    availability: pa.Table
    population: pa.Table
    num_devices: int
    #: of_repetition's answers: every figure asks again for the same repetitions.
    _repetitions: dict[int, DeviceRecords] = field(default_factory=dict, repr=False)

    @property
    def repetitions(self) -> list[int]:
        """The repetitions with any record, in order."""
        found: set[int] = set()
        for table in (self.population, self.availability, self.records):
            found.update(int(rep) for rep in np.unique(values(table, "repetition")))
        return sorted(found)

    @property
    def num_rounds(self) -> int:
        """Rounds of the longest repetition."""
        rounds = [values(table, "round") for table in (self.availability, self.records) if table.num_rows]
        return max((int(r.max()) + 1 for r in rounds), default=0)

    def devices(self, repetition: int) -> np.ndarray:
        """The sorted ids of every device of the repetition's population, selected or not."""
        population = of_repetition(self.population, repetition)
        if population.num_rows:
            return np.sort(values(population, "device"))
        return np.arange(self.num_devices, dtype=np.int64)

    def of_repetition(self, repetition: int) -> DeviceRecords:
        """The rows of one repetition (computed once)."""
        if repetition not in self._repetitions:
            self._repetitions[repetition] = DeviceRecords(
                of_repetition(self.records, repetition),
                of_repetition(self.availability, repetition),
                of_repetition(self.population, repetition),
                self.num_devices,
            )
        return self._repetitions[repetition]


@dataclass(frozen=True)
class DeviceRun:
    """A run that has device records: what the device figures and the comparison table take."""

    run: Run
    data: DeviceRecords
    #: The run's line colour: that of its place among all runs analysed (C0, C1, ...); None: its place here.
    colour: str | None = None

    @property
    def label(self) -> str:
        return self.run.label


def records_folder(run: Run) -> Path:
    """`devices/` beside the results file: the run's output folder."""
    return records_root(run.path.parent)


def load_device_records(run: Run) -> DeviceRecords | None:
    """The run's device records, or None when it has none (a run of a FELES that did not write them, or a run
    that has not written any yet)."""
    folder = records_folder(run)
    if not (folder / Table.RECORDS.value).is_dir():
        return None
    num_devices = int((run.spec.get("devices") or {}).get("num", 0))
    output = folder.parent
    data = DeviceRecords(
        records=read_table(output, Table.RECORDS),
        availability=read_table(output, Table.AVAILABILITY),
        population=read_table(output, Table.POPULATION),
        num_devices=num_devices,
    )
    return data if data.repetitions else None  # a run that has not finished a round yet


#: Why a run whose results.json holds no round has no device records, by its status.
NO_ROUND = {
    "failed": "the run failed before its first round",
    "interrupted": "the run was interrupted before its first round",
    "running": "the run has recorded no round yet",
}


def missing_note(run: Run) -> str:
    """The one line saying why a run has no device analyses."""
    folder = records_folder(run)
    if not run.rounds:  # nothing to record, whichever FELES ran it
        why = NO_ROUND.get(str(run.document.get("status")), "the run recorded no round")
        return f"{run.label}: no device records ({why}); device analyses skipped"
    why = "empty: no round recorded yet" if folder.is_dir() else "missing: an older FELES wrote it"
    return f"{run.label}: no device records ({folder} {why}); device analyses skipped"
