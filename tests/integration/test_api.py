"""The orchestrator's HTTP API, driven by hand against a real orchestrator process."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest
import torch

from feles.protocol import (
    TENSOR_MEDIA_TYPE,
    WORKER_SECRET_HEADER,
    JobResult,
    decode_tensors,
    encode_result,
    encode_tensors,
)
from tests.integration.conftest import AUTH, Processes, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration


def _result(job: dict, worker: str, metric: float | None = None) -> JobResult:
    return JobResult(
        job_id=job["id"],
        worker_id=worker,
        loss=0.5,
        metric=metric,
        num_examples=job["num_examples"],
        num_steps=1,
        train_seconds=0.01,
    )


class Hand:
    """A worker played by hand: its id and the header with its own secret."""

    def __init__(self, http: httpx.Client, name: str) -> None:
        reply = http.post("/v1/workers", json={"name": name})
        assert reply.status_code == 201, reply.text
        self.http = http
        self.id = reply.json()["worker_id"]
        self.headers = {WORKER_SECRET_HEADER: reply.json()["worker_secret"]}
        self.reply = reply.json()

    def next(self, wait: float = 1) -> httpx.Response:
        return self.http.get("/v1/jobs/next", params={"worker": self.id, "wait": wait}, headers=self.headers)

    def post(self, job_id: str, body: bytes) -> httpx.Response:
        return _post(self.http, job_id, body, self.id, self.headers)

    def beat(self, job_id: str) -> httpx.Response:
        return self.http.post(f"/v1/jobs/{job_id}/heartbeat", params={"worker": self.id}, headers=self.headers)


def _post(
    http: httpx.Client, job_id: str, body: bytes, worker: str = "nobody", headers: dict[str, str] | None = None
) -> httpx.Response:
    return http.post(
        f"/v1/jobs/{job_id}/result",
        params={"worker": worker},
        content=body,
        headers={"Content-Type": TENSOR_MEDIA_TYPE, **(headers or {})},
    )


@pytest.fixture
def api(tmp_path: Path, processes: Processes) -> httpx.Client:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}, "devices": {"p_fail": 0.0, "p_available": 1.0}})
    port = free_port()
    processes.orchestrator(spec, port)
    wait_for_status(port, lambda status: status["jobs_queued"] > 0)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=AUTH) as http:
        yield http


def test_http_contract_from_registration_to_results(api: httpx.Client) -> None:
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").json()["ready"] is True
    assert api.post("/v1/workers", json={"name": ""}).status_code == 422
    assert api.post("/v1/workers", json={"name": "w", "extra": 1}).status_code == 422
    hand = Hand(api, "hand")
    worker = hand.id
    assert hand.reply["spec"]["simulation"]["dataset"] == "digits"

    assert api.get("/v1/jobs/next", params={"worker": "ghost", "wait": 0}).status_code == 404
    assert hand.next(wait=61).status_code == 422

    first = hand.next().json()
    assert first["phase"] == "fit"
    model = api.get(f"/v1/models/{first['model_version']}")
    assert model.status_code == 200 and model.headers["content-type"] == TENSOR_MEDIA_TYPE
    weights, _ = decode_tensors(model.content)
    assert api.get("/v1/models/999").status_code == 404

    # Malformed bodies: 422, never 5xx; a malformed update fails the device for the round.
    assert hand.post(first["id"], b"not safetensors").status_code == 422
    second = hand.next().json()
    broken = {**weights, next(iter(weights)): torch.full_like(next(iter(weights.values())), math.nan)}
    nan_reply = hand.post(second["id"], encode_result(_result(second, worker), broken))
    assert nan_reply.status_code == 422 and "NaN" in nan_reply.text
    third = hand.next().json()
    # A job id the queue does not know: 404 before the body is even decoded.
    assert hand.post("other-id", encode_result(_result(third, worker), weights)).status_code == 404
    unknown = _result(third, worker).model_copy(update={"job_id": "nope"})
    assert hand.post("nope", encode_result(unknown, weights)).status_code == 404

    accepted = hand.post(third["id"], encode_result(_result(third, worker), weights))
    assert accepted.json() == {"accepted": True, "reason": "accepted"}
    again = hand.post(third["id"], encode_result(_result(third, worker), weights))
    assert again.status_code == 409 and "already has a result" in again.text

    # Play the worker for every remaining job until the simulation is over.
    while True:
        response = hand.next(wait=5)
        if response.status_code == 410:
            break
        if response.status_code == 204:
            continue
        job = response.json()
        if job["phase"] == "fit":
            body = encode_result(_result(job, worker), weights)
        else:
            body = encode_result(_result(job, worker, metric=0.25), {})
        assert hand.post(job["id"], body).status_code == 200

    status = api.get("/v1/status").json()
    assert status["phase"] == "Succeeded" and status["round"] == 1
    record = api.get("/v1/results").json()["rounds"][0]
    assert record["fit_failed"] == 2  # the two rejected updates
    assert record["eval_accuracy"] == 0.25
    assert api.get("/openapi.json").status_code == 200


def test_results_without_metadata_or_without_tensors_are_rejected(api: httpx.Client) -> None:
    hand = Hand(api, "hand")
    job = hand.next().json()
    no_metadata = hand.post(job["id"], encode_tensors({"w": torch.zeros(1)}))
    assert no_metadata.status_code == 422 and "feles.result" in no_metadata.text
    other = hand.next().json()
    no_tensors = hand.post(other["id"], encode_result(_result(other, hand.id), {}))
    assert no_tensors.status_code == 422 and "missing" in no_tensors.text


def _play_until_test_job(hand: Hand, weights: dict[str, torch.Tensor]) -> dict:
    while True:
        job = hand.next(wait=5).json()
        if job["phase"] == "test":
            return job
        tensors = weights if job["phase"] == "fit" else {}
        accuracy = None if job["phase"] == "fit" else 0.5
        assert hand.post(job["id"], encode_result(_result(job, hand.id, accuracy), tensors)).status_code == 200


def test_a_malformed_test_result_goes_to_another_worker_and_fails_the_run_only_the_third_time(
    api: httpx.Client,
) -> None:
    hands = [Hand(api, name) for name in ("a", "b", "c")]
    weights, _ = decode_tensors(api.get("/v1/models/0").content)
    job = _play_until_test_job(hands[0], weights)
    assert job["device"] is None and job["test_examples"]["stop"] > job["test_examples"]["start"]
    short = _result(job, hands[0].id, metric=0.5).model_copy(update={"num_examples": job["num_examples"] - 1})
    refused = hands[0].post(job["id"], encode_result(short, {}))
    assert refused.status_code == 422 and "the test shard has" in refused.text
    # The shard goes back first in line, to another worker than the one that answered badly.
    again = hands[1].next().json()
    assert again["id"] == job["id"]
    assert api.get("/v1/status").json()["phase"] == "Running"
    assert (
        hands[1].post(job["id"], encode_result(short.model_copy(update={"worker_id": hands[1].id}), {})).status_code
        == 422
    )
    third = hands[2].next().json()
    assert third["id"] == job["id"]
    assert (
        hands[2].post(job["id"], encode_result(short.model_copy(update={"worker_id": hands[2].id}), {})).status_code
        == 422
    )
    # The other shards come back fine; the round cannot be recorded without the refused one.
    while (response := hands[0].next(wait=5)).status_code == 200:
        other = response.json()
        assert hands[0].post(other["id"], encode_result(_result(other, hands[0].id, metric=0.5), {})).status_code == 200
    status = api.get("/v1/status").json()
    assert status["phase"] == "Failed"
    assert f"the results of test jobs ['{job['id']}'] were refused as malformed" in status["message"]
    assert "the test shard has" in status["message"] and "3 of at most 3" in status["message"]


def test_a_malformed_test_result_then_a_good_one_lets_the_run_succeed(api: httpx.Client) -> None:
    bad, good = Hand(api, "bad"), Hand(api, "good")
    weights, _ = decode_tensors(api.get("/v1/models/0").content)
    job = _play_until_test_job(bad, weights)
    short = _result(job, bad.id, metric=0.5).model_copy(update={"num_examples": 1})
    assert bad.post(job["id"], encode_result(short, {})).status_code == 422
    while (response := good.next(wait=5)).status_code == 200:
        other = response.json()
        assert good.post(other["id"], encode_result(_result(other, good.id, metric=0.5), {})).status_code == 200
    assert api.get("/v1/status").json()["phase"] == "Succeeded"


def test_a_token_holder_cannot_answer_or_extend_another_workers_job(api: httpx.Client) -> None:
    owner, thief = Hand(api, "owner"), Hand(api, "thief")
    weights, _ = decode_tensors(api.get("/v1/models/0").content)
    job = owner.next().json()
    not_leased = thief.next().json()  # leased to the thief itself: fine to answer, but not the owner's
    forged = encode_result(_result(job, thief.id), weights)
    # Leased to another worker: 409, whether the thief names itself ...
    assert thief.post(job["id"], forged).status_code == 409
    # ... or claims to be the owner without the owner's secret: 403.
    as_owner = encode_result(_result(job, owner.id), weights)
    assert _post(api, job["id"], as_owner, owner.id, thief.headers).status_code == 403
    assert _post(api, job["id"], as_owner, owner.id, {}).status_code == 403
    # A job never leased to anyone: 409.
    queued = api.get("/v1/status").json()["jobs_queued"]
    assert queued > 0
    # Heartbeats: only the holder extends a lease.
    assert thief.beat(job["id"]).status_code == 409
    assert api.post(f"/v1/jobs/{job['id']}/heartbeat", params={"worker": owner.id}).status_code == 403
    assert owner.beat(job["id"]).status_code == 200
    # Leaving as another worker needs its secret.
    assert api.delete(f"/v1/workers/{owner.id}", headers=thief.headers).status_code == 403
    assert api.get("/v1/jobs/next", params={"worker": owner.id, "wait": 0}, headers=thief.headers).status_code == 403
    # The wrong number of examples, or an absurd update, is malformed.
    wrong_count = _result(not_leased, thief.id).model_copy(update={"num_examples": not_leased["num_examples"] + 1})
    reply = thief.post(not_leased["id"], encode_result(wrong_count, weights))
    assert reply.status_code == 422 and "the job asked for" in reply.text
    absurd = {
        name: torch.full_like(tensor, 1e30) if tensor.is_floating_point() else tensor
        for name, tensor in weights.items()
    }
    follow = thief.next().json()
    reply = thief.post(follow["id"], encode_result(_result(follow, thief.id), absurd))
    assert reply.status_code == 422 and "away from the global model" in reply.text
    # The owner's own result still counts.
    assert owner.post(job["id"], encode_result(_result(job, owner.id), weights)).status_code == 200


def test_a_result_for_a_job_never_leased_is_refused(api: httpx.Client) -> None:
    hand = Hand(api, "hand")
    weights, _ = decode_tensors(api.get("/v1/models/0").content)
    job = hand.next().json()
    prefix = job["id"].rsplit(".", 1)[0]
    codes = {}
    for device in range(20):  # the queued fit jobs of the round are among these ids; only one is leased
        never = f"{prefix}.{device}"
        if never != job["id"]:
            forged = _result(job, hand.id).model_copy(update={"job_id": never})
            codes[device] = hand.post(never, encode_result(forged, weights)).status_code
    assert 200 not in codes.values(), codes  # before the fix: 200 for every queued job
    assert 409 in codes.values(), codes


def test_every_v1_route_needs_the_token_and_health_does_not(api: httpx.Client) -> None:
    base = str(api.base_url)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        with httpx.Client(base_url=base, headers=headers, timeout=10) as stranger:
            assert stranger.get("/v1/status").status_code == 401
            assert stranger.get("/v1/results").status_code == 401
            assert stranger.get("/v1/models/0").status_code == 401
            assert stranger.post("/v1/workers", json={"name": "x"}).status_code == 401
            denied = stranger.get("/v1/jobs/next", params={"worker": "x", "wait": 0})
            assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
            assert stranger.get("/healthz").status_code == 200
            assert stranger.get("/readyz").status_code == 200


def test_heartbeat_extends_a_lease_and_a_leaving_worker_gives_its_jobs_back(api: httpx.Client) -> None:
    worker, other = Hand(api, "a"), Hand(api, "b")
    job = worker.next().json()
    beat = worker.beat(job["id"])
    assert beat.status_code == 200 and beat.json()["lease_seconds"] > 0
    assert other.beat(job["id"]).status_code == 409
    assert worker.beat("nope").status_code == 404
    left = api.delete(f"/v1/workers/{worker.id}", headers=worker.headers)
    assert left.status_code == 200 and left.json() == {"released": [job["id"]]}
    assert api.delete(f"/v1/workers/{worker.id}", headers=worker.headers).status_code == 404
    assert worker.next(wait=0).status_code == 404
    # A released job goes first: the next worker to ask gets it.
    assert other.next().json()["id"] == job["id"]


def test_oversized_bodies_get_413(api: httpx.Client) -> None:
    assert (
        api.post("/v1/workers", content=b"x" * 100_000, headers={"Content-Type": "application/json"}).status_code == 413
    )

    def chunks():  # no Content-Length: the limit must hold for streamed bodies too
        for _ in range(100):
            yield b"x" * 1000

    streamed = api.post("/v1/workers", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
