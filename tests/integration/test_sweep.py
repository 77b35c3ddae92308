"""`feles sweep` for real: a 2x2 grid of tiny digits simulations, two at a time, the comparison, re-runs, Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from feles.config import deep_merge
from tests.integration.conftest import DIGITS_SPEC

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def write_sweep(folder: Path, axes: list[dict[str, Any]], rounds: int = 2) -> Path:
    base = deep_merge(DIGITS_SPEC, {"simulation": {"num_rounds": rounds, "output_folder": str(folder / "grid")}})
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": base, "axes": axes, "seeds": [1, 2], "parallelism": 1}))
    return path


def feles_sweep(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "feles", "sweep", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=500, cwd=folder)


def status(cell: Path) -> str | None:
    path = cell / "results.json"
    return json.loads(path.read_text())["status"] if path.is_file() else None


def test_a_2x2_grid_runs_two_at_a_time_compares_and_a_rerun_skips_every_cell(tmp_path: Path) -> None:
    spec = write_sweep(tmp_path, [{"path": "data.non_iid_partitions", "values": [0.5, 10.0], "name": "alpha"}])
    done = feles_sweep(tmp_path, str(spec), "--parallel", "2")
    assert done.returncode == 0, done.stderr
    grid = tmp_path / "grid"
    cells = ["alpha-0p5-seed-1", "alpha-0p5-seed-2", "alpha-10-seed-1", "alpha-10-seed-2"]
    assert sorted(path.name for path in grid.iterdir() if path.is_dir()) == cells
    for name in cells:
        assert status(grid / name) == "succeeded", name
        written = yaml.safe_load((grid / name / "simulation.yaml").read_text())
        assert written["simulation"]["seed"] == int(name[-1]) and written["simulation"]["output_folder"] == str(
            grid / name
        )
        assert (grid / name / "logs" / "orchestrator.log").is_file()
    # The comparison: one row per alpha, mean ± std over the two seeds.
    assert "alpha" in done.stdout and "final test acc" in done.stdout and "2/2" in done.stdout
    markdown = (grid / "summary.md").read_text().splitlines()
    assert markdown[0].startswith("| alpha | seeds done | final test acc |")
    assert markdown[2].startswith("| 0.5 | 2/2 | ") and markdown[3].startswith("| 10 | 2/2 | ")
    assert " ± " in markdown[2]
    assert len((grid / "summary.csv").read_text().splitlines()) == 3

    def modified() -> dict[str, int]:
        return {str(path): path.stat().st_mtime_ns for name in cells for path in (grid / name).rglob("*")}

    before = modified()
    again = feles_sweep(tmp_path, str(spec), "--parallel", "2")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("succeeded before") == 4 and "4 cells: 4 skipped" in again.stderr
    assert modified() == before  # nothing in the finished cells' folders was written again
    summary = feles_sweep(tmp_path, str(grid), "--summary")
    assert summary.returncode == 0 and markdown[2].split(" | ")[3] in summary.stdout


def test_ctrl_c_leaves_every_cell_resumable_and_a_rerun_completes_the_grid(tmp_path: Path) -> None:
    # Two short cells first, then two long ones: Ctrl-C comes when the short ones are over, the long ones running.
    # 30 rounds: with 12, both long cells were sometimes over by the time Ctrl-C landed on a loaded machine.
    spec = write_sweep(tmp_path, [{"path": "simulation.num_rounds", "values": [1, 30], "name": "rounds"}])
    grid = tmp_path / "grid"
    short, long = ["rounds-1-seed-1", "rounds-1-seed-2"], ["rounds-30-seed-1", "rounds-30-seed-2"]
    run = subprocess.Popen(
        [sys.executable, "-m", "feles", "sweep", str(spec), "--parallel", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run in the background inherits an ignored SIGINT, which Python then leaves ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def running_long() -> bool:
        return any(
            (grid / name / "checkpoint.safetensors").is_file() and status(grid / name) == "running" for name in long
        )

    deadline = time.monotonic() + 300
    while not (all(status(grid / name) == "succeeded" for name in short) and running_long()):
        assert time.monotonic() < deadline and run.poll() is None, run.stderr.read() if run.poll() is not None else ""
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    assert "interrupted" in stderr and "every cell can resume" in stderr
    # The stopped cells read as interrupted and resumable, not as crashed by their stopped processes.
    assert "a re-run resumes it" in stderr and "every worker has exited" not in stderr, stderr
    assert re.search(r"^4 cells: 2 succeeded, [12] interrupted(;|$)", stderr, re.MULTILINE), stderr
    stopped = [name for name in long if status(grid / name) == "interrupted"]  # the orchestrators say so
    assert all(status(grid / name) in ("interrupted", None) for name in long)
    # A cell that had started but finished no round has no checkpoint: a re-run starts it over.
    interrupted = [name for name in stopped if (grid / name / "checkpoint.safetensors").is_file()]
    assert interrupted, "a long cell was running"
    before = {name: json.loads((grid / name / "results.json").read_text()) for name in interrupted}
    finished = {name: (grid / name / "results.json").read_bytes() for name in short}

    again = feles_sweep(tmp_path, str(spec), "--parallel", "2")
    assert again.returncode == 0, again.stderr
    assert all(status(grid / name) == "succeeded" for name in short + long)
    assert {name: (grid / name / "results.json").read_bytes() for name in short} == finished
    for name in interrupted:
        document = json.loads((grid / name / "results.json").read_text())
        assert len(document["rounds"]) == 30 and before[name]["rounds"]
        # Resumed, not restarted: the same run (a checkpoint keeps its run id), its first rounds as they were.
        assert document["run_id"] == before[name]["run_id"]
        assert document["rounds"][0] == before[name]["rounds"][0]


def test_a_regression_sweep_names_the_row_of_the_lowest_final_mae_best(tmp_path: Path) -> None:
    from tests.integration.test_regression_run import DIABETES_SPEC

    base = deep_merge(DIABETES_SPEC, {"simulation": {"num_rounds": 2, "output_folder": str(tmp_path / "grid")}})
    axes = [{"path": "algorithms.learning_rate", "values": [0.001, 0.05], "name": "lr"}]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": base, "axes": axes, "seeds": [1], "parallelism": 2}))
    done = feles_sweep(tmp_path, str(path))
    assert done.returncode == 0, done.stderr
    grid = tmp_path / "grid"
    finals = {}
    for lr, name in (("0.001", "lr-0p001-seed-1"), ("0.05", "lr-0p05-seed-1")):
        results = json.loads((grid / name / "results.json").read_text())
        finals[lr] = results["repetitions"][0]["final_test_mae"]
    best = min(finals, key=finals.__getitem__)
    line = f"best (final test mae, min): lr={best}: {finals[best]:.4f}"
    assert line in done.stdout
    assert (grid / "summary.md").read_text().rstrip().endswith(line)
    assert json.loads((grid / "sweep.json").read_text())["best"] == {"metric": "mae", "mode": "min"}
