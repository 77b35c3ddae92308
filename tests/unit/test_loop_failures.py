"""Any failure of the simulation loop ends the run in Failed with the reason: never Running forever (issue 12.2)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from feles.config import parse_spec
from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.loop import RunParts, SimulationLoop
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.results import ResultsDocument
from feles.orchestrator.runner import JobRunner, Outcomes
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


def _loop(folder: Path) -> SimulationLoop:
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
        runner=FailingRunner(),
        models=ModelStore(),
        progress=Progress(),
        results=ResultsDocument(spec, "0" * 32),
    )
    return SimulationLoop(parts)


def test_a_results_write_that_fails_in_the_error_handler_still_ends_in_failed(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "results.json").mkdir(parents=True)  # every write of the results now raises IsADirectoryError
    loop = _loop(folder)
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
