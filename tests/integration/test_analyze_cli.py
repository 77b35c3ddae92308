"""`feles analyze` on the results of a real (tiny) simulation: table on stdout, PNG plots on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from feles.analysis.device_plots import DEVICE_PLOTS
from feles.analysis.plots import PLOTS
from feles.local import LocalRun, LocalRunOptions
from tests.integration.conftest import write_spec

pytestmark = pytest.mark.integration


def analyze(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feles", "analyze", *arguments], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits run of 2 repetitions x 3 rounds with a target accuracy, run by real processes."""
    folder = tmp_path_factory.mktemp("analyze")
    spec = write_spec(folder, {"simulation": {"num_rounds": 3, "repetitions": 2, "stop_conds": {"metric": 0.99}}})
    outcome = LocalRun(LocalRunOptions(spec, workers=2)).run()
    assert outcome.status.phase.value == "Succeeded", outcome.status.message
    return folder


def test_analyze_prints_the_table_and_writes_the_plots(results_folder: Path, tmp_path: Path) -> None:
    done = analyze(str(results_folder), "--plots", str(tmp_path / "plots"), "--format", "markdown", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads((results_folder / "out" / "results.json").read_text())
    final = [row["test_accuracy"] for row in document["rounds"] if row["round"] == 2]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("| run | reps | rounds | final test acc |")
    (row,) = [line for line in lines if line.startswith("| out (fedavg) |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:3] == ["2", "3 ± 0"]  # repetitions, rounds (both ran all 3)
    mean = sum(final) / 2
    assert cells[3].startswith(f"{mean:.4f} ± ")
    assert cells[5] == "0.99" and cells[6] == "n/a"  # digits in 3 rounds stays below 99 %
    for kind in PLOTS:
        assert (tmp_path / "plots" / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"


def test_analyze_without_plots_option_writes_them_beside_the_results(results_folder: Path, tmp_path: Path) -> None:
    done = analyze(str(results_folder / "out"), "--format", "csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("label,path,algorithm,")
    # The run has device records (devices/ beside results.json): the device figures come too.
    assert sorted(path.name for path in (results_folder / "out" / "plots").iterdir()) == sorted(
        f"{kind}.png" for kind in [*PLOTS, *DEVICE_PLOTS]
    )


def test_analyze_of_a_missing_path_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    done = analyze(str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 1
    assert "nowhere: no such file or folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_analyze_of_a_folder_without_results_exits_1(tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    done = analyze(str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert "no FELES results file under it" in done.stderr
    assert "skipped" in done.stderr and "notes.json" in done.stderr


def test_analyze_report_of_runs_with_and_without_device_records(results_folder: Path, tmp_path: Path) -> None:
    """Synthetic device records beside a real run that has none (until the orchestrator writes them)."""
    from tests.unit.device_records_documents import synthetic_tables, write_run

    write_run(tmp_path / "synthetic", synthetic_tables(20, 3, seed=5), [[0.5, 0.6, 0.7]], num_devices=20)
    report = tmp_path / "report.html"
    done = analyze(
        str(tmp_path / "synthetic"), str(results_folder), "--no-plots", "--report", str(report), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    text = report.read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') == len(PLOTS) + len(DEVICE_PLOTS)
    assert f"report: {report}" in done.stderr
    if not (results_folder / "out" / "devices").is_dir():
        assert "note: out (fedavg): no device records" in done.stderr.replace("\n", "")


def test_analyze_of_a_run_that_failed_before_its_first_round(tmp_path: Path) -> None:
    """A run whose dataset is missing: results.json says failed, there is no round and no devices/ folder."""
    (tmp_path / "empty").mkdir()
    spec = write_spec(tmp_path, {"simulation": {"dataset": "mnist", "data_dir": str(tmp_path / "empty")}})
    outcome = LocalRun(LocalRunOptions(spec, workers=1)).run()
    assert outcome.status.phase.value == "Failed"
    assert not (tmp_path / "out" / "devices").exists()
    done = analyze(str(tmp_path / "out"), "--no-plots", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "out (fedavg) [failed]" in done.stdout
    note = "note: out (fedavg): no device records (the run failed before its first round); device analyses skipped"
    assert note in done.stderr.replace("\n", "")
    assert "older FELES" not in done.stderr


def test_analyze_of_an_interrupted_run_marks_it_in_the_terminal_table(results_folder: Path, tmp_path: Path) -> None:
    document = json.loads((results_folder / "out" / "results.json").read_text())
    document["status"] = "running"
    (tmp_path / "long").mkdir()
    (tmp_path / "long" / "results.json").write_text(json.dumps(document))
    done = analyze(str(tmp_path / "long"), "--no-plots", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "long (fedavg) [running]" in done.stdout
    labelled = analyze(str(tmp_path / "long"), "--no-plots", "-l", "A [x]", cwd=tmp_path)
    assert "A [x] [running]" in labelled.stdout
    assert "note: A [x]: no device records" in labelled.stderr
