"""Any failure of the simulation loop ends the run in Failed with the reason: never Running forever (issue 12.2)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from feles.config import parse_spec
from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.loop import RunParts, SimulationLoop
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.results import ResultsDocument
from feles.orchestrator.runner import JobRunner, Outcomes, SimulationStopped
from feles.orchestrator.server import OutputFolderError, check_output_folder
from feles.orchestrator.state import Progress
from feles.protocol import SimulationPhase


class FailingRunner(JobRunner):
    """A runner whose workers never answer: every batch of jobs fails."""

    lease_seconds = 10.0

    def submit(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> None:
        raise RuntimeError("no worker can run this")

    def wait(self, blocks: Sequence[JobBlock]) -> None:  # pragma: no cover - submit fails first
        pass

    def take(self, blocks: Sequence[JobBlock]) -> Outcomes:  # pragma: no cover
        return Outcomes()

    def stop(self) -> None:
        pass


def _loop(folder: Path, runner: JobRunner | None = None) -> SimulationLoop:
    spec = parse_spec(
        {
            "simulation": {"dataset": "digits", "model": "logreg", "num_rounds": 1, "output_folder": str(folder)},
            "devices": {"num": 10},
            "data": {"num_examples_mean": 20},
        }
    )
    parts = RunParts(
        spec=spec,
        run_id="0" * 32,
        model_name="logreg",
        runner=runner or FailingRunner(),
        models=ModelStore(),
        progress=Progress(),
        results=ResultsDocument(spec, "0" * 32),
    )
    return SimulationLoop(parts)


class ResultsBlockingRunner(FailingRunner):
    """Fails as FailingRunner does, after putting a folder where the results file is: every later write of the
    results raises IsADirectoryError."""

    def __init__(self, results: Path) -> None:
        self.results = results

    def submit(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> None:
        self.results.unlink()  # written as the run started
        self.results.mkdir()
        super().submit(blocks, payloads)


def test_a_results_write_that_fails_in_the_error_handler_still_ends_in_failed(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    loop = _loop(folder, ResultsBlockingRunner(folder / "results.json"))
    loop.run()  # before the fix: IsADirectoryError escaped and the phase stayed Running
    assert loop.progress.phase is SimulationPhase.FAILED
    assert "RuntimeError: no worker can run this" in loop.progress.message
    assert "cannot write the results" in loop.progress.message
    assert loop.progress.finished_at is not None


def test_an_output_folder_that_is_a_file_is_refused_before_serving(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("not a folder")
    with pytest.raises(OutputFolderError, match="cannot hold the results"):
        check_output_folder(target)


def test_an_unwritable_output_folder_is_refused_before_serving(tmp_path: Path) -> None:
    with unwritable_folder(tmp_path) as folder, pytest.raises(OutputFolderError, match="cannot hold the results"):
        check_output_folder(folder / "results")


def test_a_writable_output_folder_is_created_and_left_clean(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    check_output_folder(folder)
    assert folder.is_dir() and not any(folder.iterdir())


@contextmanager
def unwritable_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing may be created in: read-only by mode, or for root (whom modes do not stop) one in sysfs."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        yield folder if not _can_create(folder) else Path("/sys/feles-test")
    finally:
        folder.chmod(0o700)


def _can_create(folder: Path) -> bool:
    try:
        (folder / ".probe").mkdir()
    except OSError:
        return False
    (folder / ".probe").rmdir()
    return True


def test_a_fresh_run_replaces_the_previous_runs_results_before_its_first_round(tmp_path: Path) -> None:
    # Its records and checkpoint go as it starts: an older run's results beside them would pass for this run's.
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "results.json").write_text('{"status": "succeeded", "run_id": "an older run", "rounds": [{}]}')
    (folder / "results.csv").write_text("round\n0\n")
    loop = _loop(folder)
    loop.run()  # fails at its first hand-out
    results = json.loads((folder / "results.json").read_text())
    assert (results["run_id"], results["status"], results["rounds"]) == ("0" * 32, "failed", [])
    assert (folder / "results.csv").read_text().count("\n") == 1  # the header alone


class StoppingRunner(FailingRunner):
    """The orchestrator shutting down (SIGTERM, Ctrl-C) while the first jobs are out."""

    def submit(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> None:
        raise SimulationStopped


def test_a_stopped_run_says_so_in_its_results_instead_of_running(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    loop = _loop(folder, StoppingRunner())
    loop.run()
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "interrupted"
    assert results["message"] == "stopped before the end: resuming continues after the last recorded round"
