"""The job queue with leases: a job not finished before its deadline goes back to the queue."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import torch

from feles.orchestrator.pending import PendingJobs
from feles.orchestrator.retired import RetiredJobs
from feles.protocol import Job, JobResult


def job_work(job: Job) -> int:
    """A job's work in example passes: what a worker computes, roughly in proportion to its time (the jobs a
    lease shares out are of one kind: a round's fit jobs, or its evaluations and test shards)."""
    return job.epochs * job.num_examples


class Completion(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    #: The job was never leased to the worker that answered it.
    NOT_HOLDER = "not_holder"


class Refusal(Enum):
    """What a malformed answer did to its job: sent back to the queue, or finished without a result."""

    REQUEUED = "requeued"
    REJECTED = "rejected"
    IGNORED = "ignored"


class LeaseChange(Enum):
    """Outcome of a heartbeat or a release: the lease changed, or why not."""

    DONE = "done"
    UNKNOWN = "unknown"
    NOT_HOLDER = "not_holder"


@dataclass(slots=True)
class _Refusals:
    """The malformed answers to a job (a test shard): which workers sent one, why the last was refused."""

    workers: set[str] = field(default_factory=set)
    reason: str = ""
    requeued_at: float = 0.0
    count: int = 0


@dataclass(slots=True)
class _Entry:
    job: Job
    #: job_work(job), which leases share out.
    work: int
    #: Position in the order of submission: re-issued jobs keep it (a batch's leases expire together).
    order: int
    payload: bytes | None = None
    worker: str | None = None
    deadline: float = 0.0
    leased_at: float = 0.0
    attempts: int = 0
    #: Every worker this job was ever leased to: the only ones whose result counts (the first one wins).
    holders: tuple[str, ...] = ()
    result: JobResult | None = None
    tensors: Mapping[str, torch.Tensor] | None = None
    rejected: bool = False
    #: Set once a worker sends a malformed answer (rare: kept apart so that the 10,000 entries of a round
    #: are built with fewer fields).
    refusals: _Refusals | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.rejected


@dataclass(frozen=True)
class QueueCounts:
    """Jobs queued, leased and done now; completed and re-issued since the start (counters)."""

    queued: int
    leased: int
    done: int
    reissued: int
    completed: int = 0


class JobQueue:
    """Thread-safe FIFO of jobs; leasing hands a job to a worker until its deadline."""

    def __init__(
        self,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_submit: Callable[[], None] = lambda: None,
        on_round_trip: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._on_submit = on_submit
        self._on_round_trip = on_round_trip
        self._completed = 0
        # Held directly (`with self._mutex`): entering the Condition runs Python code, ~0.3 us of each of the
        # ~40,000 queue calls of a 10,000-job round; the Condition shares the lock for waiting and waking.
        self._mutex = threading.RLock()
        self._lock = threading.Condition(self._mutex)
        self._entries: dict[str, _Entry] = {}
        self._pending = PendingJobs()
        #: Jobs each worker holds now: the batch rule shares the waiting work among the workers holding none.
        self._held: dict[str, int] = {}
        self._retired = RetiredJobs()
        #: Heap of (deadline, job ids): the jobs of one lease request share an item (10,000 pushes a round were 2 ms).
        self._deadlines: list[tuple[float, tuple[str, ...]]] = []
        self._reissued = 0
        self._submitted = 0
        self._closed = False
        #: Per waiter in wait_done, the jobs it still waits for: a completion wakes it only when it takes the last.
        self._awaited: dict[int, set[str]] = {}
        self._waiters = 0

    def submit(self, jobs: Iterable[Job], payloads: Mapping[str, bytes] | None = None) -> None:
        """Queue jobs; `payloads` holds the encoded algorithm tensors of the jobs that have some."""
        payloads = payloads or {}
        with self._mutex:
            entries, order, waiting = self._entries, self._submitted, []
            for job in jobs:
                order += 1
                job_id, size = job.id, job.epochs * job.num_examples  # job_work, inline: 10,000 calls a round
                entries[job_id] = _Entry(job, size, order, payloads.get(job_id) if payloads else None)
                waiting.append((job_id, size))
            self._submitted = order
            self._pending.extend(waiting)
            self._lock.notify_all()
        self._on_submit()

    def lease(self, worker_id: str) -> Job | None:
        """The next pending job, leased to `worker_id` until now + lease_seconds; None if none."""
        jobs = self.lease_many(worker_id, 1)
        return jobs[0] if jobs else None

    def lease_many(self, worker_id: str, limit: int, max_work: int | None = None) -> list[Job]:
        """Up to `limit` pending jobs in queue order, each leased to `worker_id` on its own (own deadline,
        own re-issue). With `max_work`, jobs are taken while their summed work (epochs x examples) stays
        within it; the first job is always taken, however large."""
        with self._mutex:
            self._reclaim_expired()
            leased: list[str] = []
            skipped: list[tuple[str, int]] = []
            work, pending, entries = 0, self._pending, self._entries
            try:
                while pending and len(leased) < limit:
                    job_id, job_size = pending.first()
                    entry = entries[job_id]
                    if entry.done:
                        pending.pop_first()
                        continue  # finished by a late result while it waited for re-issue
                    if entry.refusals is not None and self._avoids(entry.refusals, worker_id):
                        skipped.append(pending.pop_first())
                        continue
                    work += job_size
                    if leased and max_work is not None and work > max_work:
                        break
                    pending.pop_first()
                    leased.append(job_id)
                return self._hand_out(leased, worker_id)
            finally:
                pending.put_first(skipped)

    def _hand_out(self, job_ids: list[str], worker_id: str) -> list[Job]:
        """Lease the jobs to `worker_id`: each keeps its own deadline, which they share until a heartbeat moves one."""
        if not job_ids:
            return []
        now = self._clock()
        deadline = now + self.lease_seconds
        jobs: list[Job] = []
        for job_id in job_ids:
            entry = self._entries[job_id]
            self._drop_holder(entry)
            entry.worker = worker_id
            if worker_id not in entry.holders:
                entry.holders += (worker_id,)
            entry.leased_at = now
            entry.deadline = deadline
            entry.attempts += 1
            jobs.append(entry.job)
        self._held[worker_id] = self._held.get(worker_id, 0) + len(job_ids)
        heapq.heappush(self._deadlines, (deadline, tuple(job_ids)))
        return jobs

    def reclaim_expired(self) -> None:
        """Put the jobs whose lease ran out back in the queue now (leasing does it too)."""
        with self._mutex:
            self._reclaim_expired()

    def _drop_holder(self, entry: _Entry) -> None:
        """The job is no longer held by a worker (done, expired, given back or handed to another)."""
        if entry.worker is not None:
            left = self._held[entry.worker] - 1
            if left:
                self._held[entry.worker] = left
            else:
                del self._held[entry.worker]
            entry.worker = None

    @property
    def waiting(self) -> int:
        """Jobs waiting for a lease (an upper bound: a few may have finished while they waited for re-issue)."""
        return len(self._pending)

    @property
    def waiting_work(self) -> int:
        """The summed work (example passes) of the jobs waiting for a lease (an upper bound, as `waiting`)."""
        return self._pending.work

    def holders(self) -> frozenset[str]:
        """The workers that hold at least one unfinished job now."""
        with self._mutex:
            return frozenset(self._held)

    def _avoids(self, refusals: _Refusals, worker_id: str) -> bool:
        """A job re-issued after a malformed answer goes to another worker; to the same one only when no
        other took it within a lease (a lone worker must not stall the run)."""
        return worker_id in refusals.workers and self._clock() < refusals.requeued_at + self.lease_seconds

    def _reclaim_expired(self) -> None:
        """Put back the jobs whose lease ran out: a heap of deadlines makes this O(expired), not O(jobs)."""
        now = self._clock()
        expired: list[str] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, job_ids = heapq.heappop(self._deadlines)
            for job_id in job_ids:
                entry = self._entries.get(job_id)
                # Stale: the job finished, was released, or a heartbeat moved its deadline.
                if entry is None or entry.worker is None or entry.done or entry.deadline != deadline:
                    continue
                self._drop_holder(entry)
                expired.append(job_id)
        # Re-issued jobs go first, in their original order: the round is waiting for them.
        expired.sort(key=lambda job_id: self._entries[job_id].order)
        self._pending.put_first((job_id, self._entries[job_id].work) for job_id in expired)
        self._reissued += len(expired)

    def held_by(self, job_id: str, worker_id: str) -> Completion | None:
        """None when `worker_id` may answer the job (it was leased to it and has no result yet), else why not."""
        with self._mutex:
            entry = self._entries.get(job_id)
            if entry is None:
                return Completion.DUPLICATE if job_id in self._retired else Completion.UNKNOWN
            if worker_id not in entry.holders:
                return Completion.NOT_HOLDER
            if entry.done:
                return Completion.DUPLICATE
            return None

    def complete(
        self, job_id: str, result: JobResult, tensors: Mapping[str, torch.Tensor], worker_id: str | None = None
    ) -> Completion:
        """Store the first result of a job from a worker it was leased to (any one if `worker_id` is None);
        later ones (re-issued copies, retries) are duplicates."""
        return self.complete_many([(job_id, result, tensors)], worker_id)[0]

    def complete_many(
        self, answers: Sequence[tuple[str, JobResult, Mapping[str, torch.Tensor]]], worker_id: str | None = None
    ) -> list[Completion]:
        """complete() for each (job id, result, tensors) of a worker's batch, in order, under one hold of the
        lock (a batch of 228 results took it 228 times, and the API thread wakes waiters less)."""
        completions: list[Completion] = []
        round_trips: list[float] = []
        with self._mutex:
            now = self._clock()
            for job_id, result, tensors in answers:
                entry = self._entries.get(job_id)
                if entry is None:
                    completions.append(Completion.DUPLICATE if job_id in self._retired else Completion.UNKNOWN)
                elif worker_id is not None and worker_id not in entry.holders:
                    completions.append(Completion.NOT_HOLDER)
                elif entry.done:
                    completions.append(Completion.DUPLICATE)
                else:
                    entry.result, entry.tensors = result, tensors
                    self._drop_holder(entry)
                    round_trips.append(now - entry.leased_at)
                    if self._awaited:
                        self._wake_if_last(job_id)
                    completions.append(Completion.ACCEPTED)
            self._completed += len(round_trips)
        for seconds in round_trips:
            self._on_round_trip(seconds)
        return completions

    def _wake_if_last(self, job_id: str) -> None:
        # Waking the waiter for each of 10,000 completions a round cost the API thread a GIL hand-over each.
        for awaited in self._awaited.values():
            if job_id in awaited:
                awaited.discard(job_id)
                if not awaited:
                    self._lock.notify_all()

    def reject(self, job_id: str) -> bool:
        """Finish a job without a result (its update was malformed: the device fails the round)."""
        with self._mutex:
            entry = self._entries.get(job_id)
            if entry is None or entry.done:
                return False
            entry.rejected = True
            self._drop_holder(entry)
            self._lock.notify_all()
            return True

    def refuse(self, job_id: str, worker_id: str, reason: str, limit: int) -> Refusal:
        """A malformed answer to a job that another worker may answer well (a test shard): the job goes back
        to the front of the queue, for another worker; after `limit` malformed answers it is rejected."""
        with self._mutex:
            entry = self._entries.get(job_id)
            if entry is None or entry.done:
                return Refusal.IGNORED
            refusals = entry.refusals = entry.refusals or _Refusals()
            refusals.workers.add(worker_id)
            refusals.count += 1
            refusals.reason = f"{reason} (answer {refusals.count} of at most {limit})"
            if refusals.count >= limit:
                entry.rejected = True
                self._drop_holder(entry)
                self._lock.notify_all()
                return Refusal.REJECTED
            if entry.worker == worker_id:
                self._drop_holder(entry)
                refusals.requeued_at = self._clock()
                self._pending.put_first([(job_id, entry.work)])
                self._reissued += 1
            self._lock.notify_all()
        self._on_submit()
        return Refusal.REQUEUED

    def extend(self, job_id: str, worker_id: str) -> LeaseChange:
        """A heartbeat: push the lease deadline of a job `worker_id` holds to now + lease_seconds."""
        with self._mutex:
            entry = self._holding(job_id, worker_id)
            if isinstance(entry, LeaseChange):
                return entry
            entry.deadline = self._clock() + self.lease_seconds
            heapq.heappush(self._deadlines, (entry.deadline, (job_id,)))
            return LeaseChange.DONE

    def release_worker(self, worker_id: str) -> list[str]:
        """Give back at once every job leased to a worker that is leaving; they go first in the queue."""
        with self._mutex:
            held = [job_id for job_id, entry in self._entries.items() if entry.worker == worker_id and not entry.done]
            for job_id in held:
                self._drop_holder(self._entries[job_id])
            self._pending.put_first((job_id, self._entries[job_id].work) for job_id in held)
            self._reissued += len(held)
            self._lock.notify_all()
        if held:
            self._on_submit()
        return held

    def _holding(self, job_id: str, worker_id: str) -> _Entry | LeaseChange:
        entry = self._entries.get(job_id)
        if entry is None:
            return LeaseChange.NOT_HOLDER if job_id in self._retired else LeaseChange.UNKNOWN
        if entry.done or entry.worker != worker_id:
            return LeaseChange.NOT_HOLDER
        return entry

    def payload(self, job_id: str) -> bytes | None:
        """The encoded algorithm tensors of a queued job, if it has any."""
        with self._mutex:
            entry = self._entries.get(job_id)
            return entry.payload if entry else None

    def known(self, job_id: str) -> Job | None:
        with self._mutex:
            entry = self._entries.get(job_id)
            return entry.job if entry else None

    def wait_done(self, job_ids: Iterable[str], timeout: float) -> bool:
        """Block until every job is done or dropped, or the timeout passes (then False)."""
        deadline = time.monotonic() + timeout
        with self._mutex:
            # The jobs not finished yet: a completion wakes this waiter only when it finishes the last of them.
            awaited = {job_id for job_id in job_ids if not self._finished(job_id)}
            self._waiters += 1
            waiter = self._waiters
            self._awaited[waiter] = awaited
            try:
                while not self._closed:
                    awaited.difference_update([job_id for job_id in awaited if self._finished(job_id)])
                    if not awaited:
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    # Wake at least every second so expired leases are put back even with no worker asking.
                    self._lock.wait(min(remaining, 1.0))
                    self._reclaim_expired()
                return False
            finally:
                del self._awaited[waiter]

    def _finished(self, job_id: str) -> bool:
        entry = self._entries.get(job_id)
        return entry is None or entry.done

    def take_results(self, job_ids: Iterable[str]) -> dict[str, tuple[JobResult, Mapping[str, torch.Tensor]]]:
        """Remove the jobs from the queue and return the results of those that have one."""
        return self.take(job_ids)[0]

    def take(
        self, job_ids: Iterable[str]
    ) -> tuple[dict[str, tuple[JobResult, Mapping[str, torch.Tensor]]], dict[str, str]]:
        """Remove the jobs from the queue: the results of those that have one, and the ids of those rejected
        with the reason (empty when none was recorded)."""
        results: dict[str, tuple[JobResult, Mapping[str, torch.Tensor]]] = {}
        rejected: dict[str, str] = {}
        with self._mutex:
            job_ids = list(job_ids)
            self._retired.add(job_ids)
            for job_id in job_ids:
                entry = self._entries.pop(job_id, None)
                if entry is None:
                    continue
                if entry.worker is not None:
                    self._drop_holder(entry)
                if entry.result is not None and entry.tensors is not None:
                    results[job_id] = (entry.result, entry.tensors)
                elif entry.rejected:
                    rejected[job_id] = entry.refusals.reason if entry.refusals else ""
            if self._pending:
                self._pending.keep(self._entries.__contains__)
        return results, rejected

    def close(self) -> None:
        """No more jobs will come: wake every waiter."""
        with self._mutex:
            self._closed = True
            self._lock.notify_all()
        self._on_submit()

    @property
    def closed(self) -> bool:
        return self._closed

    def counts(self) -> QueueCounts:
        with self._mutex:
            leased = sum(1 for entry in self._entries.values() if entry.worker is not None and not entry.done)
            done = sum(1 for entry in self._entries.values() if entry.done)
            return QueueCounts(
                queued=len(self._entries) - leased - done,
                leased=leased,
                done=done,
                reissued=self._reissued,
                completed=self._completed,
            )
