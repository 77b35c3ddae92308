"""How the loop has jobs done: submit, wait, take the outcomes; behind it the leased job queue."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.jobs import Completed, JobQueue


class SimulationStopped(Exception):
    """The orchestrator is shutting down before the simulation finished."""


@dataclass(frozen=True)
class Outcomes:
    """What became of a batch of jobs: results by job id, and the ids whose result was refused as malformed."""

    results: dict[str, Completed] = field(default_factory=dict)
    rejected: frozenset[str] = frozenset()
    #: Why a rejected job was refused, where the queue knows (test shards refused too often).
    reasons: Mapping[str, str] = field(default_factory=dict)


class JobRunner(ABC):
    """The loop's only way to have work done by workers."""

    #: Seconds a worker holds a job before it goes back to the queue (the jobs carry it).
    lease_seconds: float

    @abstractmethod
    def submit(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> None:
        """Hand out the blocks' jobs, in order and at once (a worker sees all of them or none); `payloads` holds
        the encoded algorithm tensors of the jobs that have some (by job id)."""

    @abstractmethod
    def wait(self, blocks: Sequence[JobBlock]) -> None:
        """Return when every job of the blocks is done; SimulationStopped when the orchestrator shuts down first."""

    @abstractmethod
    def take(self, blocks: Sequence[JobBlock]) -> Outcomes:
        """The outcomes of the blocks' finished jobs (by job id), which the runner then forgets."""

    @abstractmethod
    def stop(self) -> None:
        """Wake every wait with SimulationStopped; no job is handed out any more."""

    def run(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> Outcomes:
        """Submit, wait and take: each job's outcome, whatever re-issues it took."""
        self.submit(blocks, payloads)
        self.wait(blocks)
        return self.take(blocks)


class QueueRunner(JobRunner):
    """Runs jobs through the leased JobQueue that the HTTP API hands out to workers."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.lease_seconds = queue.lease_seconds
        self._stopped = threading.Event()

    def submit(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> None:
        self.queue.submit_blocks(blocks, payloads)

    def wait(self, blocks: Sequence[JobBlock]) -> None:
        # Re-issued on lease expiry as often as needed: a job is done when it has a result or was refused.
        while not self.queue.wait_blocks(blocks, timeout=1.0):
            if self._stopped.is_set() or self.queue.closed:
                raise SimulationStopped

    def take(self, blocks: Sequence[JobBlock]) -> Outcomes:
        results, rejected = self.queue.take_blocks(blocks)
        return Outcomes(results, frozenset(rejected), {job_id: reason for job_id, reason in rejected.items() if reason})

    def stop(self) -> None:
        self._stopped.set()
        self.queue.close()
