"""`feles worker --processes N`: one start-up, N registered workers, a log each, stopped together."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from feles.local import LocalRun, LocalRunOptions
from tests.integration.conftest import Processes, comparable_rounds, free_port, wait_for_status, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork")]


def _worker_group(processes: Processes, port: int, log_file: Path, count: int = 2) -> subprocess.Popen[bytes]:
    url = f"http://127.0.0.1:{port}"
    arguments = ["--orchestrator", url, "--name", "w", "--wait", "2", "--processes", str(count)]
    return processes.start("group", "worker", *arguments, "--log-file", str(log_file))


def test_two_forked_workers_run_the_simulation_each_with_its_own_log(tmp_path: Path, processes: Processes) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 3}})
    port = free_port()
    processes.orchestrator(spec, port)
    group = _worker_group(processes, port, tmp_path / "w-{index}.log")
    final = wait_for_status(port, lambda status: status["phase"] == "Succeeded")
    assert group.wait(timeout=60) == 0, processes.log("group")
    assert final["round"] == 3
    for index in (0, 1):
        log = (tmp_path / f"w-{index}.log").read_text()
        assert f"INFO feles.worker[w-{index}]: registered as w-{index}-" in log
        assert f"feles.worker[w-{index}]: simulation over after" in log
    ends = [line for index in (0, 1) for line in (tmp_path / f"w-{index}.log").read_text().splitlines()
            if "simulation over after" in line]  # fmt: skip
    jobs = [int(line.split("after ")[1].split()[0]) for line in ends]
    assert len(jobs) == 2 and min(jobs) > 0, f"each worker trained: {ends}"

    reference_folder = tmp_path / "reference"
    reference_folder.mkdir()
    reference = LocalRun(LocalRunOptions(write_spec(reference_folder, {"simulation": {"num_rounds": 3}}), 1)).run()
    assert comparable_rounds(tmp_path / "out" / "results.json") == comparable_rounds(reference.results_path)


def test_sigterm_to_the_group_makes_every_worker_leave(tmp_path: Path, processes: Processes) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 200}})
    port = free_port()
    processes.orchestrator(spec, port)
    group = _worker_group(processes, port, tmp_path / "w-{index}.log", count=3)
    wait_for_status(port, lambda status: status["workers"] == 3 and status["round"] >= 1)
    group.send_signal(signal.SIGTERM)
    assert group.wait(timeout=60) == 0, processes.log("group")
    for index in range(3):
        log = (tmp_path / f"w-{index}.log").read_text()
        assert "left the orchestrator" in log and "SIGTERM: worker exits" in log, log[-2000:]
    assert wait_for_status(port, lambda status: status["workers"] == 0)["phase"] == "Running"


def test_an_unwritable_log_file_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "feles", "worker", "--orchestrator", "http://127.0.0.1:9", "--processes", "2",
         "--log-file", str(tmp_path / "missing" / "w-{index}.log")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"--log-file {tmp_path / 'missing' / 'w-0.log'}: No such file or directory" in done.stderr
