"""Chaos: a worker killed with SIGKILL in each round seen running, and the orchestrator once mid-run: same results."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from feles.local import LocalRun, LocalRunOptions
from tests.integration.conftest import Processes, comparable_rounds, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration

ROUNDS = 6
#: More local work per job, so that kills land while workers hold leases.
OVERRIDES = {"simulation": {"num_rounds": ROUNDS}, "algorithms": {"fit": {"params": {"epochs": 25}}}}


def _round(port: int) -> int:
    return wait_for_status(port, lambda status: True)["round"]


def test_chaos_run_ends_with_the_results_of_an_undisturbed_run(tmp_path: Path, processes: Processes) -> None:
    reference_folder = tmp_path / "reference"
    reference_folder.mkdir()
    reference = LocalRun(LocalRunOptions(write_spec(reference_folder, OVERRIDES), workers=2)).run()

    spec = write_spec(tmp_path, OVERRIDES)
    port = free_port()
    chaos = random.Random(1234)
    orchestrator = processes.orchestrator(spec, port, "--lease-seconds", "3")
    workers = [processes.worker(port, f"w{i}") for i in range(3)]
    spawned, seen_round, orchestrator_killed = 3, -1, False
    deadline = time.monotonic() + 400
    while True:
        status = wait_for_status(port, lambda status: True)
        if status["phase"] == "Succeeded":
            break
        assert time.monotonic() < deadline, f"chaos run did not finish; last status {status}"
        if status["round"] != seen_round and status["jobs_leased"] > 0:
            seen_round = status["round"]
            victim = workers.pop(chaos.randrange(len(workers)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            workers.append(processes.worker(port, f"w{spawned}"))
            spawned += 1
        # Not tied to a poll that sees leased jobs: such polls may miss the last rounds, which are short.
        if status["round"] >= ROUNDS // 2 and not orchestrator_killed:
            orchestrator.send_signal(signal.SIGKILL)
            orchestrator.wait()
            orchestrator = processes.orchestrator(spec, port, "--lease-seconds", "3")
            orchestrator_killed = True
        time.sleep(0.1)

    assert comparable_rounds(tmp_path / "out" / "results.json") == comparable_rounds(reference.results_path)
    assert orchestrator_killed
    # Rounds can pass between two polls (the round of the orchestrator restart, short ones, and more of them on
    # a loaded machine: with one core kept busy a run saw 3 kills in 6 rounds), but at least every other one
    # lost a worker.
    assert spawned - 3 >= ROUNDS // 2, "a worker was killed in at least every other round"
