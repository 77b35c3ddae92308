"""feles.local: how many workers `feles run` starts alongside the orchestrator, and how many once it answers."""

from __future__ import annotations

import os

import pytest

from feles.local import available_cores, early_workers


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
