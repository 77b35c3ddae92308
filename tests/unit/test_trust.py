"""Trust boundaries inside the orchestrator (issue 12.3, 12.5): who may answer a job, with what."""

from __future__ import annotations

import time

import pytest
import torch

from feles.orchestrator.jobs import Completion, JobQueue, Refusal
from feles.orchestrator.workers import WorkerRegistry
from feles.protocol import (
    MAX_UPDATE_DISTANCE_RATIO,
    CodecError,
    ExampleRange,
    Job,
    JobResult,
    check_examples,
    check_update,
)
from tests.unit.test_jobs import LEASE, FakeClock, job, result, tensors


def _test_job(job_id: str = "t") -> Job:
    return Job(
        id=job_id,
        run_id="run",
        repetition=0,
        round=0,
        phase="test",
        test_examples=ExampleRange(start=0, stop=100),
        model_version=0,
        epochs=1,
        batch_size=100,
        num_examples=100,
        seed=0,
        lease_seconds=LEASE,
    )


# --- 12.3: a malformed test-shard answer re-issues the shard, to another worker first --------------------------


def test_a_malformed_test_answer_sends_the_shard_to_another_worker_and_fails_only_after_three() -> None:
    clock = FakeClock()
    queue = JobQueue(LEASE, clock=clock)
    queue.submit([_test_job()])
    assert queue.lease("a").id == "t"
    assert queue.refuse("t", "a", "num_examples is 99", limit=3) is Refusal.REQUEUED
    assert queue.lease("a") is None  # not back to the worker that answered badly ...
    assert queue.lease("b").id == "t"  # ... but to another one
    assert queue.refuse("t", "b", "num_examples is 98", limit=3) is Refusal.REQUEUED
    clock.advance(LEASE + 1)  # no third worker came within a lease: a known worker may try again
    assert queue.lease("a").id == "t"
    assert queue.refuse("t", "a", "num_examples is 97", limit=3) is Refusal.REJECTED
    results, rejected = queue.take(["t"])
    assert results == {}
    assert "num_examples is 97" in rejected["t"] and "3 of at most 3" in rejected["t"]


def test_a_good_answer_after_a_bad_one_completes_the_shard() -> None:
    queue = JobQueue(LEASE, clock=FakeClock())
    queue.submit([_test_job()])
    queue.lease("a")
    queue.refuse("t", "a", "bad", limit=3)
    queue.lease("b")
    good = JobResult(job_id="t", worker_id="b", loss=0.1, metric=0.5, num_examples=100, num_steps=0, train_seconds=0)
    assert queue.complete("t", good, {}, "b") is Completion.ACCEPTED
    assert "t" in queue.take(["t"])[0]


# --- 12.5: only a worker the job was leased to may answer it; each worker has its own secret --------------------


def test_a_result_for_a_job_never_leased_to_the_worker_is_refused() -> None:
    queue = JobQueue(LEASE, clock=FakeClock())
    queue.submit([job("a"), job("b")])
    queue.lease("w1")  # job a
    assert queue.held_by("a", "w2") is Completion.NOT_HOLDER
    assert queue.complete("a", result("a", "w2"), tensors(), "w2") is Completion.NOT_HOLDER
    assert queue.held_by("b", "w1") is Completion.NOT_HOLDER  # never leased at all
    assert queue.complete("b", result("b", "w1"), tensors(), "w1") is Completion.NOT_HOLDER
    assert queue.held_by("a", "w1") is None
    assert queue.complete("a", result("a", "w1"), tensors(), "w1") is Completion.ACCEPTED
    assert queue.held_by("a", "w1") is Completion.DUPLICATE


def test_a_late_result_of_an_earlier_lease_holder_still_counts() -> None:
    clock = FakeClock()
    queue = JobQueue(LEASE, clock=clock)
    queue.submit([job("a")])
    queue.lease("slow")
    clock.advance(LEASE + 1)
    assert queue.lease("fast").id == "a"  # re-issued
    assert queue.complete("a", result("a", "slow"), tensors(), "slow") is Completion.ACCEPTED
    assert queue.complete("a", result("a", "fast"), tensors(), "fast") is Completion.DUPLICATE


def test_every_registration_gets_its_own_secret() -> None:
    registry = WorkerRegistry()
    first, first_secret = registry.register("w")
    second, second_secret = registry.register("w")
    assert first != second and first_secret != second_secret and len(first_secret) >= 32
    assert registry.authenticate(first, first_secret)
    assert not registry.authenticate(first, second_secret)
    assert not registry.authenticate(first, None)
    assert not registry.authenticate("ghost", first_secret)


def test_registrations_that_stop_heart_beating_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = WorkerRegistry(timeout=90, expiry=600)
    now = [time.time()]
    monkeypatch.setattr("feles.orchestrator.workers.time.time", lambda: now[0])
    stale = [registry.register(f"w{i}")[0] for i in range(3000)]
    now[0] += 300
    alive, _ = registry.register("alive")
    now[0] += 400  # the 3,000 are 700 s silent, "alive" 400 s
    assert registry.live() == 0 and len(registry) == 1
    assert alive in registry and not any(worker in registry for worker in stale[:10])
    assert not registry.touch(stale[0])  # it must register again


def test_a_fit_or_eval_result_must_use_the_examples_of_its_job() -> None:
    with pytest.raises(CodecError, match="num_examples is 9, the job asked for 10"):
        check_examples(job("a"), result("a").model_copy(update={"num_examples": 9}))
    check_examples(job("a"), result("a"))


@pytest.mark.parametrize("value", [1e30, -3e38, 1e9])
def test_absurd_finite_updates_are_malformed(value: float) -> None:
    reference = {"w": torch.ones(10), "steps": torch.zeros((), dtype=torch.int64)}
    absurd = {"w": torch.full((10,), value), "steps": torch.zeros((), dtype=torch.int64)}
    with pytest.raises(CodecError, match="away from the global model"):
        check_update(absurd, reference)


def test_a_large_but_plausible_update_is_accepted() -> None:
    reference = {"w": torch.ones(100)}
    moved = {"w": torch.ones(100) * (MAX_UPDATE_DISTANCE_RATIO / 100)}  # ||w - g|| ~ 10x ||g||... well within
    check_update(moved, reference)


# --- 12.1: a model version never names two models of one run ----------------------------------------------------


def test_the_worker_cache_never_serves_another_repetitions_model() -> None:
    from feles.config import SimulationSpec
    from feles.worker.state import WorkerState

    status = WorkerState("w", "run", SimulationSpec(), "mlp", None, client=None, local_data={})  # type: ignore[arg-type]
    status.cache_model(0, 1, {"w": torch.zeros(1)})
    assert status.cached_model(1, 1) is None
    assert status.cached_model(0, 1) is not None


def test_a_model_store_resumed_at_a_repetition_boundary_keeps_counting() -> None:
    from feles.orchestrator.model_store import ModelStore

    store = ModelStore()
    store.continue_after(7)
    assert store.publish({"w": torch.zeros(1)}) == 8


# --- admission: a body cut short by a client that died is never handed to a handler ------------------------------


def test_a_body_cut_short_by_a_disconnect_never_reaches_the_handler() -> None:
    import asyncio

    from feles.orchestrator.limits import Admission

    called: list[bytes] = []

    async def app(scope, receive, send) -> None:  # the handler would decode half a result as malformed
        called.append((await receive())["body"])

    messages = iter([{"type": "http.request", "body": b"\0" * 100, "more_body": True}, {"type": "http.disconnect"}])

    async def receive():
        return next(messages)

    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    middleware = Admission(app, limit_for=lambda scope: 1000)
    asyncio.run(middleware({"type": "http", "headers": [], "path": "/v1/jobs/x/result"}, receive, send))
    assert called == [] and sent == []
