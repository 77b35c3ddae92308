"""The ids of jobs taken off the queue, remembered for a while: a late answer to one is a duplicate, not unknown."""

from __future__ import annotations

from collections.abc import Iterable

#: Ids remembered at least (at most twice as many): 20 rounds of 10,000 jobs, ~20 MiB. Remembering every id grew
#: by ~1 MiB a round at that scale (1 GiB over 1,000 rounds); an answer to a job older than that is "unknown".
RETIRED_CAPACITY = 200_000


class RetiredJobs:
    """The most recently retired job ids, in two generations: when the newer one fills, the older is forgotten."""

    def __init__(self, capacity: int = RETIRED_CAPACITY) -> None:
        self.capacity = capacity
        self._newer: set[str] = set()
        self._older: set[str] = set()

    def add(self, job_ids: Iterable[str]) -> None:
        self._newer.update(job_ids)
        if len(self._newer) >= self.capacity:
            self._older, self._newer = self._newer, set()

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._newer or job_id in self._older

    def __len__(self) -> int:
        return len(self._newer) + len(self._older)
