"""The jobs waiting for a lease, in queue order, with their summed work: the batch rule shares it out."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator


class PendingJobs:
    """A deque of (job id, work) that keeps the total work of its jobs (O(1) for each change).

    Work is in example passes (feles.orchestrator.jobs.job_work); the total lets a lease take a fair share of
    the work waiting without walking 10,000 jobs per request.
    """

    def __init__(self) -> None:
        self._items: deque[tuple[str, int]] = deque()
        self.work = 0

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[str]:
        return (job_id for job_id, _ in self._items)

    def first(self) -> tuple[str, int]:
        return self._items[0]

    def extend(self, items: list[tuple[str, int]]) -> None:
        """Append jobs at the back, in order."""
        self._items.extend(items)
        self.work += sum(work for _, work in items)

    def pop_first(self) -> tuple[str, int]:
        item = self._items.popleft()
        self.work -= item[1]
        return item

    def put_first(self, items: Iterable[tuple[str, int]]) -> None:
        """Put jobs back at the front, keeping their order (re-issued jobs go before the others)."""
        items = list(items)
        self._items.extendleft(reversed(items))
        self.work += sum(work for _, work in items)

    def keep(self, wanted: Callable[[str], bool]) -> None:
        """Drop the jobs for which `wanted` is false (a round's jobs taken away)."""
        self._items = deque(item for item in self._items if wanted(item[0]))
        self.work = sum(work for _, work in self._items)
