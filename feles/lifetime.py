"""A child process's life bound to its parent's: on Linux the kernel sends it SIGTERM when the parent dies, however
it dies (SIGKILL, out of memory), so that no orphan outlives what started it."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger("feles")

#: Set by a process that starts FELES processes (feles run, feles sweep) to its pid: they stop when it dies.
PARENT_PID_ENV = "FELES_PARENT_PID"
#: prctl option of Linux (linux/prctl.h): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def stop_with_parent(parent: int) -> None:
    """SIGTERM to this process when `parent`, the process that started it, dies. Elsewhere than Linux a no-op."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask to be stopped with process %d: %s", parent, os.strerror(ctypes.get_errno()))
    elif os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def stop_with_launcher() -> None:
    """stop_with_parent for the process named by $FELES_PARENT_PID, when a launcher set it for this process."""
    launcher = os.environ.pop(PARENT_PID_ENV, None)  # popped: what this process starts has its own parent
    if launcher and launcher.isdigit():
        stop_with_parent(int(launcher))
