"""Workers die, start before the orchestrator, or outlive it: the simulation still completes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from feles.local import LocalRun, LocalRunOptions
from tests.integration.conftest import Processes, comparable_rounds, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration


def _succeeded(status: dict) -> bool:
    return status["phase"] == "Succeeded"


def test_worker_killed_mid_round_does_not_stop_the_simulation(tmp_path: Path, processes: Processes) -> None:
    # Slow each job down (many epochs) so that the kill lands while the worker holds a lease.
    overrides = {"simulation": {"num_rounds": 3}, "algorithms": {"fit": {"params": {"epochs": 20}}}}
    reference_folder = tmp_path / "reference"
    reference_folder.mkdir()
    reference = LocalRun(LocalRunOptions(write_spec(reference_folder, overrides), workers=2)).run()

    spec = write_spec(tmp_path, overrides)
    port = free_port()
    processes.orchestrator(spec, port, "--lease-seconds", "2")
    victim = processes.worker(port, "victim")
    processes.worker(port, "survivor")
    wait_for_status(port, lambda status: status["jobs_leased"] >= 2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    final = wait_for_status(port, _succeeded)
    assert final["round"] == 3
    assert comparable_rounds(tmp_path / "out" / "results.json") == comparable_rounds(reference.results_path)


def test_worker_started_before_the_orchestrator_waits_for_it(tmp_path: Path, processes: Processes) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 2}})
    port = free_port()
    worker = processes.worker(port)
    time.sleep(2.0)
    assert worker.poll() is None, processes.log("w")
    processes.orchestrator(spec, port)
    wait_for_status(port, _succeeded)
    assert worker.wait(timeout=60) == 0
    log = processes.log("w")
    # One line when the orchestrator is unreachable, not one per retry.
    assert log.count("unavailable") == 1
    assert "reachable again" in log


def test_restarted_orchestrator_resumes_and_workers_reconnect(tmp_path: Path, processes: Processes) -> None:
    # A CNN makes rounds slow enough, and 8 of them many enough, that the kill lands mid-run even when the
    # status poll that sees round 2 comes late (5 rounds on a loaded machine were sometimes all done by then).
    overrides = {"simulation": {"num_rounds": 8, "model": "cnn"}}
    reference_folder = tmp_path / "reference"
    reference_folder.mkdir()
    reference = LocalRun(LocalRunOptions(write_spec(reference_folder, overrides), workers=1)).run()

    spec = write_spec(tmp_path, overrides)
    port = free_port()
    first = processes.orchestrator(spec, port)
    worker = processes.worker(port)
    wait_for_status(port, lambda status: status["round"] >= 2)
    first.send_signal(signal.SIGKILL)
    first.wait()

    processes.orchestrator(spec, port)
    final = wait_for_status(port, _succeeded)
    assert final["round"] == 8
    assert worker.wait(timeout=60) == 0
    assert "registering again" in processes.log("w")
    assert "resuming run" in processes.log("orchestrator")
    assert comparable_rounds(tmp_path / "out" / "results.json") == comparable_rounds(reference.results_path)


def test_orchestrator_refuses_a_checkpoint_of_another_spec(tmp_path: Path, processes: Processes) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}})
    port = free_port()
    processes.orchestrator(spec, port, "--exit-on-completion")
    processes.worker(port)
    wait_for_status(port, _succeeded)
    other = write_spec(tmp_path, {"simulation": {"num_rounds": 2}}, name="other.yaml")
    refused = processes.orchestrator(other, free_port())
    assert refused.wait(timeout=60) == 1
    assert "belongs to a different simulation spec" in processes.log("orchestrator")
    fresh_port = free_port()
    fresh = processes.orchestrator(other, fresh_port, "--fresh", "--exit-on-completion")
    processes.worker(fresh_port, "w2")
    assert fresh.wait(timeout=120) == 0


def test_workers_joining_and_leaving_change_no_result(tmp_path: Path, processes: Processes) -> None:
    # A CNN makes each round last long enough for late workers to start while the run goes on.
    overrides = {"simulation": {"num_rounds": 20, "model": "cnn"}, "algorithms": {"fit": {"params": {"epochs": 8}}}}
    reference_folder = tmp_path / "reference"
    reference_folder.mkdir()
    reference = LocalRun(LocalRunOptions(write_spec(reference_folder, overrides), workers=2)).run()

    spec = write_spec(tmp_path, overrides)
    port = free_port()
    processes.orchestrator(spec, port)
    first = processes.worker(port, "first")
    wait_for_status(port, lambda status: status["round"] >= 1)
    late = [processes.worker(port, "late1"), processes.worker(port, "late2")]
    joined = wait_for_status(port, lambda status: status["workers"] >= 3 or status["phase"] != "Running")
    assert joined["phase"] == "Running", "the run ended before the late workers joined"
    # SIGTERM: the worker gives its job back at once and exits cleanly.
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    wait_for_status(port, _succeeded)
    assert all(worker.wait(timeout=60) == 0 for worker in late)
    assert "SIGTERM: worker exits" in processes.log("first")
    assert comparable_rounds(tmp_path / "out" / "results.json") == comparable_rounds(reference.results_path)
