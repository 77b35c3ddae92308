"""`feles sweep` at the command line, before any cell runs: what a user sees for a bad sweep file or folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from feles.cli import app

BASE = {
    "simulation": {"dataset": "digits", "num_rounds": 2, "test_shard_size": 400, "output_folder": "out/sweep"},
    "devices": {"num": 20},
    "data": {"num_examples_mean": 30},
}
SELECTION = {"path": "algorithms.fit.selection", "values": ["random"], "name": "sel"}


def write_sweep(folder: Path, axes: list[dict[str, Any]], seeds: list[int]) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": BASE, "axes": axes, "seeds": seeds}))
    return path


def feles_sweep(folder: Path, *arguments: str, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(folder)
    return CliRunner().invoke(app, ["sweep", *arguments])


def refused(result: Result) -> list[str]:
    """The lines a refused sweep printed; it exited 1 by itself (an uncaught exception also reads exit code 1)."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    return result.output.splitlines()


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_seed_given_twice_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    path = write_sweep(tmp_path, [SELECTION], [1, 2, 2])
    result = feles_sweep(tmp_path, str(path), *(["--dry-run"] if dry_run else []), monkeypatch=monkeypatch)
    assert refused(result) == [
        f"invalid sweep {path}: 1 error(s)",
        "  seeds: 2 is given 2 times (seeds[1], seeds[2]): give each value once: a repeat adds no cell, it only "
        "counts the same cells again",
    ]
    assert not (tmp_path / "out").exists()


def test_a_value_given_twice_names_the_axis_and_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_sweep(tmp_path, [{**SELECTION, "values": ["random", "random"]}], [1, 1])
    result = feles_sweep(tmp_path, str(path), "--dry-run", monkeypatch=monkeypatch)
    assert refused(result)[0] == f"invalid sweep {path}: 2 error(s)"
    assert '  axes[0].values: "random" is given 2 times in axis sel (values[0], values[1]): ' in result.output
    assert "  seeds: 1 is given 2 times (seeds[0], seeds[1]): " in result.output
    assert "sel-random-seed-1" not in result.output  # the grid is not listed (it listed one cell four times)


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize(("output", "reason"), [("afile", "it is a file, not a folder"), ("afile/sub", "afile is")])
def test_an_output_folder_that_is_a_file_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool, output: str, reason: str
) -> None:
    (tmp_path / "afile").write_text("mine")
    path = write_sweep(tmp_path, [SELECTION], [1])
    arguments = [str(path), "--output", output, *(["--dry-run"] if dry_run else [])]
    result = feles_sweep(tmp_path, *arguments, monkeypatch=monkeypatch)
    [line] = refused(result)
    assert line.startswith(f"cannot run the sweep: output folder '{output}' cannot hold the cells: {reason}")
    assert (tmp_path / "afile").read_text() == "mine"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs sysfs")
def test_an_output_folder_only_writing_refuses_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sysfs takes no new folder, from anyone (root included): only the run, which writes, can tell.
    path = write_sweep(tmp_path, [SELECTION], [1])
    result = feles_sweep(tmp_path, str(path), "--output", "/sys/feles-test/out", monkeypatch=monkeypatch)
    [line] = refused(result)
    assert line.startswith("cannot run the sweep: output folder '/sys/feles-test/out' cannot hold the cells: ")


def test_stack_jobs_below_1_is_refused_naming_the_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_sweep(tmp_path, [{"path": "data.non_iid_partitions", "values": [0.5, 10.0]}], [1])
    done = feles_sweep(tmp_path, str(spec), "--stack-jobs", "0", monkeypatch=monkeypatch)
    assert done.exit_code == 2
    assert "--stack-jobs" in done.output
