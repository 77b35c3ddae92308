"""feles.local: how many workers `feles run` starts alongside the orchestrator, and how many once it answers;
how Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from feles.cli import _interrupt_on_sigint
from feles.local import LocalRun, LocalRunOptions, available_cores, early_workers


@pytest.mark.parametrize(
    ("workers", "cores", "early"),
    [
        (1, 1, 1),  # a lone worker always starts at once
        (1, 2, 1),
        (2, 2, 1),  # the orchestrator keeps a core of its own while it imports torch and builds the run
        (4, 2, 1),
        (2, 4, 2),
        (3, 4, 3),
        (8, 4, 3),
    ],
)
def test_as_many_workers_start_with_the_orchestrator_as_leave_it_a_core(workers: int, cores: int, early: int) -> None:
    assert early_workers(workers, cores) == early


def test_the_cores_are_those_the_process_may_run_on() -> None:
    assert 1 <= available_cores() <= (os.cpu_count() or 1)


@pytest.fixture
def local_run(tmp_path: Path) -> LocalRun:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"simulation: {{output_folder: {tmp_path / 'out'}}}\n")
    return LocalRun(LocalRunOptions(spec))


def test_an_interrupt_request_stops_the_follow_loop_at_its_next_poll(local_run: LocalRun) -> None:
    # What Ctrl-C leaves when its KeyboardInterrupt is lost (raised inside a finalizer, Python only prints it).
    local_run.request_interrupt()
    with pytest.raises(KeyboardInterrupt):
        local_run._follow("http://127.0.0.1:9", lambda status: None, lambda: None)


@pytest.fixture
def sigint_restored() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_restored")
def test_ctrl_c_in_feles_run_raises_and_asks_the_run_to_stop(local_run: LocalRun) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _interrupt_on_sigint(local_run)
    handler = signal.getsignal(signal.SIGINT)
    assert callable(handler)
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, None)
    assert local_run.interrupt_requested.is_set()


@pytest.mark.usefixtures("sigint_restored")
def test_an_ignored_sigint_stays_ignored(local_run: LocalRun) -> None:
    # A script's background job: Ctrl-C in the terminal is not meant for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _interrupt_on_sigint(local_run)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
