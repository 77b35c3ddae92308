"""`feles analyze` at the command line on hand-built results: what a user sees on stdout and stderr, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from feles.cli import app
from tests.unit.analyze_documents import accuracy_run, results_document, round_record, write_document


def analyze(*arguments: str) -> Result:
    return CliRunner().invoke(app, ["analyze", *arguments])


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """An interrupted classification run (results.json status running) of two rounds."""
    document = results_document(accuracy_run([0.5, 0.6]), status="running")
    return write_document(tmp_path / "long" / "results.json", document)


@pytest.fixture
def regression(tmp_path: Path) -> Path:
    """A regression run whose test mae goes 80, 50, 45."""
    rounds = [[round_record(0, r, 0.0, test_mae=mae) for r, mae in enumerate([80.0, 50.0, 45.0])]]
    document = results_document(rounds)
    document["metric"] = "mae"
    return write_document(tmp_path / "reg" / "results.json", document)


# --- text shown literally (rich reads brackets as markup) ---


def test_the_table_shows_the_status_marker_and_bracketed_labels(run: Path) -> None:
    assert "long (fedavg) [running]" in analyze(str(run), "--no-plots").stdout
    done = analyze(str(run), "--no-plots", "-l", "A [x]")
    assert done.exit_code == 0, done.output
    assert "A [x] [running]" in done.stdout
    assert "note: A [x]: no device records" in done.stderr


def test_warnings_and_errors_show_bracketed_paths(tmp_path: Path) -> None:
    folder = tmp_path / "runs [old]"
    write_document(folder / "results.json", results_document(accuracy_run([0.5])))
    (folder / "notes [1].json").write_text('{"a": 1}')
    done = analyze(str(folder), "--no-plots")
    assert done.exit_code == 0, done.output
    assert f"warning: skipped {folder}/notes [1].json: not a FELES results document" in done.stderr
    missing = analyze(str(tmp_path / "gone [2]"))
    assert missing.exit_code == 1
    assert f"cannot analyse: {tmp_path}/gone [2]: no such file or folder" in missing.stderr


# --- --target in the runs' metric ---


def test_a_regression_target_is_an_error_reached_at_or_below_it(regression: Path) -> None:
    done = analyze(str(regression), "--no-plots", "-f", "csv", "--target", "50")
    assert done.exit_code == 0, done.output
    assert ",mae,50.0,1," in done.stdout  # metric, target, repetitions that reached it
    assert "rounds_to_target" in done.stdout.splitlines()[0]
    row = dict(zip(*(line.split(",") for line in done.stdout.splitlines()), strict=True))
    assert float(row["rounds_to_target_mean"]) == 2.0


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("50", "50 is not an accuracy: the runs measure accuracy, between 0 and 1"),
        ("-0.5", "-0.5 is not an accuracy"),
        ("nan", "nan is not a number"),
    ],
)
def test_an_accuracy_target_outside_0_1_is_a_usage_error(run: Path, tmp_path: Path, target: str, message: str) -> None:
    done = analyze(str(run), "--plots", str(tmp_path / "plots"), f"--target={target}")
    assert done.exit_code == 2
    assert "Invalid value for '--target'" in done.stderr
    assert message in " ".join(line.strip("│ ") for line in done.stderr.splitlines())
    assert done.stdout == "" and not (tmp_path / "plots").exists()


def test_a_target_for_runs_of_different_metrics_is_a_usage_error(run: Path, regression: Path) -> None:
    done = analyze(str(run), str(regression), "--no-plots", "--target", "0.5")
    assert done.exit_code == 2
    assert "the runs measure different metrics" in " ".join(line.strip("│ ") for line in done.stderr.splitlines())


def test_the_help_says_what_a_target_means_for_each_metric() -> None:
    text = " ".join(CliRunner().invoke(app, ["analyze", "--help"], env={"COLUMNS": "300"}).output.split())
    assert "an accuracy in [0, 1] (reached at or above it)" in text
    assert "a regression run's mae or mse (reached at or below it)" in text


# --- output paths checked before any work ---


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--plots", "{file}"], "{file}: is a file, not a folder"),
        (["--plots", "{file}/sub"], "{file}/sub: {file} is a file, not a folder"),
        (
            ["--no-plots", "--report", "{folder}"],
            "{folder}: is a folder; give the report a file name (e.g. report.html)",
        ),
        (["--no-plots", "--report", "{file}/rep.html"], "{file}/rep.html: {file} is a file, not a folder"),
        (["--no-plots", "--report", "{run}"], "{run}: is a results file being analysed; the report would overwrite it"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_one_line_before_any_work(
    run: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    afile, folder = tmp_path / "afile", tmp_path / "somedir"
    afile.write_text("")
    folder.mkdir()
    before = run.read_text()
    paths = {"file": str(afile), "folder": str(folder), "run": str(run)}
    done = analyze(str(run), *(option.format(**paths) for option in options))
    assert done.exit_code == 1
    assert done.stderr == f"cannot write: {message.format(**paths)}\n"
    assert done.stdout == ""  # no table printed before the error
    assert run.read_text() == before


def test_a_write_that_fails_midway_is_one_line(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    done = analyze(str(run), "--plots", str(tmp_path / "plots"))
    assert done.exit_code == 1
    expected = f"cannot write: {tmp_path}/plots/accuracy_loss_by_round.png: cannot write it (No space left on device)"
    assert done.stderr.strip() == expected
