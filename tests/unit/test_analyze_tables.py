"""feles.analysis.tables: every format carries the same figures and parses back."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from feles.analysis.loading import Run
from feles.analysis.summary import RunSummary, Stat, summarise
from feles.analysis.tables import (
    COLUMNS,
    CSV_COLUMNS,
    MISSING,
    NO_TARGET,
    csv_table,
    format_stat,
    json_table,
    markdown_table,
    print_rich_table,
)
from tests.unit.analyze_documents import accuracy_run, results_document, round_record


@pytest.fixture
def summaries() -> list[RunSummary]:
    """A two-repetition run that reaches its target, a one-repetition run that never does, one without target."""
    reached = results_document(accuracy_run([0.5, 0.8], [0.7, 0.7]), metric=0.7)
    missed = results_document([[round_record(0, 0, 0.4, fit_failed=2)]], metric=0.9, algorithm="fedprox")
    untargeted = results_document(accuracy_run([0.1]), algorithm="scaffold", status="running")
    return [
        summarise(Run(Path("a/results.json"), "a | fedavg", reached)),
        summarise(Run(Path("b.json"), "b", missed)),
        summarise(Run(Path("c.json"), "c", untargeted)),
    ]


def test_format_stat() -> None:
    assert format_stat(Stat(0.75, 0.05, 2), 4) == "0.7500 ± 0.0500"
    assert format_stat(Stat(0.75, 0.0, 1), 4) == "0.7500"
    assert format_stat(Stat(123456.7, 10.0, 3), 0, thousands=True) == "123,457 ± 10"
    assert format_stat(Stat(None, None, 0), 4) == MISSING


def test_csv_parses_back_to_the_summaries(summaries: list[RunSummary]) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_table(summaries))))
    assert list(rows[0]) == CSV_COLUMNS
    assert [row["label"] for row in rows] == ["a | fedavg", "b", "c"]
    first, second, third = rows
    assert float(first["final_metric_mean"]) == pytest.approx(0.75)
    assert float(first["final_metric_std"]) == pytest.approx(summaries[0].final_metric.std)
    assert float(first["rounds_to_target_mean"]) == pytest.approx(1.5)
    assert first["target"] == "0.7" and first["target_reached"] == "2"
    assert second["rounds_to_target_mean"] == "" and second["target_reached"] == "0"
    assert float(second["failures_mean"]) == 2.0
    assert third["target"] == "" and third["status"] == "running"


def test_json_parses_back_to_the_summaries(summaries: list[RunSummary]) -> None:
    runs = json.loads(json_table(summaries))
    assert [run["label"] for run in runs] == ["a | fedavg", "b", "c"]
    assert runs[0]["final_metric"] == {"mean": pytest.approx(0.75), "std": pytest.approx(0.0707107, rel=1e-5), "n": 2}
    assert runs[0]["rounds_to_target"]["mean"] == pytest.approx(1.5)
    assert runs[1]["rounds_to_target"] == {"mean": None, "std": None, "n": 0}
    assert runs[1]["algorithm"] == "fedprox" and runs[2]["target"] is None


def test_markdown_has_a_header_a_rule_and_one_line_per_run(summaries: list[RunSummary]) -> None:
    lines = markdown_table(summaries).splitlines()
    assert len(lines) == 2 + len(summaries)
    rows = [_markdown_cells(line) for line in lines]
    header, rule, *body = rows
    assert header == [name.replace("\n", " ") for name, _ in COLUMNS]
    assert all(set(cell) <= set("-:") for cell in rule)
    assert all(len(row) == len(header) for row in body)
    cells = [dict(zip(header, row, strict=True)) for row in body]
    assert cells[0]["run"] == "a \\| fedavg"  # a pipe in a label must not split the cell
    assert cells[0]["final test acc"] == "0.7500 ± 0.0707"
    assert cells[0]["rounds to target"] == "1.5 ± 0.7"
    assert cells[1]["rounds to target"] == MISSING
    assert cells[2]["rounds to target"] == NO_TARGET
    assert cells[2]["run"] == "c [running]"


def test_partly_reached_target_says_how_many_repetitions_reached_it() -> None:
    document = results_document(accuracy_run([0.5, 0.8], [0.5, 0.6]), metric=0.7)
    cells = _markdown_cells(markdown_table([summarise(Run(Path("r.json"), "r", document))]).splitlines()[2])
    assert cells[6] == "2 (1/2 reps)"


def test_rich_table_printed_to_a_file_keeps_every_column_whole(summaries: list[RunSummary]) -> None:
    buffer = io.StringIO()
    print_rich_table(summaries, Console(file=buffer, width=40))
    text = buffer.getvalue()
    assert "0.7500 ± 0.0707" in text
    assert "a | fedavg" in text
    assert "…" not in text


def _markdown_cells(line: str) -> list[str]:
    """The cells of a Markdown table line, honouring escaped pipes."""
    cells = line.strip().removeprefix("|").removesuffix("|").replace("\\|", "\0").split("|")
    return [cell.strip().replace("\0", "\\|") for cell in cells]


def test_rich_table_shows_brackets_in_labels_and_the_status_marker_literally() -> None:
    document = results_document(accuracy_run([0.5]), status="running")
    buffer = io.StringIO()
    print_rich_table([summarise(Run(Path("r.json"), "A [x] [bold]b[/bold]", document))], Console(file=buffer))
    assert "A [x] [bold]b[/bold] [running]" in buffer.getvalue()
