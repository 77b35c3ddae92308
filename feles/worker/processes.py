"""Several workers from one start-up: one process imports torch and FELES, then forks the others.

Importing them takes a worker about 2 s of CPU and 240 MiB. Forked workers start at once and share those pages
with the first (copy-on-write) instead of importing everything again, each on a core the others need.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import suppress
from typing import NoReturn

from feles.lifetime import stop_with_parent

log = logging.getLogger("feles.worker")

#: Seconds forked workers get to leave after SIGTERM, when the first one broke or was interrupted, before they are
#: killed.
STOP_GRACE_SECONDS = 10.0
#: Exit code of a process killed by a signal, as a shell reports it: 128 + the signal's number.
SIGNAL_EXIT_BASE = 128


def can_fork() -> bool:
    """Whether this platform forks processes (Linux, macOS; not Windows)."""
    return hasattr(os, "fork")


def run_forked(count: int, run_one: Callable[[int], int]) -> int:
    """Run `run_one(index)` for each index in 0..count-1: index 0 here, the others in forked children.

    SIGTERM sent to this process reaches the children too. A worker that ends on its own, with any exit code,
    leaves the others running, as separate processes would: this process waits for every child. When
    `run_one(0)` raises (a bug, an interrupt), or returns the code of an interrupt, the children are stopped with
    SIGTERM (and killed after STOP_GRACE_SECONDS). Returns the largest exit code of all.
    """
    _flush_output()  # unflushed output would be written once by each process
    children: dict[int, int] = {}
    parent = os.getpid()
    for index in range(1, count):
        with warnings.catch_warnings():
            # Python 3.12+ warns when a process with other threads forks. The other thread is one that importing
            # torch starts, idle; torch's own DataLoader forks its workers after importing torch the same way.
            warnings.filterwarnings("ignore", r"This process \(pid=\d+\) is multi-threaded", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            _run_child(index, parent, run_one)
        children[pid] = index
    signal.signal(signal.SIGTERM, lambda signum, frame: _signal(children, signum))
    try:
        code = run_one(0)
    except BaseException:
        _signal(children, signal.SIGTERM)
        _wait_all(children, STOP_GRACE_SECONDS)
        raise
    interrupted = code == SIGNAL_EXIT_BASE + signal.SIGINT
    if interrupted:
        _signal(children, signal.SIGTERM)
    return max([code, *_wait_all(children, STOP_GRACE_SECONDS if interrupted else None)])


def _run_child(index: int, parent: int, run_one: Callable[[int], int]) -> NoReturn:
    code = 1
    try:
        stop_with_parent(parent)  # the first worker: however it dies, no orphan asks a stopped orchestrator
        code = run_one(index)
    except SystemExit as exit_:  # sys.exit() is a success, sys.exit("message") a failure
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    except KeyboardInterrupt:
        code = SIGNAL_EXIT_BASE + signal.SIGINT
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        logging.shutdown()
        _flush_output()
        os._exit(code)  # never the parent's clean-up: it belongs to the parent


def _signal(children: dict[int, int], signum: int) -> None:
    for pid in children:
        with suppress(ProcessLookupError):
            os.kill(pid, signum)


def _wait_all(children: dict[int, int], grace: float | None = None) -> list[int]:
    """Every child's exit code once each has exited (a death by signal as 128 + its number); with `grace`,
    those still running after it are killed."""
    codes: dict[int, int] = {}
    deadline = None if grace is None else time.monotonic() + grace
    while len(codes) < len(children):
        for pid in children.keys() - codes.keys():
            waited, status = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
            if waited:
                codes[pid] = _exit_code(status)
        if deadline is not None and len(codes) < len(children):
            if time.monotonic() < deadline:
                time.sleep(0.05)
            else:
                _signal({pid: children[pid] for pid in children.keys() - codes.keys()}, signal.SIGKILL)
                deadline = None
    for pid, code in codes.items():
        if code != 0:
            log.warning("worker %d exited with code %d", children[pid], code)
    return list(codes.values())


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return SIGNAL_EXIT_BASE - code if code < 0 else code


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(ValueError, OSError):
            stream.flush()
