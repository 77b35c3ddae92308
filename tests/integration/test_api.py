"""The orchestrator's HTTP API, driven by hand against a real orchestrator process."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest
import torch

from feles.protocol import TENSOR_MEDIA_TYPE, JobResult, decode_tensors, encode_result, encode_tensors
from tests.integration.conftest import AUTH, Processes, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration


def _result(job: dict, worker: str, accuracy: float | None = None) -> JobResult:
    return JobResult(
        job_id=job["id"],
        worker_id=worker,
        loss=0.5,
        accuracy=accuracy,
        num_examples=job["num_examples"],
        num_steps=1,
        train_seconds=0.01,
    )


def _post(http: httpx.Client, job_id: str, body: bytes) -> httpx.Response:
    return http.post(f"/v1/jobs/{job_id}/result", content=body, headers={"Content-Type": TENSOR_MEDIA_TYPE})


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
    reply = api.post("/v1/workers", json={"name": "hand"})
    assert reply.status_code == 201
    worker = reply.json()["worker_id"]
    assert reply.json()["spec"]["simulation"]["dataset"] == "digits"

    assert api.get("/v1/jobs/next", params={"worker": "ghost", "wait": 0}).status_code == 404
    assert api.get("/v1/jobs/next", params={"worker": worker, "wait": 61}).status_code == 422

    first = api.get("/v1/jobs/next", params={"worker": worker, "wait": 1}).json()
    assert first["phase"] == "fit"
    model = api.get(f"/v1/models/{first['model_version']}")
    assert model.status_code == 200 and model.headers["content-type"] == TENSOR_MEDIA_TYPE
    weights, _ = decode_tensors(model.content)
    assert api.get("/v1/models/999").status_code == 404

    # Malformed bodies: 422, never 5xx; a malformed update fails the device for the round.
    assert _post(api, first["id"], b"not safetensors").status_code == 422
    second = api.get("/v1/jobs/next", params={"worker": worker, "wait": 1}).json()
    broken = {**weights, next(iter(weights)): torch.full_like(next(iter(weights.values())), math.nan)}
    nan_reply = _post(api, second["id"], encode_result(_result(second, worker), broken))
    assert nan_reply.status_code == 422 and "NaN" in nan_reply.text
    third = api.get("/v1/jobs/next", params={"worker": worker, "wait": 1}).json()
    assert _post(api, "other-id", encode_result(_result(third, worker), weights)).status_code == 422
    unknown = _result(third, worker).model_copy(update={"job_id": "nope"})
    assert _post(api, "nope", encode_result(unknown, weights)).status_code == 404

    accepted = _post(api, third["id"], encode_result(_result(third, worker), weights))
    assert accepted.json() == {"accepted": True, "reason": "accepted"}
    again = _post(api, third["id"], encode_result(_result(third, worker), weights))
    assert again.status_code == 409 and "already has a result" in again.text

    # Play the worker for every remaining job until the simulation is over.
    while True:
        response = api.get("/v1/jobs/next", params={"worker": worker, "wait": 5})
        if response.status_code == 410:
            break
        if response.status_code == 204:
            continue
        job = response.json()
        if job["phase"] == "fit":
            body = encode_result(_result(job, worker), weights)
        else:
            body = encode_result(_result(job, worker, accuracy=0.25), {})
        assert _post(api, job["id"], body).status_code == 200

    status = api.get("/v1/status").json()
    assert status["phase"] == "Succeeded" and status["round"] == 1
    record = api.get("/v1/results").json()["rounds"][0]
    assert record["fit_failed"] == 2  # the two rejected updates
    assert record["eval_accuracy"] == 0.25
    assert api.get("/openapi.json").status_code == 200


def test_results_without_metadata_or_without_tensors_are_rejected(api: httpx.Client) -> None:
    worker = api.post("/v1/workers", json={"name": "hand"}).json()["worker_id"]
    job = api.get("/v1/jobs/next", params={"worker": worker, "wait": 1}).json()
    no_metadata = _post(api, job["id"], encode_tensors({"w": torch.zeros(1)}))
    assert no_metadata.status_code == 422 and "feles.result" in no_metadata.text
    other = api.get("/v1/jobs/next", params={"worker": worker, "wait": 1}).json()
    no_tensors = _post(api, other["id"], encode_result(_result(other, worker), {}))
    assert no_tensors.status_code == 422 and "missing" in no_tensors.text


def test_a_malformed_test_result_fails_the_simulation_naming_the_job(api: httpx.Client) -> None:
    worker = api.post("/v1/workers", json={"name": "hand"}).json()["worker_id"]
    weights, _ = decode_tensors(api.get("/v1/models/0").content)
    while True:
        job = api.get("/v1/jobs/next", params={"worker": worker, "wait": 5}).json()
        if job["phase"] == "test":
            break
        tensors = weights if job["phase"] == "fit" else {}
        accuracy = None if job["phase"] == "fit" else 0.5
        assert _post(api, job["id"], encode_result(_result(job, worker, accuracy), tensors)).status_code == 200
    assert job["device"] is None and job["test_examples"]["stop"] > job["test_examples"]["start"]
    short = _result(job, worker, accuracy=0.5).model_copy(update={"num_examples": job["num_examples"] - 1})
    refused = _post(api, job["id"], encode_result(short, {}))
    assert refused.status_code == 422 and "the test shard has" in refused.text
    # The other shards come back fine; the round cannot be recorded without the refused one.
    while (response := api.get("/v1/jobs/next", params={"worker": worker, "wait": 5})).status_code == 200:
        other = response.json()
        assert _post(api, other["id"], encode_result(_result(other, worker, accuracy=0.5), {})).status_code == 200
    status = api.get("/v1/status").json()
    assert status["phase"] == "Failed"
    assert f"the results of test jobs ['{job['id']}'] were refused as malformed" in status["message"]


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
    worker = api.post("/v1/workers", json={"name": "a"}).json()["worker_id"]
    other = api.post("/v1/workers", json={"name": "b"}).json()["worker_id"]
    job = api.get("/v1/jobs/next", params={"worker": worker, "wait": 1}).json()
    beat = api.post(f"/v1/jobs/{job['id']}/heartbeat", params={"worker": worker})
    assert beat.status_code == 200 and beat.json()["lease_seconds"] > 0
    assert api.post(f"/v1/jobs/{job['id']}/heartbeat", params={"worker": other}).status_code == 409
    assert api.post("/v1/jobs/nope/heartbeat", params={"worker": worker}).status_code == 404
    left = api.delete(f"/v1/workers/{worker}")
    assert left.status_code == 200 and left.json() == {"released": [job["id"]]}
    assert api.delete(f"/v1/workers/{worker}").status_code == 404
    assert api.get("/v1/jobs/next", params={"worker": worker, "wait": 0}).status_code == 404
    # A released job goes first: the next worker to ask gets it.
    assert api.get("/v1/jobs/next", params={"worker": other, "wait": 1}).json()["id"] == job["id"]


def test_oversized_bodies_get_413(api: httpx.Client) -> None:
    assert (
        api.post("/v1/workers", content=b"x" * 100_000, headers={"Content-Type": "application/json"}).status_code == 413
    )

    def chunks():  # no Content-Length: the limit must hold for streamed bodies too
        for _ in range(100):
            yield b"x" * 1000

    streamed = api.post("/v1/workers", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
