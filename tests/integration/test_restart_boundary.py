"""An orchestrator restarted at a repetition boundary while a worker keeps its model cache (issue 12.1).

Before the fix a checkpoint with next_round 0 restarted the model versions at 0, so repetition 2 reused
repetition 1's version numbers, and a worker that kept its cache across the restart trained repetition 2
from repetition 1's model: the results differed from an undisturbed run.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from feles.local import LocalRun, LocalRunOptions
from tests.integration.conftest import AUTH, Processes, comparable_rounds, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration

#: One round per repetition: the worker's cache then holds repetition 1's versions 0 and 1, the numbers a
#: restarted orchestrator without the fix gives repetition 2's models.
OVERRIDES = {"simulation": {"num_rounds": 1, "repetitions": 2}}


def _status(port: int) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=5, headers=AUTH).json()


def test_a_restart_at_a_repetition_boundary_with_a_paused_worker_changes_no_result(
    tmp_path: Path, processes: Processes
) -> None:
    reference_folder = tmp_path / "reference"
    reference_folder.mkdir()
    reference = LocalRun(LocalRunOptions(write_spec(reference_folder, OVERRIDES), workers=1)).run()
    assert reference.status.phase.value == "Succeeded"

    spec = write_spec(tmp_path, OVERRIDES)
    port = free_port()
    first = processes.orchestrator(spec, port)
    worker = processes.worker(port)
    # The first repetition is recorded (its checkpoint says: repetition 1, round 0) ...
    deadline = time.monotonic() + 120
    while True:
        try:
            status = _status(port)
        except httpx.TransportError:
            status = {}
        if status.get("round") == 1:
            break
        assert time.monotonic() < deadline, f"repetition 1 never finished: {status}"
        time.sleep(0.02)
    # ... pause the only worker (its model cache intact) so that repetition 2 cannot get anywhere,
    worker.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.5)
        assert _status(port)["repetition"] == 0, "repetition 2 finished before the worker was paused"
        # then kill the orchestrator and start a new one on the same folder.
        first.send_signal(signal.SIGKILL)
        first.wait()
        processes.orchestrator(spec, port)
        wait_for_status(port, lambda status: status["phase"] == "Running")
    finally:
        worker.send_signal(signal.SIGCONT)
    final = wait_for_status(port, lambda status: status["phase"] in ("Succeeded", "Failed"))
    assert final["phase"] == "Succeeded", final
    assert worker.wait(timeout=60) == 0
    assert "resuming run" in processes.log("orchestrator")
    assert comparable_rounds(tmp_path / "out" / "results.json") == comparable_rounds(reference.results_path)
