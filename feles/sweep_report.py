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
from feles.analysis.summary import METRIC_ABBREVIATIONS, RunSummary, Stat, summarise
from feles.analysis.tables import format_stat
from feles.sweep import SEED_PATH, Best, Objective, SweepCell, SweepFolder, read_sweep_folder

SUCCEEDED = "succeeded"
#: A cell without a results file yet.
NOT_STARTED = "not started"


@dataclass(frozen=True)
class CellOutcome:
    """A cell and what its results file says: status, and its figures (None before its first round)."""

    cell: SweepCell
    status: str
    summary: RunSummary | None


@dataclass(frozen=True)
class ComparisonRow:
    """One combination of the non-seed axes, its cells (one per seed) and their figures over the finished ones."""

    values: dict[str, Any]
    cells: list[CellOutcome]
    final_metric: Stat = field(init=False)
    best_metric: Stat = field(init=False)
    final_loss: Stat = field(init=False)
    simulated_time: Stat = field(init=False)
    rounds: Stat = field(init=False)

    def __post_init__(self) -> None:
        done = [outcome.summary for outcome in self.cells if outcome.status == SUCCEEDED and outcome.summary]
        for name in ("final_metric", "best_metric", "final_loss", "simulated_time", "rounds"):
            stats: list[Stat] = [getattr(summary, name) for summary in done]
            # A cell's figure is the mean over its repetitions (most runs have one).
            object.__setattr__(self, name, Stat.of([stat.mean for stat in stats if stat.mean is not None]))

    @property
    def done(self) -> int:
        return sum(outcome.status == SUCCEEDED for outcome in self.cells)


@dataclass(frozen=True)
class Comparison:
    """The table: the non-seed axes' labels (path -> label, grid order), the rows, and the sweep's `best`
    (None: sweep.json predates it, rank by the cells' metric in its own direction)."""

    labels: dict[str, str]
    rows: list[ComparisonRow]
    objective: Objective | None = None

    @property
    def ranking(self) -> Objective | None:
        """What ranks the rows; None when nothing can: cells of different metrics and no `best` saying how."""
        if self.objective is not None:
            return self.objective
        return None if self.metric == "metric" else Best().objective(self.metric)

    def score(self, row: ComparisonRow) -> Stat | None:
        """The row's figure the ranking compares: its mean final test loss or metric (None: not that metric)."""
        ranking = self.ranking
        if ranking is None:
            return None
        if ranking.metric == "loss":
            return row.final_loss
        return row.final_metric if ranking.metric == self.metric else None

    @property
    def best_row(self) -> ComparisonRow | None:
        """The row with the best mean final figure by `best` (by default the highest accuracy, the lowest error);
        the first in grid order among equals."""
        ranking, scored = self.ranking, []
        for index, row in enumerate(self.rows):
            stat = self.score(row)
            if stat is not None and stat.mean is not None:
                scored.append((stat.mean, index, row))
        if ranking is None or not scored:
            return None
        return min(scored, key=lambda item: (ranking.rank(item[0]), item[1]))[2]

    @property
    def metric(self) -> str:
        """The cells' metric (accuracy, mae, mse), or `metric` when they measure different ones."""
        names = {outcome.summary.metric for row in self.rows for outcome in row.cells if outcome.summary}
        return names.pop() if len(names) == 1 else ("accuracy" if not names else "metric")


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
    rows = [ComparisonRow(values, outcomes) for values, outcomes in groups.values()]
    return Comparison(labels, rows, sweep.objective)


def best_line(table: Comparison) -> str:
    """Which row is best and by what, e.g. `best (final test mae, min): sel=random, alpha=0.5: 65.0000 ± 7.0711`."""
    ranking, row = table.ranking, table.best_row
    if ranking is None:
        return "best: none (the cells measure different metrics; set best.metric)"
    label = "loss" if ranking.metric == "loss" else METRIC_ABBREVIATIONS.get(ranking.metric, ranking.metric)
    what = f"best (final test {label}, {ranking.mode})"
    if row is None:
        return f"{what}: no finished cell yet"
    values = ", ".join(f"{table.labels[path]}={_value(row.values.get(path))}" for path in table.labels) or "base"
    stat = table.score(row)
    return f"{what}: {values}: {format_stat(stat, 4) if stat is not None else ''}"


def _value(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) and math.isfinite(value) else str(value)


Column = tuple[str, Callable[[ComparisonRow], str]]


def comparison_columns(metric: str) -> list[Column]:
    """(header, cell) of the human-readable table after the axis columns, shared by the rich and Markdown
    renderings; the metric's columns are headed by `metric` (accuracy as acc)."""
    label = METRIC_ABBREVIATIONS.get(metric, metric)
    return [
        ("seeds done", lambda row: f"{row.done}/{len(row.cells)}"),
        (f"final test {label}", lambda row: format_stat(row.final_metric, 4)),
        (f"best test {label}", lambda row: format_stat(row.best_metric, 4)),
        ("rounds", lambda row: format_stat(row.rounds, 0 if row.rounds.std == 0 else 1)),
        ("simulated time (s)", lambda row: format_stat(row.simulated_time, 1, thousands=True)),
    ]


#: The columns of a sweep of classification runs.
COLUMNS = comparison_columns("accuracy")
CAPTION = "mean ± sample std over the seeds (finished cells only)"


def _cells(table: Comparison, row: ComparisonRow) -> list[str]:
    values = [_value(row.values.get(path)) for path in table.labels]
    return values + [cell(row) for _, cell in comparison_columns(table.metric)]


def rich_comparison(table: Comparison, title: str | None = None) -> Table:
    rendered = Table(title=title, caption=f"{CAPTION}\n{best_line(table)}", title_justify="left")
    for label in table.labels.values():
        rendered.add_column(label, no_wrap=True)
    for header, _ in comparison_columns(table.metric):
        rendered.add_column(header, justify="right", no_wrap=True)
    for row in table.rows:
        rendered.add_row(*_cells(table, row))
    return rendered


def comparison_markdown(table: Comparison) -> str:
    headers = [*table.labels.values(), *(header for header, _ in comparison_columns(table.metric))]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if index < len(table.labels) else "---:" for index in range(len(headers))) + "|",
    ]
    for row in table.rows:
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in _cells(table, row)) + " |")
    return "\n".join(lines) + "\n"


#: Figures of the CSV, each as `<name>_mean` and `<name>_std` columns; `metric` stands for the sweep's metric
#: (final_accuracy_mean, final_mae_mean, ...).
STAT_FIELDS = ("final_metric", "best_metric", "rounds", "simulated_time")
_STAT_COLUMNS = [(name, part) for name in STAT_FIELDS for part in ("mean", "std")]


def _csv_name(name: str, metric: str) -> str:
    return name.replace("metric", metric) if metric != "metric" else name


def _number(value: float | None) -> str:
    """A CSV cell: the exact float, or empty for none."""
    return "" if value is None else repr(value)


def comparison_csv(table: Comparison) -> str:
    """One row per combination: the axis values (columns named by their paths), cells, done and plain numbers."""
    buffer = io.StringIO()
    metric = table.metric
    stats = [(f"{_csv_name(name, metric)}_{part}", name, part) for name, part in _STAT_COLUMNS]
    columns = [*table.labels, "cells", "done", *(column for column, _, _ in stats)]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        record: dict[str, Any] = {path: row.values.get(path) for path in table.labels}
        record |= {"cells": len(row.cells), "done": row.done}
        record |= {column: _number(getattr(getattr(row, name), part)) for column, name, part in stats}
        writer.writerow(record)
    return buffer.getvalue()


def write_comparison(table: Comparison, folder: Path) -> list[Path]:
    """summary.csv and summary.md in the sweep's folder."""
    written = [folder / "summary.csv", folder / "summary.md"]
    written[0].write_text(comparison_csv(table), encoding="utf-8")
    written[1].write_text(comparison_markdown(table) + f"\n{CAPTION}\n\n{best_line(table)}\n", encoding="utf-8")
    return written
