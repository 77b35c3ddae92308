"""A sweep's comparison table: one row per combination of the non-seed axes, figures as mean ± std over the seeds.

Reads a sweep's folder (`feles.sweep.read_sweep_folder`) and each cell's results with the analysis's own loaders
and per-run figures, so that a sweep's table and `feles analyze`'s agree on what "final" and "best" mean.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from feles.analysis.loading import LoadError, Run, read_document
from feles.analysis.summary import RunSummary, Stat, summarise
from feles.analysis.tables import format_stat
from feles.sweep import SEED_PATH, SweepCell, SweepFolder, read_sweep_folder

SUCCEEDED = "succeeded"
#: A cell without a results file yet.
NOT_STARTED = "not started"


@dataclass(frozen=True)
class CellOutcome:
    """A cell and what its results file says: status, and its figures (None before its first round)."""

    cell: SweepCell
    status: str
    summary: RunSummary | None


#: The run summary's field behind each figure of a row (a sweep reports the test metric as accuracy).
SUMMARY_FIELDS = {"final_accuracy": "final_metric", "best_accuracy": "best_metric"}


@dataclass(frozen=True)
class ComparisonRow:
    """One combination of the non-seed axes, its cells (one per seed) and their figures over the finished ones."""

    values: dict[str, Any]
    cells: list[CellOutcome]
    final_accuracy: Stat = field(init=False)
    best_accuracy: Stat = field(init=False)
    simulated_time: Stat = field(init=False)
    rounds: Stat = field(init=False)

    def __post_init__(self) -> None:
        done = [outcome.summary for outcome in self.cells if outcome.status == SUCCEEDED and outcome.summary]
        for name in ("final_accuracy", "best_accuracy", "simulated_time", "rounds"):
            source = SUMMARY_FIELDS.get(name, name)
            stats: list[Stat] = [getattr(summary, source) for summary in done]
            # A cell's figure is the mean over its repetitions (most runs have one).
            object.__setattr__(self, name, Stat.of([stat.mean for stat in stats if stat.mean is not None]))

    @property
    def done(self) -> int:
        return sum(outcome.status == SUCCEEDED for outcome in self.cells)


@dataclass(frozen=True)
class Comparison:
    """The table: the non-seed axes' labels (path -> label, grid order) and the rows."""

    labels: dict[str, str]
    rows: list[ComparisonRow]

    @property
    def best_row(self) -> ComparisonRow | None:
        """The row with the highest mean final test accuracy."""
        scored = [row for row in self.rows if row.final_accuracy.mean is not None]
        return max(scored, key=lambda row: row.final_accuracy.mean or 0.0, default=None)


def cell_outcome(cell: SweepCell) -> CellOutcome:
    """A cell's status and figures from its results file ("not started" without one)."""
    if not cell.results.is_file():
        return CellOutcome(cell, NOT_STARTED, None)
    try:
        document = read_document(cell.results)
    except LoadError:
        return CellOutcome(cell, "unreadable", None)
    status = str(document.get("status", "?"))
    summary = summarise(Run(cell.results, cell.name, document)) if document["rounds"] else None
    return CellOutcome(cell, status, summary)


def comparison(folder: str | Path | SweepFolder) -> Comparison:
    """The comparison table of a sweep's folder: cells grouped by their non-seed values, in grid order."""
    sweep = folder if isinstance(folder, SweepFolder) else read_sweep_folder(folder)
    labels = {path: label for path, label in sweep.labels.items() if path != SEED_PATH}
    groups: dict[str, tuple[dict[str, Any], list[CellOutcome]]] = {}
    for cell in sweep.cells:
        values = {path: value for path, value in cell.values.items() if path != SEED_PATH}
        key = repr(sorted(values.items()))
        groups.setdefault(key, (values, []))[1].append(cell_outcome(cell))
    return Comparison(labels, [ComparisonRow(values, outcomes) for values, outcomes in groups.values()])


def _value(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) and math.isfinite(value) else str(value)


#: (header, cell) of the human-readable table after the axis columns, shared by the rich and Markdown renderings.
COLUMNS: list[tuple[str, Callable[[ComparisonRow], str]]] = [
    ("seeds done", lambda row: f"{row.done}/{len(row.cells)}"),
    ("final test acc", lambda row: format_stat(row.final_accuracy, 4)),
    ("best test acc", lambda row: format_stat(row.best_accuracy, 4)),
    ("rounds", lambda row: format_stat(row.rounds, 0 if row.rounds.std == 0 else 1)),
    ("simulated time (s)", lambda row: format_stat(row.simulated_time, 1, thousands=True)),
]
CAPTION = "mean ± sample std over the seeds (finished cells only)"


def _cells(table: Comparison, row: ComparisonRow) -> list[str]:
    return [_value(row.values.get(path)) for path in table.labels] + [cell(row) for _, cell in COLUMNS]


def rich_comparison(table: Comparison, title: str | None = None) -> Table:
    rendered = Table(title=title, caption=CAPTION, title_justify="left")
    for label in table.labels.values():
        rendered.add_column(label, no_wrap=True)
    for header, _ in COLUMNS:
        rendered.add_column(header, justify="right", no_wrap=True)
    for row in table.rows:
        rendered.add_row(*_cells(table, row))
    return rendered


def comparison_markdown(table: Comparison) -> str:
    headers = [*table.labels.values(), *(header for header, _ in COLUMNS)]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if index < len(table.labels) else "---:" for index in range(len(headers))) + "|",
    ]
    for row in table.rows:
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in _cells(table, row)) + " |")
    return "\n".join(lines) + "\n"


#: Figures of the CSV, each as `<name>_mean` and `<name>_std` columns.
STAT_FIELDS = ("final_accuracy", "best_accuracy", "rounds", "simulated_time")
_STAT_COLUMNS = [(name, part) for name in STAT_FIELDS for part in ("mean", "std")]


def _number(value: float | None) -> str:
    """A CSV cell: the exact float, or empty for none."""
    return "" if value is None else repr(value)


def comparison_csv(table: Comparison) -> str:
    """One row per combination: the axis values (columns named by their paths), cells, done and plain numbers."""
    buffer = io.StringIO()
    columns = [*table.labels, "cells", "done", *(f"{name}_{part}" for name, part in _STAT_COLUMNS)]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        record: dict[str, Any] = {path: row.values.get(path) for path in table.labels}
        record |= {"cells": len(row.cells), "done": row.done}
        record |= {f"{name}_{part}": _number(getattr(getattr(row, name), part)) for name, part in _STAT_COLUMNS}
        writer.writerow(record)
    return buffer.getvalue()


def write_comparison(table: Comparison, folder: Path) -> list[Path]:
    """summary.csv and summary.md in the sweep's folder."""
    written = [folder / "summary.csv", folder / "summary.md"]
    written[0].write_text(comparison_csv(table), encoding="utf-8")
    written[1].write_text(comparison_markdown(table) + f"\n{CAPTION}\n", encoding="utf-8")
    return written
