"""feles.worker.processes: several workers forked from one start-up, stopped and waited for together.

Each scenario runs in a fresh interpreter: forking the test process itself would copy pytest and its threads.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")

PRELUDE = """
import os, signal, sys, time
from pathlib import Path
from feles.worker.processes import run_forked
folder = Path(sys.argv[1])
"""


def _start(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    script = PRELUDE + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_files(folder: Path, pattern: str, count: int, timeout: float = 30.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while len(found := sorted(folder.glob(pattern))) < count:
        assert time.monotonic() < deadline, f"only {[p.name for p in found]} after {timeout} s"
        time.sleep(0.02)
    return found


def _wait_for_pids(folder: Path, pattern: str, count: int, timeout: float = 30.0) -> list[int]:
    """The pids that `count` processes wrote to files matching `pattern`: write_text creates a file before it
    writes to it, and reading one still empty failed a CI run."""
    deadline = time.monotonic() + timeout
    while True:
        texts = [path.read_text() for path in _wait_for_files(folder, pattern, count, timeout)]
        if all(texts):
            return [int(text) for text in texts]
        assert time.monotonic() < deadline, f"{pattern}: {texts} after {timeout} s"
        time.sleep(0.02)


def test_each_index_runs_once_in_its_own_process_and_the_worst_code_is_returned(tmp_path: Path) -> None:
    run = _start(
        tmp_path,
        """
        def run_one(index):
            (folder / f"ran-{index}").write_text(str(os.getpid()))
            return [0, 1, 3, 0][index]
        print("code", run_forked(4, run_one), "parent", os.getpid())
        """,
    )
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    files = _wait_for_files(tmp_path, "ran-*", 4)
    pids = {path.name: int(path.read_text()) for path in files}
    assert sorted(pids) == ["ran-0", "ran-1", "ran-2", "ran-3"]
    assert len(set(pids.values())) == 4
    assert stdout.split() == ["code", "3", "parent", str(pids["ran-0"])]
    assert "worker 2 exited with code 3" in stderr and "worker 1 exited with code 1" in stderr


def test_sigterm_to_the_first_worker_stops_every_worker_through_its_handler(tmp_path: Path) -> None:
    # Each worker installs its SIGTERM handler as feles.worker.client.Worker does: the one installed before runs
    # first (in the first process, run_forked's, which forwards the signal to the others).
    run = _start(
        tmp_path,
        """
        from feles.worker.client import WorkerStopping, _stopping_after
        def run_one(index):
            signal.signal(signal.SIGTERM, _stopping_after(signal.getsignal(signal.SIGTERM)))
            (folder / f"ready-{index}").touch()
            try:
                while True:
                    time.sleep(0.05)
            except WorkerStopping:
                (folder / f"left-{index}").touch()
                return 0
        print("code", run_forked(3, run_one))
        """,
    )
    _wait_for_files(tmp_path, "ready-*", 3)
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=30)
    assert run.returncode == 0, stderr
    assert stdout.split() == ["code", "0"]
    assert sorted(path.name for path in tmp_path.glob("left-*")) == ["left-0", "left-1", "left-2"]


def test_when_the_first_worker_breaks_the_others_are_stopped(tmp_path: Path) -> None:
    run = _start(
        tmp_path,
        """
        def run_one(index):
            (folder / f"ready-{index}").write_text(str(os.getpid()))
            if index == 0:
                while len(list(folder.glob("ready-*"))) < 3:
                    time.sleep(0.02)
                raise RuntimeError("the first worker broke")
            while True:
                time.sleep(0.05)
        run_forked(3, run_one)
        """,
    )
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 1
    assert "RuntimeError: the first worker broke" in stderr
    for path in _wait_for_files(tmp_path, "ready-*", 3)[1:]:
        assert not Path(f"/proc/{path.read_text()}").exists(), f"{path.name}'s process still runs"


def test_a_worker_that_ends_on_its_own_leaves_the_others_running(tmp_path: Path) -> None:
    # The first worker gives up at once (code 1); the others keep working until the run ends for them.
    run = _start(
        tmp_path,
        """
        def run_one(index):
            if index == 0:
                return 1
            while not (folder / "run-over").exists():
                time.sleep(0.02)
            (folder / f"finished-{index}").touch()
            return 0
        print("code", run_forked(3, run_one))
        """,
    )
    time.sleep(1.0)
    assert run.poll() is None, "the first worker's end ended the others"
    (tmp_path / "run-over").touch()
    stdout, stderr = run.communicate(timeout=30)
    assert stdout.split() == ["code", "1"], stderr
    assert sorted(path.name for path in tmp_path.glob("finished-*")) == ["finished-1", "finished-2"]


def test_a_child_leaving_through_sys_exit_keeps_its_code(tmp_path: Path) -> None:
    run = _start(
        tmp_path,
        """
        def run_one(index):
            if index:
                sys.exit([None, None, 4, "a message"][index])
            return 0
        print("code", run_forked(4, run_one))
        """,
    )
    stdout, stderr = run.communicate(timeout=30)
    assert stdout.split() == ["code", "4"], stderr
    assert "worker 1 exited" not in stderr  # sys.exit(): a success
    assert "worker 2 exited with code 4" in stderr and "worker 3 exited with code 1" in stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")
def test_workers_stop_when_the_first_is_killed_outright(tmp_path: Path) -> None:
    run = _start(
        tmp_path,
        """
        def run_one(index):
            (folder / f"ready-{index}").write_text(str(os.getpid()))
            while True:
                time.sleep(0.05)
        run_forked(3, run_one)
        """,
    )
    pids = _wait_for_pids(tmp_path, "ready-*", 3)
    run.send_signal(signal.SIGKILL)  # no handler runs: nothing forwards SIGTERM
    run.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids[1:]):
        assert time.monotonic() < deadline, "forked workers outlived the first one"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, not gone and not a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_that_raises_is_logged_and_counts_as_code_1(tmp_path: Path) -> None:
    run = _start(
        tmp_path,
        """
        import logging
        logging.basicConfig()
        def run_one(index):
            if index == 1:
                raise ValueError("bad worker")
            return 0
        print("code", run_forked(2, run_one))
        """,
    )
    stdout, stderr = run.communicate(timeout=30)
    assert stdout.split() == ["code", "1"]
    assert "worker 1 failed" in stderr and "ValueError: bad worker" in stderr


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Python warns about forks of multi-threaded processes from 3.12")
def test_forking_beside_a_native_thread_raises_no_warning_even_as_errors(tmp_path: Path) -> None:
    # faulthandler's watchdog is a native thread, as the one importing torch starts.
    script = PRELUDE + textwrap.dedent(
        """
        import faulthandler
        faulthandler.dump_traceback_later(600)
        print("code", run_forked(2, lambda index: 0))
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", script, str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.split() == ["code", "0"], done.stderr
