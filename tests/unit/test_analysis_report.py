"""feles analyze --report: one self-contained HTML file with the tables, the figures inline and the specs."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from feles.analysis.device_plots import DEVICE_PLOTS
from feles.analysis.plots import PLOTS
from feles.analyze import analyze
from tests.unit.device_records_documents import (
    availability_table,
    failed,
    job,
    population_table,
    records_table,
    synthetic_tables,
    write_run,
)

HOSTILE = '<script>alert("x")</script>'


class Tables(HTMLParser):
    """The cells of each table and the src of each img of a document (also checks that it parses)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> tuple[str, Tables]:
    text = path.read_text(encoding="utf-8")
    tables = Tables()
    tables.feed(text)
    return text, tables


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    # Run "small": 3 devices, one never selected, one lost fit job; 4 s rounds of which 2 s communication.
    small = (
        records_table([job(0, 0, energy=10.0), failed(1, "lost", 0), job(0, 0, "eval", energy=4.0)]),
        availability_table([[0, 1]]),
        population_table(3),
    )
    write_run(root / "small", small, [[0.5, 0.625]], num_devices=3, note=HOSTILE)
    write_run(root / "big", synthetic_tables(50, 5, seed=4), [[0.4] * 5], "fedprox", num_devices=50)
    write_run(root / "old", None, [[0.3]])
    return root


@pytest.fixture(scope="module")
def report(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    analysis = analyze([results / "small", results / "big", results / "old"], None, report=path)
    assert analysis.report == path
    return path


def test_the_report_is_one_file_with_every_figure_inline(report: Path) -> None:
    assert [path.name for path in report.parent.iterdir()] == ["report.html"]
    text, tables = parse(report)
    assert len(tables.images) == len(PLOTS) + len(DEVICE_PLOTS)
    for source in tables.images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.removeprefix("data:image/png;base64,"))[:4] == b"\x89PNG"
    # Nothing to fetch: no external address, no script.
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert "<script" not in text


def test_the_comparison_table_has_the_numbers_of_each_run(report: Path) -> None:
    _, tables = parse(report)
    comparison, failures, results = tables.tables
    header, small, big, old = comparison
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in (small, big, old)}
    assert list(rows) == ["small (fedavg)", "big (fedprox)", "old (fedavg)"]
    row = rows["small (fedavg)"]
    assert row["final test acc"] == "0.6250"
    assert (row["devices"], row["never selected"], row["failed jobs"]) == ("3", "1", "1")
    # Fit selections 1, 1, 0 of 3 devices: Jain 4 / 6; Gini 1/3.
    assert (row["Jain"], row["Gini"]) == ("0.667", "0.333")
    # Fit: 2 + 1 + 1 s; eval 2 + 1 + 1 s: 8 s, of which 4 s communication. Energy: 10 + 4 mWh.
    assert (row["mean round time (s)"], row["communication share"], row["energy (mWh)"]) == ("8.0", "50.0 %", "14")
    assert rows["old (fedavg)"]["Jain"] == "n/a"
    failures_row = dict(zip(failures[0], failures[1], strict=True))
    assert failures_row["lost (fit)"] == "1" and failures_row["random (fit)"] == "0"
    assert results[0][:3] == ["run", "reps", "rounds"]


def test_the_report_has_each_spec_and_escapes_what_runs_provide(report: Path) -> None:
    text, _ = parse(report)
    assert HOSTILE not in text
    assert "&quot;note&quot;: &quot;&lt;script&gt;alert(\\&quot;x\\&quot;)&lt;/script&gt;&quot;" in text  # in the spec
    for name in ("small", "big", "old"):
        assert f"<summary>{name} (" in text
    assert text.count("<details><summary>") >= 3
    assert "&quot;federated_algorithm&quot;: &quot;fedprox&quot;" in text


def test_the_report_notes_runs_without_records(report: Path) -> None:
    text, _ = parse(report)
    assert "old (fedavg): no device records" in text
    assert "never selected for fit" in text  # the ids of small and big


def test_a_hostile_label_is_escaped_everywhere(results: Path, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    analyze([results / "small", results / "old"], None, labels=[HOSTILE, "b & c"], report=path)
    text, tables = parse(path)
    assert HOSTILE not in text and "b & c" not in text
    assert tables.tables[0][1][0] == HOSTILE  # the cell reads right once unescaped


def test_a_report_of_runs_without_any_records(results: Path, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    analysis = analyze([results / "old"], None, report=path)
    _, tables = parse(path)
    assert len(tables.images) == len(PLOTS)
    assert tables.tables[0][1][tables.tables[0][0].index("Jain")] == "n/a"
    assert analysis.plots == []
