"""Resuming a sweep: which cells a re-run skips, resumes or starts, from what their folders hold."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from feles import sweep_local
from feles.config import spec_to_yaml
from feles.local import LocalRunError, LocalRunOptions
from feles.protocol import SimulationPhase, SimulationStatus
from feles.sweep import Best, SweepError, expand, parse_sweep
from feles.sweep_local import (
    Action,
    CellProgress,
    CellState,
    SweepFolderError,
    SweepRun,
    SweepRunOptions,
    decide,
    folder_problem,
    plan,
    progress_table,
    read_state,
)

SWEEP = parse_sweep(
    {
        "base": {"simulation": {"dataset": "digits", "num_rounds": 2}, "devices": {"num": 20}},
        "axes": [{"path": "data.non_iid_partitions", "values": [0.5, 10.0], "name": "alpha"}],
        "seeds": [1, 2],
    }
)
CELLS = expand(SWEEP)
SPEC = CELLS[0].spec
DOCUMENT = SPEC.model_dump(mode="json")


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (CellState(), Action.START),
        (CellState(DOCUMENT), Action.START),  # prepared, never ran
        (CellState(DOCUMENT, "running", checkpoint=True), Action.RESUME),
        (CellState(DOCUMENT, None, checkpoint=True), Action.RESUME),  # killed before its first results file
        (CellState(DOCUMENT, "running", checkpoint=False), Action.START),
        (CellState(DOCUMENT, "succeeded", checkpoint=True), Action.SKIP),
        (CellState(DOCUMENT, "failed", checkpoint=True), Action.SKIP_FAILED),
    ],
)
def test_decide(state: CellState, action: Action) -> None:
    assert decide(SPEC, state) is action


def test_failed_cells_rerun_on_request_and_fresh_restarts_everything() -> None:
    assert decide(SPEC, CellState(DOCUMENT, "failed"), retry_failed=True) is Action.START
    assert decide(SPEC, CellState(DOCUMENT, "succeeded", checkpoint=True), fresh=True) is Action.START


def test_a_folder_of_another_spec_is_a_conflict_but_a_moved_folder_is_not() -> None:
    moved = {**DOCUMENT, "simulation": {**DOCUMENT["simulation"], "output_folder": "/elsewhere"}}
    assert decide(SPEC, CellState(moved, "succeeded")) is Action.SKIP
    other = {**DOCUMENT, "simulation": {**DOCUMENT["simulation"], "num_rounds": 5}}
    with pytest.raises(ValueError, match="another simulation's spec"):
        decide(SPEC, CellState(other, "running", checkpoint=True))
    assert decide(SPEC, CellState(other, "running", checkpoint=True), fresh=True) is Action.START


def write_cell(folder: Path, spec_text: str, status: str | None = None, checkpoint: bool = False) -> None:
    folder.mkdir(parents=True)
    (folder / "simulation.yaml").write_text(spec_text)
    if status is not None:
        (folder / "results.json").write_text(json.dumps({"status": status}))
    if checkpoint:
        (folder / "checkpoint.safetensors").write_bytes(b"x")


def test_read_state(tmp_path: Path) -> None:
    assert read_state(tmp_path / "missing") == CellState()
    write_cell(tmp_path / "cell", spec_to_yaml(SPEC), "running", checkpoint=True)
    assert read_state(tmp_path / "cell") == CellState(DOCUMENT, "running", True)
    (tmp_path / "cell" / "results.json").write_text("{half")
    assert read_state(tmp_path / "cell").results_status is None


def test_plan_skips_finished_resumes_interrupted_starts_the_rest(tmp_path: Path) -> None:
    runner_folder = tmp_path / "sweep"
    write_cell(runner_folder / CELLS[0].name, spec_to_yaml(CELLS[0].spec), "succeeded", checkpoint=True)
    write_cell(runner_folder / CELLS[1].name, spec_to_yaml(CELLS[1].spec), "running", checkpoint=True)
    write_cell(runner_folder / CELLS[2].name, spec_to_yaml(CELLS[2].spec), "failed")
    decisions = plan(CELLS, runner_folder)
    assert [(cell.name, action) for cell, action in decisions] == [
        ("alpha-0p5-seed-1", Action.SKIP),
        ("alpha-0p5-seed-2", Action.RESUME),
        ("alpha-10-seed-1", Action.SKIP_FAILED),
        ("alpha-10-seed-2", Action.START),
    ]


def test_plan_names_every_conflicting_cell(tmp_path: Path) -> None:
    for cell in CELLS[:2]:
        write_cell(tmp_path / cell.name, spec_to_yaml(CELLS[3].spec), "running", checkpoint=True)
    with pytest.raises(SweepError) as raised:
        plan(CELLS, tmp_path)
    assert [where for where, _ in raised.value.errors] == ["cell alpha-0p5-seed-1", "cell alpha-0p5-seed-2"]


def test_prepare_writes_the_manifest_and_each_cells_spec_into_its_folder(tmp_path: Path) -> None:
    runner = SweepRun(SWEEP, CELLS, SweepRunOptions(folder=tmp_path / "out"))
    runner.prepare()
    manifest = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert [cell["name"] for cell in manifest["cells"]] == [cell.name for cell in CELLS]
    state = read_state(tmp_path / "out" / CELLS[1].name)
    assert state.spec is not None and state.spec["simulation"]["output_folder"] == str(tmp_path / "out" / CELLS[1].name)
    assert state.spec["simulation"]["seed"] == 2 and state.spec["data"]["non_iid_partitions"] == 0.5
    # Prepared but never run: a re-run starts them, not a conflict.
    assert [action for _, action in plan(CELLS, tmp_path / "out")] == [Action.START] * 4


def test_the_live_table_counts_cells_by_phase(tmp_path: Path) -> None:
    write_cell(tmp_path / CELLS[0].name, spec_to_yaml(CELLS[0].spec), "succeeded")
    write_cell(tmp_path / CELLS[1].name, spec_to_yaml(CELLS[1].spec), "failed")
    runner = SweepRun(SWEEP, CELLS, SweepRunOptions(folder=tmp_path))
    assert runner.failed_cells() == [CELLS[1].name]
    table = progress_table(runner.progress)
    assert table.caption == "4 cells: 2 skipped, 2 waiting"
    assert [column.header for column in table.columns][:4] == ["cell", "phase", "round", "accuracy"]
    assert table.row_count == 4


def test_the_live_table_heads_the_value_with_the_cells_metric() -> None:
    cells = {
        "a": CellProgress("a", Action.START, "Running", 2, 3, value=48.5, metric="mae"),
        "b": CellProgress("b", Action.START, "Running", 1, 3, value=51.25, metric="mae"),
    }
    table = progress_table(cells)
    assert [column.header for column in table.columns][:4] == ["cell", "phase", "round", "mae"]
    assert list(table.columns[3].cells) == ["48.5000", "51.2500"]
    cells["c"] = CellProgress("c", Action.START, metric="accuracy")
    assert progress_table(cells).columns[3].header == "metric"


def test_the_live_table_names_the_best_finished_cell_by_the_sweeps_objective() -> None:
    cells = {
        "a": CellProgress("a", Action.START, "Succeeded", 3, 3, value=48.5, metric="mae", loss=3900.0),
        "b": CellProgress("b", Action.START, "Succeeded", 3, 3, value=51.25, metric="mae", loss=3500.0),
        "c": CellProgress("c", Action.START, "Running", 1, 3, value=20.0, metric="mae", loss=900.0),  # not final
    }
    by_error = Best().objective("mae")
    assert progress_table(cells, by_error).caption == "3 cells: 2 succeeded, 1 running; best mae 48.5000: a"
    assert progress_table(cells, Best(metric="loss").objective("mae")).caption.endswith("best loss 3500.0000: b")
    assert progress_table(cells, Best(mode="max").objective("mae")).caption.endswith("best mae 51.2500: b")
    assert progress_table(cells).caption == "3 cells: 2 succeeded, 1 running"


def test_a_regression_sweep_run_ranks_by_its_error(tmp_path: Path) -> None:
    regression = parse_sweep(
        {
            "base": {"simulation": {"dataset": "diabetes", "metric": "mae", "num_rounds": 2}, "devices": {"num": 8}},
            "seeds": [1, 2],
        }
    )
    runner = SweepRun(regression, expand(regression), SweepRunOptions(folder=tmp_path))
    assert (runner.objective.metric, runner.objective.higher_is_better) == ("mae", False)
    runner.prepare()
    assert json.loads((tmp_path / "sweep.json").read_text())["best"] == {"metric": "mae", "mode": "min"}


# --- The sweep's folder ---


def test_a_folder_that_is_a_file_or_under_one_cannot_hold_the_cells(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert folder_problem(tmp_path / "new" / "deeper") is None  # created as the sweep starts
    assert folder_problem(afile) == "it is a file, not a folder"
    assert folder_problem(afile / "sub") == f"{afile} is a file, not a folder"
    runner = SweepRun(SWEEP, CELLS, SweepRunOptions(folder=afile))
    with pytest.raises(SweepFolderError) as raised:
        runner.prepare()
    assert str(raised.value) == f"output folder {str(afile)!r} cannot hold the cells: it is a file, not a folder"
    assert afile.read_text() == "mine"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs sysfs")
def test_a_folder_only_writing_refuses_is_reported_by_prepare() -> None:
    # sysfs takes no new folder, from anyone (root included), which only trying tells.
    folder = Path("/sys/feles-test/out")
    with pytest.raises(SweepFolderError, match=r"^output folder '/sys/feles-test/out' cannot hold the cells: "):
        SweepRun(SWEEP, CELLS, SweepRunOptions(folder=folder)).prepare()


# --- Ctrl-C ---


class StoppedRun:
    """A cell's run that reports round 3 of 10, keeps a checkpoint (unless told not to), then gets Ctrl-C and ends
    as a stopped run does: its processes gone, a LocalRunError saying so."""

    checkpoint = True

    def __init__(self, options: LocalRunOptions) -> None:
        self.folder = options.config.parent
        self.stopped = threading.Event()

    def run(self, show: Callable[[SimulationStatus], None]) -> None:
        show(
            SimulationStatus(
                phase=SimulationPhase.RUNNING, repetition=0, repetitions=1, round=3, rounds=10, metric_value=0.5
            )
        )
        if self.checkpoint:
            (self.folder / "checkpoint.safetensors").write_bytes(b"x")
        (self.folder / "results.json").write_text(json.dumps({"status": "interrupted"}))
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        self.stopped.wait(30)
        raise LocalRunError("worker-0 every worker has exited (log: logs/worker-0.log)")

    def stop(self) -> None:
        self.stopped.set()


@pytest.mark.parametrize(
    ("checkpoint", "message", "action"),
    [
        (True, "a re-run resumes it from its last finished round", Action.RESUME),
        (False, "a re-run starts it over (no round finished)", Action.START),
    ],
)
def test_ctrl_c_shows_the_running_cell_interrupted_and_the_others_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkpoint: bool, message: str, action: Action
) -> None:
    write_cell(tmp_path / CELLS[0].name, spec_to_yaml(CELLS[0].spec), "succeeded")
    monkeypatch.setattr(sweep_local, "LocalRun", StoppedRun)
    monkeypatch.setattr(StoppedRun, "checkpoint", checkpoint)
    runner = SweepRun(SWEEP, CELLS, SweepRunOptions(folder=tmp_path, parallel=1))
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    shown = {name: (cell.phase, cell.round, cell.message) for name, cell in runner.progress.items()}
    assert shown == {
        "alpha-0p5-seed-1": ("skipped", 0, "succeeded before"),
        "alpha-0p5-seed-2": ("interrupted", 3, message),  # not the stopped processes' "every worker has exited"
        "alpha-10-seed-1": ("not started", 0, ""),
        "alpha-10-seed-2": ("not started", 0, ""),
    }
    assert progress_table(runner.progress).caption == "4 cells: 1 skipped, 1 interrupted, 2 not started"
    # What a re-run does: resume the interrupted cell, start the others.
    assert [planned for _, planned in plan(CELLS, tmp_path)] == [Action.SKIP, action, Action.START, Action.START]


class RecordedRun:
    """A cell's run that only records the options it was given, then fails as a broken run would."""

    options: list[LocalRunOptions] = []

    def __init__(self, options: LocalRunOptions) -> None:
        RecordedRun.options.append(options)

    def run(self, show: Callable[[SimulationStatus], None]) -> None:
        raise LocalRunError("orchestrator exited with code 1")

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("stack_jobs", [1, 8])
def test_every_cell_runs_with_the_sweeps_stack_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack_jobs: int
) -> None:
    monkeypatch.setattr(sweep_local, "LocalRun", RecordedRun)
    monkeypatch.setattr(RecordedRun, "options", [])
    SweepRun(SWEEP, CELLS, SweepRunOptions(folder=tmp_path, parallel=1, stack_jobs=stack_jobs)).run()
    assert [options.stack_jobs for options in RecordedRun.options] == [stack_jobs] * len(CELLS)
