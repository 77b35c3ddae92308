"""The analysis table in four formats: a rich table for terminals, CSV, JSON and Markdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from enum import StrEnum

from rich.console import Console
from rich.table import Table
from rich.text import Text

from feles.analysis.summary import RunSummary, Stat, metric_label

#: Marks a figure that does not exist: the target was never reached, or no round was recorded.
MISSING = "n/a"
#: Marks a rounds-to-target cell of a run without a target metric.
NO_TARGET = "-"


class TableFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    MARKDOWN = "markdown"


def format_stat(stat: Stat, digits: int, thousands: bool = False) -> str:
    """`mean ± std` (just the mean for one repetition, n/a for none)."""
    if stat.mean is None or stat.std is None:
        return MISSING
    spec = f"{',' if thousands else ''}.{digits}f"
    if stat.n == 1:
        return format(stat.mean, spec)
    return f"{format(stat.mean, spec)} ± {format(stat.std, spec)}"


def format_rounds_to_target(summary: RunSummary) -> str:
    """Rounds until the test metric first reached the target, over the repetitions that reached it."""
    if summary.target is None:
        return NO_TARGET
    if summary.target_reached == 0:
        return MISSING
    text = format_stat(summary.rounds_to_target, 1 if summary.rounds_to_target.n > 1 else 0)
    if summary.target_reached < summary.repetitions:
        text += f" ({summary.target_reached}/{summary.repetitions} reps)"
    return text


Column = tuple[str, Callable[[RunSummary], str]]


def table_columns(metric: str) -> list[Column]:
    """(header, cell) of the human-readable table, shared by the rich and Markdown renderings (one-line headers
    there); `metric` heads the metric's columns (acc, mae, mse, or metric for runs of different ones)."""
    return [
        ("run", lambda s: s.label if s.status == "succeeded" else f"{s.label} [{s.status}]"),
        ("reps", lambda s: str(s.repetitions)),
        ("rounds", lambda s: format_stat(s.rounds, 0 if s.rounds.std == 0 else 1)),
        (f"final\ntest {metric}", lambda s: format_stat(s.final_metric, 4)),
        (f"best\ntest {metric}", lambda s: format_stat(s.best_metric, 4)),
        (f"target\n{metric}", lambda s: NO_TARGET if s.target is None else f"{s.target:g}"),
        ("rounds to\ntarget", format_rounds_to_target),
        ("simulated\ntime (s)", lambda s: format_stat(s.simulated_time, 1, thousands=True)),
        ("energy\n(mWh)", lambda s: format_stat(s.energy, 0, thousands=True)),
        ("failures", lambda s: format_stat(s.failures, 0 if s.failures.std == 0 else 1)),
    ]


#: The columns of a table of classification runs.
COLUMNS = table_columns("acc")


def columns_for(summaries: Sequence[RunSummary]) -> list[Column]:
    """The table's columns, the metric's headed by the runs' metric."""
    return table_columns(metric_label([summary.metric for summary in summaries]))


def rich_table(summaries: Sequence[RunSummary]) -> Table:
    """The table for a terminal; the caption says what the ± means."""
    table = Table(caption="mean ± sample std over repetitions; failures = failed fit + eval jobs", title_justify="left")
    columns = columns_for(summaries)
    for index, (header, _) in enumerate(columns):
        table.add_column(header, justify="left" if index == 0 else "right", overflow="fold")
    for summary in summaries:
        # Text, not str: rich would read a label's brackets (and the [running] marker) as markup and drop them.
        table.add_row(*(Text(cell(summary)) for _, cell in columns))
    return table


def print_rich_table(summaries: Sequence[RunSummary], console: Console) -> None:
    """Print the table; to a file or pipe at its natural width, since there is no terminal to fit."""
    table = rich_table(summaries)
    if not console.is_terminal:
        unbounded = console.options.update_width(100_000)
        console.width = max(console.width, console.measure(table, options=unbounded).maximum)
    console.print(table)


def markdown_table(summaries: Sequence[RunSummary]) -> str:
    columns = columns_for(summaries)
    lines = [
        "| " + " | ".join(header.replace("\n", " ") for header, _ in columns) + " |",
        "|" + "|".join("---" if index == 0 else "---:" for index in range(len(columns))) + "|",
    ]
    for summary in summaries:
        cells = (cell(summary).replace("|", "\\|") for _, cell in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: Figures of the CSV, each as two columns `<name>_mean` and `<name>_std`; the `metric` column names what
#: final_metric and best_metric measure.
STAT_FIELDS = [
    "rounds",
    "final_metric",
    "best_metric",
    "final_loss",
    "rounds_to_target",
    "simulated_time",
    "energy",
    "failures",
]
CSV_COLUMNS = [
    "label",
    "path",
    "algorithm",
    "dataset",
    "status",
    "repetitions",
    "metric",
    "target",
    "target_reached",
    *(f"{name}_{part}" for name in STAT_FIELDS for part in ("mean", "std")),
]


def csv_table(summaries: Sequence[RunSummary]) -> str:
    """One row per run with plain numbers (empty cell: no value); times in s, energy in mWh."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for summary in summaries:
        row: dict[str, object] = {
            "label": summary.label,
            "path": summary.path,
            "algorithm": summary.algorithm,
            "dataset": summary.dataset,
            "status": summary.status,
            "repetitions": summary.repetitions,
            "metric": summary.metric,
            "target": "" if summary.target is None else summary.target,
            "target_reached": summary.target_reached,
        }
        for name in STAT_FIELDS:
            stat: Stat = getattr(summary, name)
            row[f"{name}_mean"] = "" if stat.mean is None else repr(stat.mean)
            row[f"{name}_std"] = "" if stat.std is None else repr(stat.std)
        writer.writerow(row)
    return buffer.getvalue()


def json_table(summaries: Sequence[RunSummary]) -> str:
    """A list of runs; each figure is {mean, std, n} with null for a missing value."""
    return json.dumps([asdict(summary) for summary in summaries], indent=2) + "\n"


TEXT_RENDERERS: dict[TableFormat, Callable[[Sequence[RunSummary]], str]] = {
    TableFormat.CSV: csv_table,
    TableFormat.JSON: json_table,
    TableFormat.MARKDOWN: markdown_table,
}
