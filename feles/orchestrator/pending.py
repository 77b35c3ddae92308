"""The jobs waiting for a lease, in queue order, with their summed work: the batch rule shares it out.

They wait as runs of consecutive positions of a submitted block: a block goes in as one run, a lease takes a
slice off the front of it, and a job put back (expired, released, refused) waits alone. A 10,000-job phase is
queued and leased without a Python object per job.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from feles.orchestrator.batching import joins_share


class Positions(Protocol):
    """A block's jobs as the waiting line sees them."""

    #: cumulative_work[i]: the summed work of the positions before i (one entry more than there are jobs).
    cumulative_work: list[int]


Block = TypeVar("Block", bound=Positions)


class PendingJobs(Generic[Block]):
    """A deque of runs [block, start, stop) that keeps the number and the total work of the jobs in them.

    Work is in example passes (JobBlock.work: epochs x examples); the total lets a lease take a fair share of
    the work waiting without walking 10,000 jobs per request.
    """

    def __init__(self) -> None:
        self._runs: deque[tuple[Block, int, int]] = deque()
        self._count = 0
        self.work = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def first(self) -> tuple[Block, int, int]:
        """The first run: its block and positions [start, stop)."""
        return self._runs[0]

    def append(self, block: Block, start: int, stop: int) -> None:
        """Queue positions [start, stop) of a block at the back."""
        if stop > start:
            self._runs.append((block, start, stop))
            self._added(block, start, stop)

    def put_first(self, jobs: Iterable[tuple[Block, int]]) -> None:
        """Put single jobs back at the front, keeping their order (re-issued jobs go before the others)."""
        jobs = list(jobs)
        self._runs.extendleft((block, i, i + 1) for block, i in reversed(jobs))
        for block, i in jobs:
            self._added(block, i, i + 1)

    def take_first(self, limit: int, max_work: int | None, first: bool) -> tuple[Block, int, int] | None:
        """Take up to `limit` positions off the front of the first run while their work fits in `max_work`, the
        last one when half of it fits (batching.joins_share; the first job of a lease, `first`, is taken whatever
        its work); None when not even one fits."""
        block, start, stop = self._runs[0]
        most = min(stop, start + limit)
        end = most
        cumulative = block.cumulative_work
        if max_work is not None:
            # The largest end whose jobs' summed work stays within max_work, and the next job if half of it fits.
            end = max(start, bisect_right(cumulative, cumulative[start] + max_work, start, most + 1) - 1)
            if end < most and joins_share(cumulative[end] - cumulative[start], cumulative[end + 1] - cumulative[end],
                                          max_work):  # fmt: skip
                end += 1
            if end == start:
                if not first:
                    return None
                end = start + 1
        self._remove_front(block, start, end, stop)
        return block, start, end

    def pop_first(self) -> tuple[Block, int]:
        """Take the first job off the queue."""
        block, start, stop = self._runs[0]
        self._remove_front(block, start, start + 1, stop)
        return block, start

    def _remove_front(self, block: Block, start: int, end: int, stop: int) -> None:
        if end == stop:
            self._runs.popleft()
        else:
            self._runs[0] = (block, end, stop)
        self._count -= end - start
        self.work -= block.cumulative_work[end] - block.cumulative_work[start]

    def _added(self, block: Block, start: int, stop: int) -> None:
        self._count += stop - start
        self.work += block.cumulative_work[stop] - block.cumulative_work[start]

    def keep(self, wanted: Callable[[Block, int], bool]) -> None:
        """Drop the jobs for which `wanted` is false (jobs taken away or finished before any lease)."""
        runs, self._runs, self._count, self.work = self._runs, deque(), 0, 0
        for block, start, stop in runs:
            run_start = start
            for i in range(start, stop):
                if not wanted(block, i):
                    self.append(block, run_start, i)
                    run_start = i + 1
            self.append(block, run_start, stop)

    def drop_blocks(self, blocks: Iterable[Block]) -> None:
        """Drop every job of these blocks (a phase's jobs taken away together)."""
        dropped = {id(block) for block in blocks}
        if any(id(block) in dropped for block, _, _ in self._runs):
            runs, self._runs, self._count, self.work = self._runs, deque(), 0, 0
            for block, start, stop in runs:
                if id(block) not in dropped:
                    self.append(block, start, stop)
