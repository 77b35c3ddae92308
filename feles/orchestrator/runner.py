"""How the loop has jobs done: submit, wait, take the outcomes; behind it the leased job queue."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from feles.orchestrator.jobs import JobQueue
from feles.protocol import Job, JobResult

#: A job's accepted result: its metadata and its tensors.
Completed = tuple[JobResult, Mapping[str, torch.Tensor]]


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
    def submit(self, jobs: Sequence[Job], payloads: Mapping[str, bytes]) -> None:
        """Hand out the jobs; `payloads` holds the encoded algorithm tensors of the jobs that have some."""

    @abstractmethod
    def wait(self, job_ids: Sequence[str]) -> None:
        """Return when every job is done; SimulationStopped when the orchestrator shuts down first."""

    @abstractmethod
    def take(self, job_ids: Sequence[str]) -> Outcomes:
        """The outcomes of finished jobs, which the runner then forgets."""

    @abstractmethod
    def stop(self) -> None:
        """Wake every wait with SimulationStopped; no job is handed out any more."""

    def run(self, jobs: Sequence[Job], payloads: Mapping[str, bytes]) -> Outcomes:
        """Submit, wait and take: each job's outcome, whatever re-issues it took."""
        ids = [job.id for job in jobs]
        self.submit(jobs, payloads)
        self.wait(ids)
        return self.take(ids)


class QueueRunner(JobRunner):
    """Runs jobs through the leased JobQueue that the HTTP API hands out to workers."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.lease_seconds = queue.lease_seconds
        self._stopped = threading.Event()

    def submit(self, jobs: Sequence[Job], payloads: Mapping[str, bytes]) -> None:
        self.queue.submit(jobs, payloads)

    def wait(self, job_ids: Sequence[str]) -> None:
        # Re-issued on lease expiry as often as needed: a job is done when it has a result or was refused.
        while not self.queue.wait_done(job_ids, timeout=1.0):
            if self._stopped.is_set() or self.queue.closed:
                raise SimulationStopped

    def take(self, job_ids: Sequence[str]) -> Outcomes:
        results, rejected = self.queue.take(job_ids)
        return Outcomes(results, frozenset(rejected), {job_id: reason for job_id, reason in rejected.items() if reason})

    def stop(self) -> None:
        self._stopped.set()
        self.queue.close()
