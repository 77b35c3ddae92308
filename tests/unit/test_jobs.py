"""feles.orchestrator.jobs: the FIFO job queue with leases, re-issue and duplicate results."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest
import torch

from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.jobs import Completion, JobQueue, LeaseChange, QueueCounts
from feles.orchestrator.round_jobs import device_jobs, job_template
from feles.protocol import ExampleRange, Job, JobBatch, JobResult, JobTerms, Phase
from feles.strategies import LocalWork

LEASE = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def job(job_id: str, device: int = 0) -> Job:
    return Job(
        id=job_id,
        run_id="run",
        repetition=0,
        round=0,
        phase="fit",
        device=device,
        model_version=0,
        epochs=1,
        batch_size=32,
        num_examples=10,
        seed=0,
        lease_seconds=LEASE,
    )


def result(job_id: str, worker: str = "w1", loss: float = 0.5) -> JobResult:
    return JobResult(job_id=job_id, worker_id=worker, loss=loss, num_examples=10, num_steps=1, train_seconds=0.1)


def tensors(value: float = 1.0) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2,), value)}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> JobQueue:
    return JobQueue(lease_seconds=LEASE, clock=clock)


def counts(queue: JobQueue) -> tuple[int, int, int, int]:
    c = queue.counts()
    return (c.queued, c.leased, c.done, c.reissued)


# --- leasing ----------------------------------------------------------------------------------------


def test_lease_is_fifo(queue: JobQueue) -> None:
    queue.submit([job("a"), job("b")])
    queue.submit([job("c")])
    assert [queue.lease("w").id for _ in range(3)] == ["a", "b", "c"]
    assert queue.lease("w") is None


def test_lease_of_an_empty_queue_is_none(queue: JobQueue) -> None:
    assert queue.lease("w1") is None
    assert counts(queue) == (0, 0, 0, 0)


def test_lease_returns_the_submitted_job(queue: JobQueue) -> None:
    submitted = job("a", device=7)
    queue.submit([submitted])
    leased = queue.lease("w1")
    assert leased == submitted
    assert leased.device == 7


def test_counts_queued_leased_done(queue: JobQueue) -> None:
    queue.submit([job("a"), job("b"), job("c"), job("d")])
    assert queue.counts() == QueueCounts(queued=4, leased=0, done=0, reissued=0)
    queue.lease("w1")
    queue.lease("w2")
    assert counts(queue) == (2, 2, 0, 0)
    assert queue.complete("a", result("a"), tensors()) is Completion.ACCEPTED
    assert counts(queue) == (2, 1, 1, 0)
    assert queue.reject("c") is True  # a queued job can be rejected too
    assert counts(queue) == (1, 1, 2, 0)


def test_lease_not_expired_before_deadline(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a"), job("b")])
    assert queue.lease("w1").id == "a"
    clock.advance(LEASE - 0.5)
    assert queue.lease("w2").id == "b"
    assert queue.lease("w3") is None
    assert counts(queue) == (0, 2, 0, 0)


def test_expired_lease_is_reissued_first_to_another_worker(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a"), job("b"), job("c")])
    assert queue.lease("w1").id == "a"
    clock.advance(LEASE + 0.5)
    assert queue.counts().reissued == 0  # reclaiming happens when someone asks
    assert queue.lease("w2").id == "a"  # re-issued before b and c: the round waits for it
    assert queue.counts().reissued == 1
    assert [queue.lease("w3").id, queue.lease("w3").id] == ["b", "c"]
    assert counts(queue) == (0, 3, 0, 1)


def test_reissued_job_can_expire_again(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a")])
    queue.lease("w1")
    clock.advance(LEASE + 1)
    assert queue.lease("w2").id == "a"
    clock.advance(LEASE - 1)
    assert queue.lease("w3") is None  # the second lease still runs
    clock.advance(2)
    assert queue.lease("w3").id == "a"
    assert queue.counts().reissued == 2


def test_completed_job_is_never_reissued(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a")])
    queue.lease("w1")
    queue.complete("a", result("a"), tensors())
    clock.advance(10 * LEASE)
    assert queue.lease("w2") is None
    assert counts(queue) == (0, 0, 1, 0)


# --- results ----------------------------------------------------------------------------------------


def test_late_result_of_reissued_job_accepted_once(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a")])
    queue.lease("w1")
    clock.advance(LEASE + 1)
    assert queue.lease("w2").id == "a"
    # The first worker was slow, not dead: its result is the one kept.
    assert queue.complete("a", result("a", "w1", loss=0.1), tensors(1.0)) is Completion.ACCEPTED
    assert queue.complete("a", result("a", "w2", loss=0.2), tensors(2.0)) is Completion.DUPLICATE
    taken = queue.take_results(["a"])
    kept, kept_tensors = taken["a"]
    assert kept.worker_id == "w1"
    assert kept.loss == 0.1
    assert torch.equal(kept_tensors["w"], torch.full((2,), 1.0))


def test_several_expired_jobs_are_reissued_in_submission_order(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a"), job("b"), job("c"), job("d")])
    queue.lease("w1")  # a
    queue.lease("w2")  # b
    queue.lease("w3")  # c
    clock.advance(LEASE + 1)
    leased = [queue.lease("w4").id for _ in range(4)]
    assert leased == ["a", "b", "c", "d"]
    assert queue.counts().reissued == 3


def test_late_result_of_a_job_waiting_for_reissue_skips_it(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a"), job("b"), job("c")])
    queue.lease("w1")  # a
    queue.lease("w2")  # b
    clock.advance(LEASE + 1)
    first = queue.lease("w3").id  # both a and b were put back; one of them is leased again
    assert first in {"a", "b"}
    waiting = ({"a", "b"} - {first}).pop()
    original_worker = "w1" if waiting == "a" else "w2"
    assert queue.complete(waiting, result(waiting, original_worker), tensors()) is Completion.ACCEPTED
    assert queue.lease("w4").id == "c"  # the finished job is not handed out again
    assert queue.lease("w4") is None
    assert counts(queue) == (0, 2, 1, 2)


def test_result_for_an_unknown_job(queue: JobQueue) -> None:
    assert queue.complete("nope", result("nope"), tensors()) is Completion.UNKNOWN
    queue.submit([job("a")])
    assert queue.complete("other", result("other"), tensors()) is Completion.UNKNOWN
    assert counts(queue) == (1, 0, 0, 0)


def test_result_of_a_job_never_leased_is_accepted(queue: JobQueue) -> None:
    queue.submit([job("a")])
    assert queue.complete("a", result("a"), tensors()) is Completion.ACCEPTED
    assert queue.lease("w") is None


def test_second_result_is_duplicate(queue: JobQueue) -> None:
    queue.submit([job("a")])
    queue.lease("w1")
    assert queue.complete("a", result("a"), tensors(1.0)) is Completion.ACCEPTED
    assert queue.complete("a", result("a"), tensors(2.0)) is Completion.DUPLICATE
    [(_, kept)] = queue.take_results(["a"]).values()
    assert torch.equal(kept["w"], torch.full((2,), 1.0))


def test_complete_many_answers_each_result_as_complete_would(queue: JobQueue) -> None:
    queue.submit([job("a"), job("b"), job("c")])
    assert [j.id for j in queue.lease_many("w1", 2)] == ["a", "b"]
    queue.lease("w2")  # c
    answers = [("a", result("a"), tensors(1.0)), ("c", result("c"), tensors()), ("x", result("x"), tensors())]
    answers += [("a", result("a"), tensors(2.0)), ("b", result("b"), tensors(3.0))]
    assert queue.complete_many(answers, "w1") == [
        Completion.ACCEPTED,
        Completion.NOT_HOLDER,  # c is w2's
        Completion.UNKNOWN,
        Completion.DUPLICATE,  # the first answer to a wins
        Completion.ACCEPTED,
    ]
    assert queue.counts() == QueueCounts(queued=0, leased=1, done=2, reissued=0, completed=2)
    kept = queue.take_results(["a", "b"])
    assert torch.equal(kept["a"][1]["w"], torch.full((2,), 1.0)) and torch.equal(
        kept["b"][1]["w"], torch.full((2,), 3.0)
    )


def test_result_for_a_taken_job_is_duplicate_not_unknown(queue: JobQueue) -> None:
    queue.submit([job("a"), job("b")])
    queue.lease("w1")
    queue.complete("a", result("a"), tensors())
    queue.take_results(["a", "b"])
    assert queue.complete("a", result("a", "w2"), tensors()) is Completion.DUPLICATE
    # b was retired without a result (its device failed the round): a late result is a duplicate too.
    assert queue.complete("b", result("b"), tensors()) is Completion.DUPLICATE
    assert queue.terms("a") is None


def test_reject_finishes_a_job_without_result(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a"), job("b")])
    queue.lease("w1")
    assert queue.reject("a") is True
    assert counts(queue) == (1, 0, 1, 0)
    assert queue.reject("a") is False  # already finished
    assert queue.complete("a", result("a"), tensors()) is Completion.DUPLICATE
    clock.advance(10 * LEASE)
    assert queue.lease("w2").id == "b"  # a rejected job is not re-issued
    assert queue.lease("w2") is None
    assert queue.wait_done(["a"], timeout=0) is True
    assert queue.take_results(["a", "b"]) == {}


def test_reject_unknown_or_completed_job(queue: JobQueue) -> None:
    assert queue.reject("nope") is False
    queue.submit([job("a")])
    queue.complete("a", result("a"), tensors())
    assert queue.reject("a") is False
    assert "a" in queue.take_results(["a"])


def test_terms_are_what_a_queued_jobs_result_is_checked_against(queue: JobQueue) -> None:
    shard = job("s").model_copy(
        update={
            "phase": Phase.TEST,
            "device": None,
            "test_examples": ExampleRange(start=20, stop=70),
            "num_examples": 50,
        }
    )
    queue.submit([job("a", device=3), shard])
    assert queue.terms("a") == JobTerms(Phase.FIT, 10, None)
    assert queue.terms("s") == JobTerms(Phase.TEST, 50, ExampleRange(start=20, stop=70))
    assert queue.terms("b") is None


# --- waiting and taking -----------------------------------------------------------------------------


def test_wait_done_true_when_all_done(queue: JobQueue) -> None:
    queue.submit([job("a"), job("b")])
    queue.complete("a", result("a"), tensors())
    queue.reject("b")
    assert queue.wait_done(["a", "b"], timeout=5) is True


def test_wait_done_of_no_job_or_unknown_jobs_is_true(queue: JobQueue) -> None:
    assert queue.wait_done([], timeout=0) is True
    assert queue.wait_done(["never-submitted"], timeout=0) is True


def test_wait_done_false_on_timeout(queue: JobQueue) -> None:
    queue.submit([job("a"), job("b")])
    queue.complete("a", result("a"), tensors())
    assert queue.wait_done(["a", "b"], timeout=0.05) is False
    assert queue.wait_done(["a"], timeout=0.05) is True


def test_wait_done_wakes_when_another_thread_completes(queue: JobQueue) -> None:
    queue.submit([job("a")])
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(queue.wait_done(["a"], timeout=30)))
    waiter.start()
    queue.complete("a", result("a"), tensors())
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert outcome == [True]


def test_each_waiter_wakes_when_the_last_of_its_own_jobs_completes(queue: JobQueue) -> None:
    queue.submit([job("a"), job("b"), job("c")])
    outcomes: dict[str, bool] = {}
    waiters = [
        threading.Thread(target=lambda: outcomes.update(ab=queue.wait_done(["a", "b"], timeout=30))),
        threading.Thread(target=lambda: outcomes.update(c=queue.wait_done(["c"], timeout=30))),
    ]
    for waiter in waiters:
        waiter.start()
    for name in ("a", "c", "b"):
        queue.complete(name, result(name), tensors())
    for waiter in waiters:
        waiter.join(timeout=30)
    assert outcomes == {"ab": True, "c": True}
    assert queue.wait_done(["a", "b", "c"], timeout=0) is True


def test_close_wakes_waiters_and_wait_done_returns_false(queue: JobQueue) -> None:
    queue.submit([job("a")])
    outcome: list[bool] = []
    started = threading.Event()

    def wait() -> None:
        started.set()
        outcome.append(queue.wait_done(["a"], timeout=60))

    waiter = threading.Thread(target=wait)
    waiter.start()
    started.wait(timeout=30)
    assert not queue.closed
    queue.close()
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert outcome == [False]
    assert queue.closed
    assert queue.wait_done(["a"], timeout=5) is False


def test_take_results_returns_only_jobs_with_results_and_removes_them(queue: JobQueue) -> None:
    queue.submit([job("a"), job("b"), job("c"), job("d")])
    queue.lease("w1")  # a
    queue.lease("w2")  # b
    queue.complete("a", result("a", loss=0.25), tensors(3.0))
    queue.reject("b")
    taken = queue.take_results(["a", "b", "c"])
    assert list(taken) == ["a"]
    kept, kept_tensors = taken["a"]
    assert kept.loss == 0.25
    assert torch.equal(kept_tensors["w"], torch.full((2,), 3.0))
    # a, b, c are gone; d is still queued and c is no longer handed out.
    assert counts(queue) == (1, 0, 0, 0)
    assert queue.lease("w3").id == "d"
    assert queue.lease("w3") is None
    assert queue.take_results(["a"]) == {}


def test_on_submit_called_by_submit_and_close(clock: FakeClock) -> None:
    calls: list[int] = []
    queue = JobQueue(lease_seconds=LEASE, clock=clock, on_submit=lambda: calls.append(1))
    queue.submit([job("a")])
    assert len(calls) == 1
    queue.close()
    assert len(calls) == 2


def test_heartbeat_extends_only_the_holders_lease() -> None:
    clock = FakeClock()
    queue = JobQueue(lease_seconds=10, clock=clock)
    queue.submit([job("a")])
    queue.lease("w1")
    clock.now += 8
    assert queue.extend("a", "w2") is LeaseChange.NOT_HOLDER
    assert queue.extend("a", "w1") is LeaseChange.DONE
    clock.now += 8  # 16 s after the lease, 8 s after the heartbeat: still held
    assert queue.lease("w2") is None
    clock.now += 3
    assert queue.lease("w2").id == "a"
    assert queue.extend("nope", "w1") is LeaseChange.UNKNOWN


def test_jobs_of_one_batch_expire_together_except_one_kept_by_a_heartbeat() -> None:
    clock = FakeClock()
    queue = JobQueue(lease_seconds=10, clock=clock)
    queue.submit([job("a"), job("b"), job("c"), job("d")])
    assert [j.id for j in queue.lease_many("w1", 3)] == ["a", "b", "c"]
    clock.now += 8
    assert queue.extend("b", "w1") is LeaseChange.DONE
    clock.now += 3  # 11 s after the batch, 3 s after b's heartbeat
    assert [j.id for j in queue.lease_many("w2", 10)] == ["a", "c", "d"]  # re-issued first, in their order
    assert queue.counts().reissued == 2
    assert queue.complete("b", result("b"), {}, "w1") is Completion.ACCEPTED
    assert queue.complete("a", result("a"), {}, "w1") is Completion.ACCEPTED  # its first holder may still answer
    assert queue.complete("a", result("a", "w2"), {}, "w2") is Completion.DUPLICATE


def test_a_leaving_worker_gives_back_every_job_it_holds_first_in_line() -> None:
    queue = JobQueue(lease_seconds=10, clock=FakeClock())
    queue.submit([job("a"), job("b"), job("c")])
    queue.lease("w1")
    queue.lease("w1")
    queue.lease("w2")
    assert queue.release_worker("w3") == []
    assert queue.release_worker("w1") == ["a", "b"]
    assert [queue.lease("w2").id, queue.lease("w2").id] == ["a", "b"]
    assert queue.counts().reissued == 2


# --- blocks: a phase's jobs queued, waited for and taken together -----------------------------------------


def block_of(count: int, round_: int = 0, examples: list[int] | None = None) -> JobBlock:
    """`count` fit jobs of one round (devices 0..count-1), as the loop builds them."""
    selected = np.arange(count)
    sizes = np.array(examples if examples is not None else [10] * count)
    work = LocalWork(selected, np.ones(count, dtype=np.int64), np.full(count, 32), sizes)
    template = job_template("0" * 32, 0, round_, Phase.FIT, round_, LEASE)
    return device_jobs(template, selected, np.zeros(count, dtype=bool), work, selected * 7)


def test_lease_json_hands_out_what_lease_many_would_as_a_job_batch(clock: FakeClock) -> None:
    as_jobs, as_json = JobQueue(LEASE, clock=clock), JobQueue(LEASE, clock=clock)
    blocks = [block_of(7, examples=[3, 9, 4, 4, 30, 1, 2]), block_of(3, round_=1)]
    for queue in (as_jobs, as_json):
        for block in blocks:
            queue.submit(block)
    # Whole runs, budgets that cut a run, jobs put back after an expiry, a run that ends inside a lease.
    for worker, limit, work, expire in [("w1", 2, None, False), ("w2", 10, 15, True), ("w1", 4, 10, False),
                                        ("w2", 10, None, False)]:  # fmt: skip
        jobs = as_jobs.lease_many(worker, limit, work)
        count, body = as_json.lease_json(worker, limit, work)
        assert count == len(jobs) > 0
        assert body == JobBatch.model_construct(jobs=jobs).model_dump_json()
        if expire:
            clock.advance(LEASE + 1)
    assert as_jobs.lease_json("w1", 5) is None and as_json.lease_json("w1", 5) is None
    assert as_jobs.counts() == as_json.counts()


def test_a_block_is_waited_for_and_taken_as_a_whole(queue: JobQueue) -> None:
    block = block_of(600)
    queue.submit(block)
    assert counts(queue) == (600, 0, 0, 0)
    assert queue.wait_blocks([block], timeout=0.01) is False
    leased = [job for _ in range(3) for job in queue.lease_many("w1", 256)]
    assert [job.device for job in leased] == list(range(600))
    answers = [(job.id, result(job.id), tensors(job.device)) for job in leased if job.device != 5]
    assert set(queue.complete_many(answers, "w1")) == {Completion.ACCEPTED}
    assert queue.wait_blocks([block], timeout=0.01) is False  # device 5 still out
    assert queue.reject(block.ids[5])
    assert queue.wait_blocks([block], timeout=5) is True
    assert counts(queue) == (0, 0, 600, 0)

    results, rejected = queue.take_blocks([block])
    assert list(results) == [job_id for job_id in block.ids if job_id != block.ids[5]]
    assert torch.equal(results[block.ids[9]][1]["w"], torch.full((2,), 9.0))
    assert rejected == {block.ids[5]: ""}
    assert counts(queue) == (0, 0, 0, 0) and queue.holders() == frozenset()
    assert queue.complete(block.ids[0], result(block.ids[0]), {}, "w1") is Completion.DUPLICATE
    assert queue.wait_blocks([block], timeout=0.01) is True  # taken: nothing left to wait for
    assert queue.take_blocks([block]) == ({}, {})


def test_wait_blocks_wakes_when_another_thread_finishes_the_last_job(queue: JobQueue) -> None:
    block = block_of(3)
    queue.submit(block)
    for job in queue.lease_many("w1", 3)[:2]:
        queue.complete(job.id, result(job.id), {}, "w1")
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(queue.wait_blocks([block], timeout=30)))
    waiter.start()
    queue.complete(block.ids[2], result(block.ids[2]), {}, "w1")
    waiter.join(timeout=30)
    assert outcome == [True]


def test_a_job_finished_before_any_lease_leaves_the_waiting_line(queue: JobQueue) -> None:
    block = block_of(4, examples=[5, 6, 7, 8])
    queue.submit(block)
    assert queue.complete(block.ids[1], result(block.ids[1]), {}) is Completion.ACCEPTED  # any worker: none named
    assert queue.reject(block.ids[2])
    assert (queue.waiting, queue.waiting_work) == (2, 3 * (5 + 8))  # fit jobs: 3 inference passes an example
    assert [job.device for job in queue.lease_many("w1", 4)] == [0, 3]


def test_jobs_put_back_go_before_the_rest_of_their_block_in_their_order(queue: JobQueue, clock: FakeClock) -> None:
    block = block_of(6)
    queue.submit(block)
    first = queue.lease_many("w1", 3)
    clock.advance(LEASE / 2)
    queue.extend(first[1].id, "w1")
    clock.advance(LEASE / 2 + 1)
    # Devices 0 and 2 expired (1 was kept by its heartbeat): they go first, then the block goes on from 3.
    assert [job.device for job in queue.lease_many("w2", 3)] == [0, 2, 3]
    assert queue.counts().reissued == 2
    assert queue.complete(first[0].id, result(first[0].id), {}, "w1") is Completion.ACCEPTED  # first holder: counts
    assert queue.held_by(first[2].id, "w2") is None and queue.held_by(block.ids[4], "w1") is Completion.NOT_HOLDER


def test_jobs_taken_one_by_one_leave_the_rest_of_their_block_to_take_blocks(queue: JobQueue) -> None:
    block = block_of(4)
    queue.submit(block)
    for job in queue.lease_many("w1", 4):
        queue.complete(job.id, result(job.id), {}, "w1")
    assert list(queue.take_results(block.ids[:1])) == [block.ids[0]]
    assert list(queue.take_blocks([block])[0]) == block.ids[1:]
    assert counts(queue) == (0, 0, 0, 0)


def test_a_block_cannot_be_queued_twice(queue: JobQueue) -> None:
    block = block_of(2)
    queue.submit(block)
    with pytest.raises(ValueError, match="queued already"):
        queue.submit(block)


def test_a_taken_block_lets_go_of_its_answers_though_its_leases_have_not_ended(queue: JobQueue) -> None:
    block = block_of(3)
    queue.submit(block)
    update = torch.zeros(4)
    answer = weakref.ref(update)
    for job in queue.lease_many("w1", 3):
        queue.complete(job.id, result(job.id), {"w": update}, "w1")
    queue.take_blocks([block])
    del update
    gc.collect()
    assert answer() is None  # the deadlines of its leases, still ahead, do not keep the round's updates alive
