"""Batched leases and results: the orchestrator's batch rule, the queue's lease_many, the parts codec, and the
per-job answers of POST /v1/results (the real app, in process)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

from feles.config import SimulationSpec
from feles.orchestrator.api import create_app
from feles.orchestrator.batching import (
    BATCH_RESULT_BYTES,
    BATCH_WORK,
    MAX_BATCH_JOBS,
    METADATA_RESULT_BYTES,
    TRAINING_PASS_COST,
    ResultRoom,
    WorkLeft,
    batch_body_limit,
    joins_share,
    lease_limits,
    result_part_limit,
)
from feles.orchestrator.job_block import blocks_of
from feles.orchestrator.jobs import JobQueue
from feles.orchestrator.metrics import OrchestratorMetrics
from feles.orchestrator.server import build_state
from feles.orchestrator.state import OrchestratorState
from feles.protocol import (
    TENSOR_MEDIA_TYPE,
    WORKER_SECRET_HEADER,
    CodecError,
    Job,
    JobResult,
    Phase,
    decode_parts,
    encode_parts,
    encode_result,
)

LEASE = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def job(job_id: str, examples: int = 10, epochs: int = 1, device: int = 0, phase: str = "fit") -> Job:
    return Job(
        id=job_id,
        run_id="run",
        repetition=0,
        round=0,
        phase=phase,
        device=device,
        model_version=0,
        epochs=epochs,
        batch_size=32,
        num_examples=examples,
        seed=0,
        lease_seconds=LEASE,
    )


# The batch rule.


def fit_jobs_in_one_lease(model_bytes: int) -> int:
    """How many of 300 waiting fit jobs one lease of 256 gets for a model of `model_bytes` encoded bytes."""
    queue = JobQueue(lease_seconds=LEASE)
    queue.submit([job(f"f{i}", device=i) for i in range(300)])
    return len(queue.lease_many("w", MAX_BATCH_JOBS, None, ResultRoom.for_model(model_bytes)))


def test_tiny_models_fit_jobs_batch_up_to_their_results_room_and_big_ones_do_not() -> None:
    assert fit_jobs_in_one_lease(0) == MAX_BATCH_JOBS == 256
    assert fit_jobs_in_one_lease(2_600) == 228  # logreg on digits: 228 results of 3 x 2.6 kB + 64 KiB in 16 MiB
    assert fit_jobs_in_one_lease(407_080) == 13  # mlp_small: 13 results of 3 x 407 kB + 64 KiB in 16 MiB
    assert fit_jobs_in_one_lease(6_000_000) == 1  # the quickstart's CNN: the first job always goes
    assert fit_jobs_in_one_lease(10**9) == 1


def test_the_batch_body_limit_holds_a_full_batch_of_largest_results() -> None:
    for size in (0, 2_600, 407_080, 6_000_000):
        parts = [b"\0" * result_part_limit(size)] * fit_jobs_in_one_lease(size)
        assert len(encode_parts(parts)) <= batch_body_limit(size)
    # A big model's batch body limit is at least the single result route's (3 x model + 1 MiB).
    assert batch_body_limit(6_000_000) >= 3 * 6_000_000 + 1024 * 1024


def test_a_lease_takes_what_the_worker_asks_up_to_the_most_jobs_and_a_fair_share_of_the_work() -> None:
    # (most jobs, share of the work): the jobs asked for, up to 256; the work left over the live workers.
    def limits(requested: int, waiting: int, held: dict[str, int], live: int) -> tuple[int, int]:
        return lease_limits(requested, "w1", WorkLeft(waiting, held, live))

    assert limits(8, waiting=10_000, held={}, live=2) == (8, 5_000)
    assert limits(500, waiting=10_000, held={}, live=2) == (MAX_BATCH_JOBS, 5_000)
    # Ten jobs of 600 passes: the first idle worker takes half, the second (the first one now busy) the rest.
    assert limits(64, waiting=6_000, held={}, live=2) == (64, 3_000)
    assert limits(64, waiting=3_000, held={"w2": 3_000}, live=2) == (64, 3_000)
    # Asking while the other is busy with much: only its part of what is left (of 9,000 + 11,400, 10,200).
    assert limits(64, waiting=9_000, held={"w2": 11_400}, live=2) == (64, 10_200)
    # What the asking worker still holds counts as its own share.
    assert limits(64, waiting=6_000, held={"w1": 1_000, "w2": 1_000}, live=2) == (64, 3_000)
    assert limits(64, waiting=10**6, held={}, live=2) == (64, BATCH_WORK)
    # At most 8,192 training passes' work at the training pass cost learnt (a bound fixed at 3 x 8,192 cut the first
    # of two workers' share short once the cost was learnt higher, and a job was left over for a batch of its own).
    left = WorkLeft(waiting=10**6, held={}, live_workers=2)
    assert lease_limits(64, "w1", left, training_pass_cost=5.5) == (64, 45_056)
    assert limits(64, waiting=0, held={}, live=0) == (64, 1)  # one job goes
    assert limits(64, waiting=100, held={"w1": 5_000}, live=2) == (64, 1)


def test_a_job_joins_a_batch_when_half_of_it_fits_in_the_share() -> None:
    assert joins_share(taken=0, work=100, share=100)
    assert joins_share(taken=950, work=100, share=1_000)  # 50 of 100 fit: the batch ends 50 over, not 50 under
    assert not joins_share(taken=951, work=100, share=1_000)
    assert not joins_share(taken=1_000, work=1, share=1_000)


def test_results_of_fit_jobs_count_as_model_sized_and_the_others_as_their_metadata() -> None:
    room = ResultRoom.for_model(407_080)  # mlp_small
    assert room.total == BATCH_RESULT_BYTES
    assert room.part(Phase.FIT) == result_part_limit(407_080)
    assert room.part(Phase.EVAL) == room.part(Phase.TEST) == METADATA_RESULT_BYTES
    # A full batch of results without tensors fits in the body limit of any model, the tiniest included.
    parts = [b"\0" * METADATA_RESULT_BYTES] * MAX_BATCH_JOBS
    assert len(encode_parts(parts)) <= batch_body_limit(0)


# The queue: several leases in one call, each its own.


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> JobQueue:
    return JobQueue(lease_seconds=LEASE, clock=clock)


def test_lease_many_hands_out_jobs_in_queue_order_each_with_its_own_lease(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job(f"j{i}", device=i) for i in range(5)])
    first = queue.lease_many("w1", 3)
    assert [j.id for j in first] == ["j0", "j1", "j2"]
    assert [j.id for j in queue.lease_many("w2", 3)] == ["j3", "j4"]
    clock.now += LEASE / 2
    for held in ["j0", "j1", "j3", "j4"]:
        assert queue.extend(held, "w2" if held > "j2" else "w1").value == "done"
    clock.now += LEASE / 2 + 0.1
    # j2's lease lapsed (no heartbeat), the others were extended: only j2 is re-issued.
    assert [j.id for j in queue.lease_many("w3", 10)] == ["j2"]
    assert queue.counts().reissued == 1


def test_lease_many_stops_at_the_work_budget_but_always_hands_out_one(queue: JobQueue) -> None:
    budget = 4_096 * TRAINING_PASS_COST  # 4,096 training example passes
    jobs = [job("big", examples=8_192), job("a", examples=1000), job("b", examples=1000, epochs=3)]
    queue.submit([*jobs, job("c", examples=1000)])
    assert [j.id for j in queue.lease_many("w", 64, budget)] == ["big"]
    assert [j.id for j in queue.lease_many("w", 64, budget)] == ["a", "b"]  # 1,000 + 3 x 1,000 passes
    assert [j.id for j in queue.lease_many("w", 64, budget)] == ["c"]


def test_the_job_more_than_half_of_which_fits_ends_the_batch_re_issued_jobs_too(
    queue: JobQueue, clock: FakeClock
) -> None:
    cost = TRAINING_PASS_COST
    queue.submit([job("a", examples=700), job("b", examples=500), job("c", examples=400), job("d", examples=10)])
    # a fits in 1,000 examples' passes; 300 of b's 500 fit, more than half: b joins, the batch ends 200 over its share
    # rather than 300 under it (b left over would go as a batch of its own).
    assert [j.id for j in queue.lease_many("w1", 64, 1_000 * cost)] == ["a", "b"]
    assert [j.id for j in queue.lease_many("w2", 64, 1_000 * cost)] == ["c", "d"]
    clock.now += LEASE + 1  # every lease lapses: the jobs wait again one by one, as re-issued jobs do
    queue.reclaim_expired()
    assert [j.id for j in queue.lease_many("w3", 64, 1_000 * cost)] == ["a", "b"]
    assert [j.id for j in queue.lease_many("w3", 64, 100 * cost)] == ["c"]  # 100 of 400: less than half
    assert [j.id for j in queue.lease_many("w3", 64, 100 * cost)] == ["d"]


def test_results_without_tensors_batch_though_a_big_models_fit_jobs_do_not(queue: JobQueue) -> None:
    room = ResultRoom.for_model(6_000_000)  # the quickstart's CNN: one fit result fills a batch results body
    queue.submit([job(f"e{i}", device=i, phase="eval") for i in range(5)])
    queue.submit([job(f"f{i}", device=i) for i in range(2)])
    assert [j.id for j in queue.lease_many("w", 64, None, room)] == [f"e{i}" for i in range(5)]
    assert [j.id for j in queue.lease_many("w", 64, None, room)] == ["f0"]  # the first job always goes
    assert [j.id for j in queue.lease_many("w", 64, None, room)] == ["f1"]


def test_a_rounds_evaluation_and_fit_of_mlp_small_go_in_one_batch_within_its_results_room(queue: JobQueue) -> None:
    # Counted as fit results, 13 results of mlp_small filled a batch; ten eval jobs and twelve fit jobs take
    # 10 x 64 KiB + 12 x 1.29 MB of the 16 MiB, a thirteenth fit job would not fit.
    room = ResultRoom.for_model(407_080)
    queue.submit_blocks([*blocks_of([job(f"e{i}", device=i, phase="eval") for i in range(10)]),
                         *blocks_of([job(f"f{i}", device=i) for i in range(13)])])  # fmt: skip
    assert [j.id for j in queue.lease_many("w", 64, None, room)] == [
        *[f"e{i}" for i in range(10)],
        *[f"f{i}" for i in range(12)],
    ]
    assert 10 * METADATA_RESULT_BYTES + 13 * room.part(Phase.FIT) > BATCH_RESULT_BYTES
    assert [j.id for j in queue.lease_many("w", 64, None, room)] == ["f12"]


def test_the_queue_learns_what_a_training_pass_costs_from_the_batches_answered(
    queue: JobQueue, clock: FakeClock
) -> None:
    def answer(jobs: list[Job], worker: str) -> None:
        results = [JobResult(job_id=j.id, worker_id=worker, loss=0.5, num_examples=j.num_examples, num_steps=1,
                             train_seconds=0) for j in jobs]  # fmt: skip
        completions = queue.complete_many([(r.job_id, r, {}) for r in results], worker)
        assert {c.value for c in completions} == {"accepted"}

    assert queue.pass_cost.value == TRAINING_PASS_COST
    # Each round one worker answers four eval jobs and a fit job, the other four fit jobs, of 100 examples each;
    # the workers take 10 us an inference pass and 50 us a training pass.
    for r in range(8):
        queue.submit([job(f"e{r}.{i}", examples=100, device=i, phase="eval") for i in range(4)])
        queue.submit([job(f"f{r}.{i}", examples=100, device=i) for i in range(5)])
        first, second = queue.lease_many("w1", 5), queue.lease_many("w2", 4)
        clock.now += (400 + 5 * 100) * 1e-5
        answer(first, "w1")
        clock.now += (5 * 400) * 1e-5 - (400 + 5 * 100) * 1e-5
        answer(second, "w2")
    assert queue.pass_cost.value == pytest.approx(5.0)
    # Jobs queued from now on weigh a training pass at 5 inference passes: the batch rule shares time, not passes.
    queue.submit([job("next", examples=100)])
    assert queue.waiting_work == 500


def test_the_queue_keeps_the_waiting_work_and_who_holds_jobs(queue: JobQueue, clock: FakeClock) -> None:
    queue.submit([job("a", examples=100), job("b", examples=200, epochs=2), job("c", examples=50)])
    cost = TRAINING_PASS_COST  # fit jobs: work in inference passes
    assert queue.waiting_work == 550 * cost and queue.holders() == frozenset()
    assert [j.id for j in queue.lease_many("w1", 1)] == ["a"]
    assert [j.id for j in queue.lease_many("w2", 1)] == ["b"]
    assert queue.waiting_work == 50 * cost and queue.holders() == {"w1", "w2"}
    assert queue.held_work() == {"w1": 100 * cost, "w2": 400 * cost}
    assert queue.complete("a", JobResult(job_id="a", worker_id="w1", loss=0, num_examples=100,
                                         num_steps=1, train_seconds=0), {}, "w1").value == "accepted"  # fmt: skip
    assert queue.holders() == {"w2"} and queue.held_work() == {"w2": 400 * cost}
    clock.now += LEASE + 1  # b's lease lapses: back in the queue, first in line, its work waiting again
    queue.reclaim_expired()
    assert queue.waiting == 2 and queue.waiting_work == 450 * cost and queue.holders() == frozenset()
    assert [j.id for j in queue.lease_many("w3", 5)] == ["b", "c"]
    assert queue.held_work() == {"w3": 450 * cost}
    assert queue.release_worker("w3") == ["b", "c"]
    assert queue.waiting_work == 450 * cost and queue.holders() == frozenset() and queue.held_work() == {}
    assert [j.id for j in queue.lease_many("w1", 5)] == ["b", "c"]
    queue.take(["c"])  # taken away while held: no longer the worker's work
    assert queue.held_work() == {"w1": 400 * cost}
    queue.take(["a", "b", "c"])
    assert queue.waiting == 0 and queue.waiting_work == 0


def test_a_worker_that_leaves_gives_back_its_whole_batch_first_in_line(queue: JobQueue) -> None:
    queue.submit([job(f"j{i}", device=i) for i in range(6)])
    held = [j.id for j in queue.lease_many("w1", 4)]
    assert queue.release_worker("w1") == held
    assert [j.id for j in queue.lease_many("w2", 10)] == [*held, "j4", "j5"]


# The parts codec.


def test_parts_round_trip_and_broken_framing_is_refused() -> None:
    parts = [b"first", b"second part", b"x"]
    body = encode_parts(parts)
    assert decode_parts(body) == parts
    for broken in (b"", body[:-1], body + b"\1", (0).to_bytes(8, "little")):
        with pytest.raises(CodecError):
            decode_parts(broken)


# POST /v1/results on the real app: one answer per part.


def _spec(tmp_path) -> SimulationSpec:
    return SimulationSpec.model_validate(
        {"simulation": {"dataset": "digits", "model": "logreg", "output_folder": str(tmp_path)}}
    )


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[TestClient, OrchestratorState]]:
    metrics = OrchestratorMetrics()
    state = build_state(_spec(tmp_path), LEASE, metrics)
    state.models.publish({"w": torch.zeros(3, 2), "b": torch.zeros(2)})
    state.queue.submit([job(f"run.0.0.fit.{i}", device=i) for i in range(6)])
    with TestClient(create_app(state, None, metrics=metrics)) as client:
        yield client, state


def _register(client: TestClient) -> tuple[str, dict[str, str]]:
    reply = client.post("/v1/workers", json={"name": "w"}).json()
    return reply["worker_id"], {WORKER_SECRET_HEADER: reply["worker_secret"]}


def _part(job_id: str, worker: str, examples: int = 10, value: float = 0.1) -> bytes:
    result = JobResult(job_id=job_id, worker_id=worker, loss=0.5, num_examples=examples, num_steps=1, train_seconds=0)
    return encode_result(result, {"w": torch.full((3, 2), value), "b": torch.zeros(2)})


def _lease(client: TestClient, worker: str, auth: dict[str, str], most: int = 64) -> list[str]:
    leased = client.get("/v1/jobs/batch", params={"worker": worker, "wait": 0, "max": most}, headers=auth)
    assert leased.status_code == 200, leased.text
    return [j["id"] for j in leased.json()["jobs"]]


def test_two_idle_workers_split_equal_jobs_in_halves(served: tuple[TestClient, OrchestratorState]) -> None:
    client, _ = served  # 6 equal jobs waiting
    first, second = _register(client), _register(client)
    # The second asks while the first holds its batch: it is the only idle worker and takes the other half
    # (a fair share of the jobs waiting over every live worker gave it 2 of the 3, and the third ran alone).
    assert _lease(client, *first) == ["run.0.0.fit.0", "run.0.0.fit.1", "run.0.0.fit.2"]
    assert _lease(client, *second) == ["run.0.0.fit.3", "run.0.0.fit.4", "run.0.0.fit.5"]


def test_jobs_of_different_sizes_are_shared_by_their_work(served: tuple[TestClient, OrchestratorState]) -> None:
    client, state = served
    state.queue.take([f"run.0.0.fit.{i}" for i in range(6)])
    # Test shards of 1,000 examples queued with small device evaluations, as a round's last phase queues them.
    state.queue.submit([job(f"run.0.0.test.{i}", examples=1000) for i in range(4)])
    state.queue.submit([job(f"run.0.0.eval.{i}", examples=100, device=i) for i in range(8)])
    first, second = _register(client), _register(client)
    # 4,800 examples waiting, 2 idle workers: 2,400 for the first (a third shard would pass it) ...
    assert _lease(client, *first) == ["run.0.0.test.0", "run.0.0.test.1"]
    # ... and 2,400 of the 2,800 left for the second: two shards and four evaluations, not two shards alone; the
    # four left go to whichever worker is done first.
    assert _lease(client, *second) == ["run.0.0.test.2", "run.0.0.test.3", *[f"run.0.0.eval.{i}" for i in range(4)]]
    assert state.queue.waiting == 4


def test_a_rounds_evaluation_and_the_next_rounds_fit_split_by_their_cost(
    served: tuple[TestClient, OrchestratorState],
) -> None:
    client, state = served
    state.queue.take([f"run.0.0.fit.{i}" for i in range(6)])
    # As the loop queues them: ten eval jobs of 600 examples (one inference pass each), then the next round's ten
    # fit jobs of 600 (one epoch, a training pass costing three): 6,000 + 18,000 = 24,000 passes waiting.
    state.queue.submit([job(f"run.0.0.eval.{i}", examples=600, device=i, phase="eval") for i in range(10)])
    state.queue.submit([job(f"run.0.1.fit.{i}", examples=600, device=i) for i in range(10)])
    first, second = _register(client), _register(client)
    # 12,000 each: the first takes every evaluation and three fit jobs (counted as equal passes, it took the ten
    # evaluations alone and the second all ten fit jobs, three times the work) ...
    evaluations = [f"run.0.0.eval.{i}" for i in range(10)]
    assert _lease(client, *first) == [*evaluations, *[f"run.0.1.fit.{i}" for i in range(3)]]
    # ... and the second the seven left: six make 10,800 of the 12,000 that are its part, and the seventh, more
    # than half of which fits, joins them rather than wait for a worker to be done (a lease and a post more).
    assert _lease(client, *second) == [f"run.0.1.fit.{i}" for i in range(3, 10)]
    assert state.queue.waiting == 0


def test_a_batch_post_answers_each_job_on_its_own(served: tuple[TestClient, OrchestratorState]) -> None:
    client, state = served
    worker, auth = _register(client)
    other, other_auth = _register(client)
    leased = client.get("/v1/jobs/batch", params={"worker": worker, "wait": 0, "max": 4}, headers=auth)
    assert leased.status_code == 200
    ids = [j["id"] for j in leased.json()["jobs"]]
    # 6 jobs waiting, 2 workers registered: a fair share of 3, fewer than the 4 asked for.
    assert ids == ["run.0.0.fit.0", "run.0.0.fit.1", "run.0.0.fit.2"]
    not_mine = client.get("/v1/jobs/next", params={"worker": other, "wait": 0}, headers=other_auth).json()["id"]
    body = encode_parts(
        [
            _part(ids[0], worker),
            _part(ids[1], worker, examples=11),  # not the job's num_examples
            _part(ids[2], worker, value=math.inf),
            _part(not_mine, worker),  # leased to the other worker
            _part("run.0.0.fit.99", worker),  # unknown job
            b"not safetensors",
            _part(ids[0], worker),  # a second answer to the first job
            _part(ids[0], other),  # names another worker
        ]
    )
    answer = client.post(
        "/v1/jobs/results", params={"worker": worker}, content=body, headers={"Content-Type": TENSOR_MEDIA_TYPE, **auth}
    )
    assert answer.status_code == 200
    outcomes = answer.json()["results"]
    assert [(o["job_id"], o["status"], o["accepted"]) for o in outcomes] == [
        (ids[0], 200, True),
        (ids[1], 422, False),
        (ids[2], 422, False),
        (not_mine, 409, False),
        ("run.0.0.fit.99", 404, False),
        (None, 422, False),
        (ids[0], 409, False),
        (ids[0], 409, False),
    ]
    assert "num_examples is 11" in outcomes[1]["reason"] and "NaN or Inf" in outcomes[2]["reason"]
    assert "never leased to this worker" in outcomes[3]["reason"]
    # The accepted result is stored; the malformed ones failed their devices; the other worker's job is its own.
    results, rejected = state.queue.take(ids)
    assert set(results) == {ids[0]} and set(rejected) == {ids[1], ids[2]}
    assert state.queue.held_by(not_mine, other) is None


def test_a_job_answered_twice_in_one_batch_keeps_its_first_good_result(
    served: tuple[TestClient, OrchestratorState],
) -> None:
    # Good results are stored together after the batch is judged; a job named again must still see its first
    # answer stored before the second is judged, or a malformed second answer would fail a device that trained.
    client, state = served
    worker, auth = _register(client)
    ids = _lease(client, worker, auth, most=2)
    body = encode_parts([_part(ids[0], worker), _part(ids[1], worker), _part(ids[0], worker, value=math.inf)])
    answer = client.post("/v1/jobs/results", params={"worker": worker}, content=body, headers=auth)
    assert [(o["job_id"], o["status"]) for o in answer.json()["results"]] == [
        (ids[0], 200),
        (ids[1], 200),
        (ids[0], 409),
    ]
    results, rejected = state.queue.take(ids)
    assert set(results) == set(ids) and not rejected
    assert torch.equal(results[ids[0]][1]["w"], torch.full((3, 2), 0.1))


def test_a_batch_post_checks_the_worker_secret_once_and_the_framing(
    served: tuple[TestClient, OrchestratorState],
) -> None:
    client, state = served
    worker, auth = _register(client)
    ids = [
        j["id"]
        for j in client.get("/v1/jobs/batch", params={"worker": worker, "wait": 0, "max": 2}, headers=auth).json()[
            "jobs"
        ]
    ]
    body = encode_parts([_part(job_id, worker) for job_id in ids])
    wrong = {WORKER_SECRET_HEADER: "wrong"}
    assert client.post("/v1/jobs/results", params={"worker": worker}, content=body, headers=wrong).status_code == 403
    assert client.get("/v1/jobs/batch", params={"worker": worker, "wait": 0}, headers=wrong).status_code == 403
    assert (
        client.post("/v1/jobs/results", params={"worker": worker}, content=body[:-3], headers=auth).status_code == 422
    )
    assert state.queue.held_by(ids[0], worker) is None  # nothing of a refused request was taken
    accepted = client.post("/v1/jobs/results", params={"worker": worker}, content=body, headers=auth).json()["results"]
    assert [o["status"] for o in accepted] == [200, 200]


def test_a_lapsed_batch_comes_back_in_its_original_order(queue: JobQueue, clock: FakeClock) -> None:
    # Ids whose text order differs from their queue order: equal deadlines must not sort them by id.
    ids = ["r.fit.9", "r.fit.10", "r.fit.11", "r.fit.2"]
    queue.submit([job(job_id, device=i) for i, job_id in enumerate(ids)])
    assert [j.id for j in queue.lease_many("w1", 4)] == ids
    clock.now += LEASE + 1
    assert [j.id for j in queue.lease_many("w2", 4)] == ids
