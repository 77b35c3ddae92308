"""A round's files written on a thread of their own while the loop runs the next round.

Writing results.json, results.csv, the device records and the checkpoint (fsynced) took 7 ms a round on the
loop's thread, with every worker idle; the next round's jobs need none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class RoundWriter:
    """Runs one round's writes at a time, in order; a failed write raises in the loop at the next `wait`."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feles-round-writer")
        self._pending: Future[None] | None = None

    def submit(self, write: Callable[[], None]) -> None:
        """Start `write` once the previous round's writes are done (their failure raises here)."""
        self.wait()
        self._pending = self._executor.submit(write)

    def wait(self) -> None:
        """Return when the last submitted writes are done; raise what they raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Let the writes under way finish (a failure among them was raised by `wait` or is moot)."""
        self._executor.shutdown(wait=True)
        self._pending = None
