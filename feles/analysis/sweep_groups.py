"""A sweep's folder as runs to compare: one run per combination of the non-seed axes, its seeds as repetitions.

`feles sweep` writes one run folder per cell. Cells that differ only in their seed are repetitions of one
setting, so each group of them becomes one run: the table gives mean ± std over the seeds, the figures
one line (and band) per setting, and the device analyses pool the seeds' populations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from feles.analysis.device_records import DeviceRecords, load_device_records
from feles.analysis.loading import Run, read_document
from feles.sweep import SweepCell, read_sweep_folder

#: The axis a sweep's `seeds` vary: its cells are repetitions of the same setting.
SEED_PATH = "simulation.seed"


@dataclass(frozen=True)
class SweepGroup:
    """One setting of a sweep: a run whose repetitions are its seeds, and their device records if all have some."""

    run: Run
    records: DeviceRecords | None


def sweep_groups(
    folder: Path, warn: Callable[[str], None] = lambda message: None, name: str | None = None
) -> list[SweepGroup]:
    """The settings of a sweep folder in grid order, labelled by their axis values (after `name: ` when given,
    to tell several sweeps apart); cells without results yet are left out with a warning."""
    sweep = read_sweep_folder(folder)
    groups: dict[tuple[tuple[str, str], ...], list[SweepCell]] = {}
    for cell in sweep.cells:
        key = tuple((path, json.dumps(value)) for path, value in cell.values.items() if path != SEED_PATH)
        groups.setdefault(key, []).append(cell)
    found = []
    for key, cells in groups.items():
        finished = [cell for cell in cells if cell.results.is_file()]
        for cell in cells:
            if cell not in finished:
                warn(f"skipped sweep cell {cell.name}: no results yet ({cell.results} missing)")
        if finished:
            values = ", ".join(f"{sweep.labels.get(path, path)}={json.loads(value)}" for path, value in key)
            label = f"{name}: {values}" if name and values else (values or name or folder.name)
            found.append(_group(finished, label))
    return found


def _group(cells: list[SweepCell], label: str) -> SweepGroup:
    documents = [read_document(cell.results) for cell in cells]
    offsets = _offsets(documents)
    run = Run(cells[0].results, label, merged_document(documents, offsets))
    records = [
        load_device_records(Run(cell.results, label, document)) for cell, document in zip(cells, documents, strict=True)
    ]
    if any(data is None for data in records):
        return SweepGroup(run, None)
    return SweepGroup(run, merged_records([data for data in records if data is not None], offsets))


def _offsets(documents: list[dict[str, Any]]) -> list[int]:
    """Where each cell's repetitions start among the group's: cell i's repetition r becomes offset_i + r."""
    offsets, next_free = [], 0
    for document in documents:
        offsets.append(next_free)
        used = [row["repetition"] for row in document["rounds"]] + [s["repetition"] for s in document["repetitions"]]
        next_free += max(used, default=-1) + 1
    return offsets


def merged_document(documents: list[dict[str, Any]], offsets: list[int]) -> dict[str, Any]:
    """One results document holding every cell's rounds and summaries, repetitions renumbered by `offsets`."""

    def shifted(rows: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
        return [{**row, "repetition": row["repetition"] + offset} for row in rows]

    statuses = {document.get("status") for document in documents}
    return {
        **documents[0],
        "status": statuses.pop() if len(statuses) == 1 else "mixed",
        "rounds": [row for doc, off in zip(documents, offsets, strict=True) for row in shifted(doc["rounds"], off)],
        "repetitions": [
            row for doc, off in zip(documents, offsets, strict=True) for row in shifted(doc["repetitions"], off)
        ],
    }


def merged_records(records: list[DeviceRecords], offsets: list[int]) -> DeviceRecords:
    """Every cell's device records in one, repetitions renumbered by `offsets` like the document's."""

    def merged(tables: list[pa.Table]) -> pa.Table:
        shifted = []
        for table, offset in zip(tables, offsets, strict=True):
            index = table.schema.get_field_index("repetition")
            column = pc.add(table["repetition"], pa.scalar(offset, table.schema.field(index).type))
            shifted.append(table.set_column(index, table.schema.field(index), column))
        return pa.concat_tables(shifted)

    return DeviceRecords(
        records=merged([data.records for data in records]),
        availability=merged([data.availability for data in records]),
        population=merged([data.population for data in records]),
        num_devices=records[0].num_devices,
    )
