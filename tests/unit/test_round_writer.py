"""The round writer: a round's files are written on a thread of their own while the next round runs, in order,
and a failed write still ends the run in Failed with its reason."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from feles.config import parse_spec
from feles.orchestrator.loop import RunParts, SimulationLoop
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.results import ResultsDocument
from feles.orchestrator.round_writer import RoundWriter
from feles.orchestrator.state import Progress
from feles.protocol import SimulationPhase
from tests.unit.test_round_phases import AnsweringRunner


def test_writes_run_one_at_a_time_in_order_off_the_callers_thread() -> None:
    writer, done, threads = RoundWriter(), [], set()
    release = threading.Event()

    def write(index: int) -> None:
        if index == 0:
            release.wait(5)  # the first write is slow: the second must wait for it
        threads.add(threading.get_ident())
        done.append(index)

    writer.submit(lambda: write(0))
    assert done == []  # the caller goes on while the write waits
    release.set()
    writer.submit(lambda: write(1))
    writer.wait()
    writer.close()
    assert done == [0, 1] and threading.get_ident() not in threads


def test_a_failed_write_raises_at_the_next_wait_once() -> None:
    writer = RoundWriter()
    writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        writer.wait()
    writer.wait()  # reported once
    writer.close()


def _spec(folder: Path, rounds: int = 3) -> dict[str, object]:
    return {
        "simulation": {"dataset": "digits", "model": "logreg", "num_rounds": rounds, "output_folder": str(folder)},
        "devices": {"num": 10, "p_fail": 0.0, "p_available": 1.0},
        "data": {"num_examples_mean": 20},
    }


def _run(folder: Path) -> SimulationLoop:
    spec = parse_spec(_spec(folder))
    models = ModelStore()
    parts = RunParts(
        spec, "0" * 32, "logreg", AnsweringRunner(models), models, Progress(), ResultsDocument(spec, "0" * 32)
    )
    loop = SimulationLoop(parts)
    loop.run()
    return loop


def test_every_rounds_files_are_written_when_the_run_ends(tmp_path: Path) -> None:
    loop = _run(tmp_path)
    assert loop.progress.phase is SimulationPhase.SUCCEEDED and loop.progress.round == 3
    assert len(json.loads((tmp_path / "results.json").read_text())["rounds"]) == 3
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 4
    assert (tmp_path / "checkpoint.safetensors").stat().st_size > 0


def test_a_checkpoint_that_cannot_be_written_ends_the_run_in_failed(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.safetensors").mkdir(parents=True)  # replacing a folder by a file fails
    loop = _run(tmp_path)
    assert loop.progress.phase is SimulationPhase.FAILED
    assert "checkpoint.safetensors" in loop.progress.message
    assert loop.progress.round == 0  # no round counts as done: none was checkpointed
