"""Lease heartbeats: one thread extends the lease of every job the worker holds, a third of a lease apart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from feles.protocol import Job

#: Sends one job's heartbeat (a missed one is harmless: the job is re-issued, which is safe).
Beat = Callable[[Job], None]


class Heartbeats:
    """Beats for the jobs held inside `holding`: the first a third of the job's lease after it was taken, then
    every third of a lease until it is let go.

    One thread for the worker's life: a thread started and joined per batch of tiny jobs cost the worker's main
    thread 6 % of its time (bench/throughput.py).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._changed = threading.Condition()
        #: Per held job id: the job, how to beat it, and when its next beat is due.
        self._held: dict[str, tuple[Job, Beat, float]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def holding(self, jobs: Sequence[Job], beat: Beat) -> Iterator[None]:
        """Beat for `jobs` while the block runs."""
        now = self._clock()
        with self._changed:
            for job in jobs:
                self._held[job.id] = (job, beat, now + job.lease_seconds / 3)
            self._start()
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                for job in jobs:
                    self._held.pop(job.id, None)

    def close(self) -> None:
        """Stop the thread (jobs still held get no more beats); a later `holding` starts it again."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._changed:
            self._thread, self._closed = None, False

    def _start(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                due = self._wait_for_due()
                if due is None:
                    return
            for job, beat in due:
                beat(job)

    def _wait_for_due(self) -> list[tuple[Job, Beat]] | None:
        """Wait (holding the condition) until some beats are due; take them and plan the next; None once closed."""
        while not self._closed:
            now = self._clock()
            due = [(job, beat) for job, beat, at in self._held.values() if at <= now]
            if due:
                for job, beat in due:
                    self._held[job.id] = (job, beat, now + job.lease_seconds / 3)
                return due
            upcoming = min((at for _, _, at in self._held.values()), default=None)
            self._changed.wait(None if upcoming is None else upcoming - now)
        return None
