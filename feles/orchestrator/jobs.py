"""The job queue with leases: a job not finished before its deadline goes back to the queue.

Jobs come in blocks (feles.orchestrator.job_block), and the queue keeps each block's lease state in columns, one
list entry per job: a lease of a batch assigns slices, and a round of 10,000 jobs makes no object per job. Every
job still has its own lease: its own holder, deadline, re-issue and result.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import accumulate

import torch

from feles.orchestrator.batching import ResultRoom, job_work, joins_share
from feles.orchestrator.job_block import JobBlock, batch_json, blocks_of
from feles.orchestrator.pass_cost import PassCostEstimate
from feles.orchestrator.pending import PendingJobs
from feles.orchestrator.retired import RetiredJobs
from feles.protocol import Job, JobResult, JobTerms, Phase

#: A job's accepted result: its metadata and its tensors.
Completed = tuple[JobResult, Mapping[str, torch.Tensor]]


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


class _Submitted:
    """A submitted block with the lease state and the answers of its jobs, position by position."""

    __slots__ = (
        "attempts",
        "block",
        "cumulative_passes",
        "cumulative_work",
        "deadline",
        "finished",
        "holders",
        "index",
        "leased_at",
        "payloads",
        "refusals",
        "rejected",
        "results",
        "sequence",
        "taken",
        "tensors",
        "unfinished",
        "work",
        "worker",
    )

    def __init__(
        self, block: JobBlock, sequence: int, payloads: Mapping[str, bytes], training_pass_cost: float
    ) -> None:
        n = len(block)
        self.block = block
        #: Order of submission: jobs put back go first in (sequence, position) order (a batch expires together).
        self.sequence = sequence
        #: Each job's work in inference passes (batching.job_work), at the training pass cost known when queued.
        self.work = job_work(block.template.phase, block.epochs, block.num_examples, training_pass_cost)
        self.cumulative_work = [0, *accumulate(self.work)]
        #: cumulative_passes[i]: the example passes (epochs x examples) of the jobs before position i.
        self.cumulative_passes = [0, *accumulate(e * n for e, n in zip(block.epochs, block.num_examples, strict=True))]
        self.index = dict(zip(block.ids, range(n), strict=True))
        self.payloads = {job_id: payloads[job_id] for job_id in payloads if job_id in self.index} if payloads else {}
        #: The worker holding each job now, if any.
        self.worker: list[str | None] = [None] * n
        self.deadline = [0.0] * n
        self.leased_at = [0.0] * n
        self.attempts = [0] * n
        #: Every worker each job was ever leased to: the only ones whose result counts (the first one wins).
        self.holders: list[tuple[str, ...]] = [()] * n
        self.results: list[JobResult | None] = [None] * n
        self.tensors: list[Mapping[str, torch.Tensor] | None] = [None] * n
        self.rejected: set[int] = set()
        #: Malformed answers, by position (rare: test shards).
        self.refusals: dict[int, _Refusals] = {}
        self.unfinished = n
        self.finished = 0
        self.taken = 0

    def done(self, i: int) -> bool:
        return self.results[i] is not None or i in self.rejected


@dataclass(frozen=True)
class QueueCounts:
    """Jobs queued, leased and done now; completed and re-issued since the start (counters)."""

    queued: int
    leased: int
    done: int
    reissued: int
    completed: int = 0


@dataclass
class _Taking:
    """What one lease has taken so far against its limits: jobs, work (a fair share) and results' room."""

    limit: int
    max_work: int | None
    room: ResultRoom | None
    count: int = 0
    work: int = 0
    result_bytes: int = 0
    #: Example passes taken of fit jobs and of the others, and whether every job taken is a fresh one.
    training: int = 0
    inference: int = 0
    fresh: bool = True

    def most(self, phase: Phase) -> int:
        """How many more jobs of `phase` the job and result limits let in (the work is the queue's to check)."""
        most = self.limit - self.count
        if self.room is not None:
            most = min(most, (self.room.total - self.result_bytes) // self.room.part(phase))
        return most

    def work_left(self) -> int | None:
        return None if self.max_work is None else self.max_work - self.work

    def joins(self, work: int) -> bool:
        """Whether a job of `work` joins the batch by the fair share."""
        return self.max_work is None or joins_share(self.work, work, self.max_work)

    def add(self, submitted: _Submitted, start: int, stop: int) -> None:
        phase = submitted.block.template.phase
        self.count += stop - start
        self.work += submitted.cumulative_work[stop] - submitted.cumulative_work[start]
        if self.room is not None:
            self.result_bytes += (stop - start) * self.room.part(phase)
        passes = submitted.cumulative_passes[stop] - submitted.cumulative_passes[start]
        if phase is Phase.FIT:
            self.training += passes
        else:
            self.inference += passes
        self.fresh = self.fresh and submitted.attempts[start] == 0


@dataclass(frozen=True)
class _LeasedBatch:
    """A worker's latest batch, all fresh jobs: what the pass cost estimate learns once it is answered whole."""

    leased_at: float
    count: int
    training: int
    inference: int


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
        #: What a training pass costs against an inference pass, learnt from the batches' answers.
        self.pass_cost = PassCostEstimate()
        #: Each worker's latest batch of fresh jobs until it is answered whole (a worker runs one batch at a time).
        self._batches: dict[str, _LeasedBatch] = {}
        self._completed = 0
        # Held directly (`with self._mutex`): entering the Condition runs Python code; the Condition shares the
        # lock for waiting and waking.
        self._mutex = threading.RLock()
        self._lock = threading.Condition(self._mutex)
        #: The block of each job not taken yet, and the blocks by identity.
        self._where: dict[str, _Submitted] = {}
        self._blocks: dict[int, _Submitted] = {}
        self._pending: PendingJobs[_Submitted] = PendingJobs()
        #: Jobs each worker holds now, and their work: the batch rule shares the work left among the workers.
        self._held: dict[str, int] = {}
        self._held_work: dict[str, int] = {}
        self._retired = RetiredJobs()
        #: Heap of (deadline, tie-breaker, block, positions): a lease's jobs share an item.
        self._deadlines: list[tuple[float, int, _Submitted, Sequence[int]]] = []
        self._tie_breaker = itertools.count()
        self._sequence = 0
        #: Jobs not taken yet, and those of them done.
        self._live = 0
        self._done = 0
        self._reissued = 0
        self._closed = False
        #: Per waiter in wait_done, the jobs it still waits for: a completion wakes it only when it takes the last.
        self._awaited: dict[int, set[str]] = {}
        self._waiters = 0

    def submit(self, jobs: JobBlock | Iterable[Job], payloads: Mapping[str, bytes] | None = None) -> None:
        """Queue jobs; `payloads` holds the encoded algorithm tensors of the jobs that have some."""
        self.submit_blocks([jobs] if isinstance(jobs, JobBlock) else blocks_of(jobs), payloads)

    def submit_blocks(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes] | None = None) -> None:
        """Queue blocks of jobs in order, all at once: no lease sees some of them queued and not the others."""
        with self._mutex:
            for block in blocks:
                if id(block) in self._blocks:
                    raise ValueError("this block of jobs is queued already")
                self._sequence += 1
                submitted = _Submitted(block, self._sequence, payloads or {}, self.pass_cost.value)
                self._where.update(dict.fromkeys(block.ids, submitted))
                self._blocks[id(block)] = submitted
                self._pending.append(submitted, 0, len(block))
                self._live += len(block)
            self._lock.notify_all()
        self._on_submit()

    def lease(self, worker_id: str) -> Job | None:
        """The next pending job, leased to `worker_id` until now + lease_seconds; None if none."""
        jobs = self.lease_many(worker_id, 1)
        return jobs[0] if jobs else None

    def lease_many(
        self, worker_id: str, limit: int, max_work: int | None = None, room: ResultRoom | None = None
    ) -> list[Job]:
        """Up to `limit` pending jobs in queue order, each leased to `worker_id` on its own (own deadline,
        own re-issue). With `max_work`, jobs are taken while their summed work (epochs x examples) stays about
        within it (a job joins when half of it fits: batching.joins_share); with `room`, while their results fit
        in one batch results body. The first job is always taken, however large."""
        with self._mutex:
            leased = self._lease(worker_id, _Taking(limit, max_work, room))
        return [submitted.block.job(i) for submitted, start, stop in leased for i in range(start, stop)]

    def lease_json(
        self, worker_id: str, limit: int, max_work: int | None = None, room: ResultRoom | None = None
    ) -> tuple[int, str] | None:
        """lease_many, answered as the number of jobs and the JSON of their JobBatch (rendered from the blocks'
        columns, as pydantic would dump it); None when no job waits."""
        with self._mutex:
            leased = self._lease(worker_id, _Taking(limit, max_work, room))
        if not leased:
            return None
        count = sum(stop - start for _, start, stop in leased)
        return count, batch_json(submitted.block.json_range(start, stop) for submitted, start, stop in leased)

    def _lease(self, worker_id: str, taking: _Taking) -> list[tuple[_Submitted, int, int]]:
        """Take jobs off the pending line for `worker_id` and lease them: [block, start, stop) pieces."""
        self._reclaim_expired()
        leased: list[tuple[_Submitted, int, int]] = []
        skipped: list[tuple[_Submitted, int]] = []
        pending = self._pending
        try:
            while pending:
                submitted, start, _ = pending.first()
                most = taking.most(submitted.block.template.phase)
                if most < 1:
                    if leased:
                        break
                    most = 1  # the first job always goes
                if submitted.attempts[start] == 0:
                    # A run as submitted: never leased, none of it finished (see _finish), so a slice goes at once.
                    piece = pending.take_first(most, taking.work_left(), first=not leased)
                    if piece is None:
                        break
                    _, start, stop = piece
                elif submitted.done(start):
                    pending.pop_first()  # put back, then finished by a late result
                    continue
                elif start in submitted.refusals and self._avoids(submitted.refusals[start], worker_id):
                    skipped.append(pending.pop_first())
                    continue
                else:
                    stop = start + 1
                    if leased and not taking.joins(submitted.work[start]):
                        break
                    pending.pop_first()
                leased.append((submitted, start, stop))
                taking.add(submitted, start, stop)
        finally:
            pending.put_first(skipped)
        self._hand_out(leased, worker_id, taking)
        return leased

    def _hand_out(self, leased: list[tuple[_Submitted, int, int]], worker_id: str, taking: _Taking) -> None:
        """Lease the jobs to `worker_id`: each keeps its own deadline, which they share until a heartbeat moves one."""
        if not leased:
            return
        now = self._clock()
        if taking.fresh:
            self._batches[worker_id] = _LeasedBatch(now, taking.count, taking.training, taking.inference)
        else:
            self._batches.pop(worker_id, None)
        count, work = taking.count, taking.work
        deadline = now + self.lease_seconds
        for submitted, start, stop in leased:
            if submitted.attempts[start] == 0:
                n = stop - start
                submitted.worker[start:stop] = [worker_id] * n
                submitted.holders[start:stop] = [(worker_id,)] * n
                submitted.leased_at[start:stop] = [now] * n
                submitted.deadline[start:stop] = [deadline] * n
                submitted.attempts[start:stop] = [1] * n
            else:  # a job put back: leased again alone
                self._drop_holder(submitted, start)
                submitted.worker[start] = worker_id
                if worker_id not in submitted.holders[start]:
                    submitted.holders[start] += (worker_id,)
                submitted.leased_at[start] = now
                submitted.deadline[start] = deadline
                submitted.attempts[start] += 1
            heapq.heappush(self._deadlines, (deadline, next(self._tie_breaker), submitted, range(start, stop)))
        self._held[worker_id] = self._held.get(worker_id, 0) + count
        self._held_work[worker_id] = self._held_work.get(worker_id, 0) + work

    def reclaim_expired(self) -> None:
        """Put the jobs whose lease ran out back in the queue now (leasing does it too)."""
        with self._mutex:
            self._reclaim_expired()

    def _drop_holder(self, submitted: _Submitted, i: int) -> None:
        """The job is no longer held by a worker (done, expired, given back, handed to another or taken)."""
        worker = submitted.worker[i]
        if worker is not None:
            self._release(worker, 1, submitted.work[i])
            submitted.worker[i] = None

    def _release(self, worker: str, count: int, work: int) -> None:
        if left := self._held[worker] - count:
            self._held[worker] = left
            self._held_work[worker] -= work
        else:
            del self._held[worker], self._held_work[worker]

    @property
    def waiting(self) -> int:
        """Jobs waiting for a lease (an upper bound: a few may have finished while they waited for re-issue)."""
        return len(self._pending)

    @property
    def waiting_work(self) -> int:
        """The summed work (JobBlock.work) of the jobs waiting for a lease (an upper bound, as `waiting`)."""
        return self._pending.work

    def holders(self) -> frozenset[str]:
        """The workers that hold at least one unfinished job now."""
        with self._mutex:
            return frozenset(self._held)

    def held_work(self) -> dict[str, int]:
        """The work of the unfinished jobs each worker holds now (work as in `waiting_work`)."""
        with self._mutex:
            return dict(self._held_work)

    def _avoids(self, refusals: _Refusals, worker_id: str) -> bool:
        """A job re-issued after a malformed answer goes to another worker; to the same one only when no
        other took it within a lease (a lone worker must not stall the run)."""
        return worker_id in refusals.workers and self._clock() < refusals.requeued_at + self.lease_seconds

    def _reclaim_expired(self) -> None:
        """Put back the jobs whose lease ran out: a heap of deadlines makes this O(expired), not O(jobs)."""
        now = self._clock()
        expired: list[tuple[_Submitted, int]] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, submitted, positions = heapq.heappop(self._deadlines)
            for i in positions:
                # Stale: the job finished, was released or taken, or a heartbeat moved its deadline.
                if submitted.worker[i] is None or submitted.done(i) or submitted.deadline[i] != deadline:
                    continue
                self._drop_holder(submitted, i)
                expired.append((submitted, i))
        # Re-issued jobs go first, in their original order: the round is waiting for them.
        expired.sort(key=lambda job: (job[0].sequence, job[1]))
        self._pending.put_first(expired)
        self._reissued += len(expired)

    def _locate(self, job_id: str) -> tuple[_Submitted, int] | None:
        submitted = self._where.get(job_id)
        return None if submitted is None else (submitted, submitted.index[job_id])

    def held_by(self, job_id: str, worker_id: str) -> Completion | None:
        """None when `worker_id` may answer the job (it was leased to it and has no result yet), else why not."""
        with self._mutex:
            located = self._locate(job_id)
            if located is None:
                return Completion.DUPLICATE if job_id in self._retired else Completion.UNKNOWN
            submitted, i = located
            if worker_id not in submitted.holders[i]:
                return Completion.NOT_HOLDER
            if submitted.done(i):
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
        stored: list[tuple[_Submitted, int]] = []
        with self._mutex:
            now, where = self._clock(), self._where
            for job_id, result, tensors in answers:
                submitted = where.get(job_id)
                if submitted is None:
                    completions.append(Completion.DUPLICATE if job_id in self._retired else Completion.UNKNOWN)
                    continue
                i = submitted.index[job_id]
                if worker_id is not None and worker_id not in submitted.holders[i]:
                    completions.append(Completion.NOT_HOLDER)
                elif submitted.results[i] is not None or i in submitted.rejected:
                    completions.append(Completion.DUPLICATE)
                else:
                    submitted.results[i] = result
                    submitted.tensors[i] = tensors
                    if submitted.attempts[i]:
                        round_trips.append(now - submitted.leased_at[i])
                    stored.append((submitted, i))
                    completions.append(Completion.ACCEPTED)
            self._finish(stored)
            self._completed += len(stored)
            self._observe_batch(worker_id, stored, now)
        for seconds in round_trips:
            self._on_round_trip(seconds)
        return completions

    def _observe_batch(self, worker_id: str | None, stored: list[tuple[_Submitted, int]], now: float) -> None:
        """Teach the pass cost estimate a worker's batch answered whole: its passes were counted when it was leased,
        so a batch of 10,000 tiny jobs costs a lookup here, not a walk over its jobs."""
        batch = self._batches.get(worker_id) if worker_id is not None else None
        if batch is None or len(stored) != batch.count:
            return  # a part of the batch, or answers without a lease of their own
        submitted, i = stored[0]
        if submitted.leased_at[i] != batch.leased_at:
            return  # answers of an older lease
        del self._batches[worker_id]
        self.pass_cost.observe(batch.training, batch.inference, now - batch.leased_at)

    def _finish(self, jobs: list[tuple[_Submitted, int]]) -> None:
        """Count the jobs done (a result or a rejection), released by their holders; wake who waits for them."""
        released: dict[str, list[int]] = {}
        unleased: set[tuple[int, int]] = set()
        wake = False
        for submitted, i in jobs:
            holder = submitted.worker[i]
            if holder is not None:
                submitted.worker[i] = None
                count_work = released.setdefault(holder, [0, 0])
                count_work[0] += 1
                count_work[1] += submitted.work[i]
            elif not submitted.attempts[i]:
                unleased.add((id(submitted), i))
            submitted.unfinished -= 1
            submitted.finished += 1
            wake = wake or not submitted.unfinished
        for holder, (count, work) in released.items():
            self._release(holder, count, work)
        self._done += len(jobs)
        if unleased:  # finished before any lease: they leave the waiting line
            self._pending.keep(lambda submitted, i: (id(submitted), i) not in unleased)
        if self._awaited:
            for submitted, i in jobs:
                self._wake_if_last(submitted.block.ids[i])
        if wake:
            self._lock.notify_all()

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
            located = self._locate(job_id)
            if located is None or located[0].done(located[1]):
                return False
            self._reject(*located)
            return True

    def _reject(self, submitted: _Submitted, i: int) -> None:
        submitted.rejected.add(i)
        self._finish([(submitted, i)])
        self._lock.notify_all()

    def refuse(self, job_id: str, worker_id: str, reason: str, limit: int) -> Refusal:
        """A malformed answer to a job that another worker may answer well (a test shard): the job goes back
        to the front of the queue, for another worker; after `limit` malformed answers it is rejected."""
        with self._mutex:
            located = self._locate(job_id)
            if located is None or located[0].done(located[1]):
                return Refusal.IGNORED
            submitted, i = located
            refusals = submitted.refusals.setdefault(i, _Refusals())
            refusals.workers.add(worker_id)
            refusals.count += 1
            refusals.reason = f"{reason} (answer {refusals.count} of at most {limit})"
            if refusals.count >= limit:
                self._reject(submitted, i)
                return Refusal.REJECTED
            if submitted.worker[i] == worker_id:
                self._drop_holder(submitted, i)
                refusals.requeued_at = self._clock()
                self._pending.put_first([(submitted, i)])
                self._reissued += 1
            self._lock.notify_all()
        self._on_submit()
        return Refusal.REQUEUED

    def extend(self, job_id: str, worker_id: str) -> LeaseChange:
        """A heartbeat: push the lease deadline of a job `worker_id` holds to now + lease_seconds."""
        with self._mutex:
            located = self._holding(job_id, worker_id)
            if isinstance(located, LeaseChange):
                return located
            submitted, i = located
            deadline = submitted.deadline[i] = self._clock() + self.lease_seconds
            heapq.heappush(self._deadlines, (deadline, next(self._tie_breaker), submitted, (i,)))
            return LeaseChange.DONE

    def release_worker(self, worker_id: str) -> list[str]:
        """Give back at once every job leased to a worker that is leaving; they go first in the queue."""
        with self._mutex:
            held = [
                (submitted, i)
                for submitted in self._blocks.values()
                if worker_id in submitted.worker
                for i, holder in enumerate(submitted.worker)
                if holder == worker_id and not submitted.done(i)
            ]
            for submitted, i in held:
                self._drop_holder(submitted, i)
            self._batches.pop(worker_id, None)
            self._pending.put_first(held)
            self._reissued += len(held)
            self._lock.notify_all()
        if held:
            self._on_submit()
        return [submitted.block.ids[i] for submitted, i in held]

    def _holding(self, job_id: str, worker_id: str) -> tuple[_Submitted, int] | LeaseChange:
        located = self._locate(job_id)
        if located is None:
            return LeaseChange.NOT_HOLDER if job_id in self._retired else LeaseChange.UNKNOWN
        submitted, i = located
        if submitted.done(i) or submitted.worker[i] != worker_id:
            return LeaseChange.NOT_HOLDER
        return located

    def payload(self, job_id: str) -> bytes | None:
        """The encoded algorithm tensors of a queued job, if it has any."""
        with self._mutex:
            submitted = self._where.get(job_id)
            return submitted.payloads.get(job_id) if submitted else None

    def terms(self, job_id: str) -> JobTerms | None:
        """What the result of a queued job is checked against; None once it is taken (or never was queued)."""
        with self._mutex:
            located = self._locate(job_id)
        return None if located is None else located[0].block.terms(located[1])

    def wait_done(self, job_ids: Iterable[str], timeout: float) -> bool:
        """Block until every job is done or dropped, or the timeout passes (then False)."""
        with self._mutex:
            # The jobs not finished yet: a completion wakes this waiter only when it finishes the last of them.
            awaited = {job_id for job_id in job_ids if not self._finished(job_id)}
            self._waiters += 1
            waiter = self._waiters
            self._awaited[waiter] = awaited
            try:

                def finished() -> bool:
                    awaited.difference_update([job_id for job_id in awaited if self._finished(job_id)])
                    return not awaited

                return self._wait(finished, timeout)
            finally:
                del self._awaited[waiter]

    def wait_blocks(self, blocks: Iterable[JobBlock], timeout: float) -> bool:
        """wait_done for every job of these blocks, counted per block instead of per job."""
        with self._mutex:
            submitted = [self._blocks.get(id(block)) for block in blocks]
            return self._wait(lambda: all(s is None or not s.unfinished for s in submitted), timeout)

    def _wait(self, finished: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._closed:
            if finished():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Wake at least every second so expired leases are put back even with no worker asking.
            self._lock.wait(min(remaining, 1.0))
            self._reclaim_expired()
        return False

    def _finished(self, job_id: str) -> bool:
        located = self._locate(job_id)
        return located is None or located[0].done(located[1])

    def take_results(self, job_ids: Iterable[str]) -> dict[str, Completed]:
        """Remove the jobs from the queue and return the results of those that have one."""
        return self.take(job_ids)[0]

    def take(self, job_ids: Iterable[str]) -> tuple[dict[str, Completed], dict[str, str]]:
        """Remove the jobs from the queue: the results of those that have one, and the ids of those rejected
        with the reason (empty when none was recorded)."""
        results: dict[str, Completed] = {}
        rejected: dict[str, str] = {}
        with self._mutex:
            job_ids = list(job_ids)
            self._retired.add(job_ids)
            for job_id in job_ids:
                located = self._locate(job_id)
                if located is not None:
                    self._take_one(*located, results, rejected)
            if self._pending:
                self._pending.keep(lambda submitted, i: self._where.get(submitted.block.ids[i]) is submitted)
        return results, rejected

    def _take_one(self, submitted: _Submitted, i: int, results: dict[str, Completed], rejected: dict[str, str]) -> None:
        job_id = submitted.block.ids[i]
        del self._where[job_id]
        self._drop_holder(submitted, i)
        result, tensors = submitted.results[i], submitted.tensors[i]
        if result is not None and tensors is not None:
            results[job_id] = (result, tensors)
        elif i in submitted.rejected:
            refusals = submitted.refusals.get(i)
            rejected[job_id] = refusals.reason if refusals else ""
        self._live -= 1
        if submitted.done(i):
            self._done -= 1
        else:  # taken unfinished: nobody waits for it any more
            submitted.unfinished -= 1
            if not submitted.unfinished:
                self._lock.notify_all()
        submitted.results[i] = submitted.tensors[i] = None
        submitted.taken += 1
        if submitted.taken == len(submitted.block):
            self._forget(submitted)

    def take_blocks(self, blocks: Iterable[JobBlock]) -> tuple[dict[str, Completed], dict[str, str]]:
        """take() of every job of these blocks, each block at once where none of its jobs was taken before."""
        results: dict[str, Completed] = {}
        rejected: dict[str, str] = {}
        with self._mutex:
            taken = [submitted for block in blocks if (submitted := self._blocks.get(id(block))) is not None]
            for submitted in taken:
                self._take_block(submitted, results, rejected)
            self._pending.drop_blocks(taken)
        return results, rejected

    def _take_block(self, submitted: _Submitted, results: dict[str, Completed], rejected: dict[str, str]) -> None:
        block = submitted.block
        ids = block.ids
        self._retired.add(ids)
        if submitted.taken:  # some of its jobs were taken one by one: the others go the same way
            for job_id in ids:
                if self._where.get(job_id) is submitted:
                    self._take_one(submitted, submitted.index[job_id], results, rejected)
            return
        where = self._where
        for job_id in ids:
            if where.get(job_id) is submitted:  # else queued again since, in a later block
                del where[job_id]
        if submitted.worker.count(None) != len(ids):
            for i, worker in enumerate(submitted.worker):
                if worker is not None:
                    self._drop_holder(submitted, i)
        tensors = submitted.tensors
        results.update(
            (ids[i], (result, tensors[i]))  # type: ignore[misc]  # a stored result always has its tensors
            for i, result in enumerate(submitted.results)
            if result is not None
        )
        for i in sorted(submitted.rejected):
            refusals = submitted.refusals.get(i)
            rejected[ids[i]] = refusals.reason if refusals else ""
        self._live -= len(ids)
        self._done -= submitted.finished
        self._forget(submitted)

    def _forget(self, submitted: _Submitted) -> None:
        """Every job of the block was taken: drop it, and its leases' deadlines, which hold it and its answers
        (left in the heap until they pass, a lease of minutes kept the results of many rounds alive)."""
        del self._blocks[id(submitted.block)]
        self._deadlines = [item for item in self._deadlines if item[2] is not submitted]
        heapq.heapify(self._deadlines)

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
            leased = sum(self._held.values())
            return QueueCounts(
                queued=self._live - leased - self._done,
                leased=leased,
                done=self._done,
                reissued=self._reissued,
                completed=self._completed,
            )
