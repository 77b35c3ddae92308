"""Batched leases and results against a real orchestrator process on 127.0.0.1: each job of a batch keeps its
own lease; a batch post is answered per job; a killed worker's whole batch is re-issued; batching changes no
result; admission refuses oversized and unauthenticated batch requests before reading them."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch

from feles.protocol import (
    TENSOR_MEDIA_TYPE,
    WORKER_SECRET_HEADER,
    JobResult,
    decode_tensors,
    encode_parts,
    encode_result,
)
from tests.integration.conftest import AUTH, Processes, comparable_rounds, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration

LEASE = 3.0
#: 40 devices, every one available and none failing: 12 fit jobs in the first round.
POPULATION = {"devices": {"num": 40, "p_fail": 0.0, "p_available": 1.0}}


class Hand:
    """A worker played by hand."""

    def __init__(self, http: httpx.Client, name: str) -> None:
        reply = http.post("/v1/workers", json={"name": name}).json()
        self.http, self.id = http, reply["worker_id"]
        self.headers = {WORKER_SECRET_HEADER: reply["worker_secret"]}

    def lease(self, most: int, wait: float = 1) -> httpx.Response:
        params = {"worker": self.id, "wait": wait, "max": most}
        return self.http.get("/v1/jobs/batch", params=params, headers=self.headers)

    def jobs(self, most: int) -> list[dict]:
        response = self.lease(most)
        assert response.status_code == 200, response.text
        return response.json()["jobs"]

    def beat(self, job_id: str) -> int:
        return self.http.post(
            f"/v1/jobs/{job_id}/heartbeat", params={"worker": self.id}, headers=self.headers
        ).status_code

    def post(self, parts: list[bytes]) -> httpx.Response:
        return self.http.post(
            "/v1/jobs/results",
            params={"worker": self.id},
            content=encode_parts(parts),
            headers={"Content-Type": TENSOR_MEDIA_TYPE, **self.headers},
        )

    def part(self, job: dict, weights: dict[str, torch.Tensor]) -> bytes:
        result = JobResult(
            job_id=job["id"],
            worker_id=self.id,
            loss=0.5,
            num_examples=job["num_examples"],
            num_steps=1,
            train_seconds=0,
        )
        return encode_result(result, weights)


@pytest.fixture
def api(tmp_path: Path, processes: Processes) -> httpx.Client:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}, **POPULATION})
    port = free_port()
    processes.orchestrator(spec, port, "--lease-seconds", str(LEASE))
    wait_for_status(port, lambda status: status["jobs_queued"] > 0)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=AUTH) as http:
        yield http


def test_a_batched_lease_hands_out_several_jobs_each_with_its_own_lease(api: httpx.Client) -> None:
    worker, other = Hand(api, "a"), Hand(api, "b")
    batch = worker.jobs(4)
    ids = [job["id"] for job in batch]
    assert len(set(ids)) == 4 and all(job["phase"] == "fit" for job in batch)
    assert all(worker.beat(job_id) == 200 for job_id in ids)
    assert all(other.beat(job_id) == 409 for job_id in ids)
    # The other worker gets the next jobs, never one of this batch.
    assert not set(ids) & {job["id"] for job in other.jobs(4)}
    metrics = api.get("/metrics").text
    assert re.search(r"^feles_lease_batch_jobs_sum 8\.0$", metrics, re.MULTILINE), metrics
    assert re.search(r"^feles_lease_batch_jobs_count 2\.0$", metrics, re.MULTILINE)


def test_an_expired_lease_in_a_batch_is_reissued_while_the_others_results_are_accepted(api: httpx.Client) -> None:
    worker, other = Hand(api, "slow"), Hand(api, "other")
    weights, _ = decode_tensors(api.get("/v1/models/0").content)
    batch = worker.jobs(3)
    # Two of the three leases are kept alive; the third lapses.
    deadline = time.monotonic() + 2 * LEASE
    while time.monotonic() < deadline:
        assert worker.beat(batch[0]["id"]) == 200 and worker.beat(batch[1]["id"]) == 200
        time.sleep(LEASE / 4)
    assert worker.beat(batch[2]["id"]) == 409  # no longer its lease
    reissued = other.jobs(1)
    assert [job["id"] for job in reissued] == [batch[2]["id"]]  # first in line
    assert other.post([other.part(reissued[0], weights)]).json()["results"][0]["status"] == 200
    outcomes = worker.post([worker.part(job, weights) for job in batch]).json()["results"]
    assert [(o["job_id"], o["status"]) for o in outcomes] == [
        (batch[0]["id"], 200),
        (batch[1]["id"], 200),
        (batch[2]["id"], 409),
    ]
    assert "already has a result" in outcomes[2]["reason"]


def test_a_batchs_updates_are_judged_each_on_its_own_when_checked_together(api: httpx.Client) -> None:
    # The orchestrator measures a batch's updates against the model in one stacked computation; each part is
    # still accepted or refused on its own, with the reason the single-result route gives.
    worker = Hand(api, "w")
    weights, _ = decode_tensors(api.get("/v1/models/0").content)
    name = next(n for n, t in weights.items() if t.is_floating_point() and t.numel() > 1)
    far = {**weights, name: weights[name] + 1e9}
    poisoned = {
        **weights,
        name: weights[name].clone().view(-1).index_fill(0, torch.tensor([1]), math.nan).view_as(weights[name]),
    }
    misshapen = {**weights, name: weights[name].reshape(-1)[:-1].clone()}
    updates = [
        weights,
        far,
        poisoned,
        misshapen,
        {n: t + 0.01 if t.is_floating_point() else t for n, t in weights.items()},
    ]
    batch = worker.jobs(len(updates))
    assert len(batch) == len(updates)
    outcomes = worker.post([worker.part(job, update) for job, update in zip(batch, updates, strict=True)]).json()[
        "results"
    ]
    assert [o["status"] for o in outcomes] == [200, 422, 422, 422, 200]
    assert "refused as absurd" in outcomes[1]["reason"]
    assert f"tensor {name!r} holds NaN or Inf" in outcomes[2]["reason"]
    assert f"tensor {name!r}: expected" in outcomes[3]["reason"]


def test_admission_refuses_oversized_and_unauthenticated_batches_before_reading(api: httpx.Client) -> None:
    worker = Hand(api, "w")
    model_bytes = len(api.get("/v1/models/0").content)
    # 16 MiB of results (or one fit result of 3 x the model + 64 KiB, if larger) and 1 MiB of framing.
    limit = max(16 * 1024 * 1024, 3 * model_bytes + 64 * 1024) + 1024 * 1024
    too_large = api.post(
        "/v1/jobs/results",
        params={"worker": worker.id},
        content=b"\0" * (limit + 1),
        headers={"Content-Type": TENSOR_MEDIA_TYPE, **worker.headers},
    )
    assert too_large.status_code == 413 and str(limit) in too_large.text
    base = str(api.base_url)
    with httpx.Client(base_url=base, timeout=10) as stranger:
        assert stranger.post("/v1/jobs/results", params={"worker": worker.id}, content=b"\0" * 100).status_code == 401
        assert stranger.get("/v1/jobs/batch", params={"worker": worker.id, "wait": 0}).status_code == 401
    wrong = {WORKER_SECRET_HEADER: "wrong"}
    assert (
        api.post("/v1/jobs/results", params={"worker": worker.id}, content=b"\0" * 100, headers=wrong).status_code
        == 403
    )
    assert api.get("/v1/jobs/batch", params={"worker": worker.id, "wait": 0}, headers=wrong).status_code == 403
    assert api.get("/v1/jobs/batch", params={"worker": "ghost", "wait": 0}).status_code == 404
    assert worker.lease(0).status_code == 422  # max >= 1
    broken = api.post("/v1/jobs/results", params={"worker": worker.id}, content=b"\7" * 100, headers=worker.headers)
    assert broken.status_code == 422 and "part 0" in broken.text


HOLDER = """
import sys, time, httpx
http = httpx.Client(base_url=sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
reply = http.post("/v1/workers", json={"name": "doomed"}).json()
params = {"worker": reply["worker_id"], "wait": 5, "max": 5}
jobs = http.get("/v1/jobs/batch", params=params, headers={"X-Feles-Worker-Secret": reply["worker_secret"]}).json()
print(" ".join(job["id"] for job in jobs["jobs"]), flush=True)
time.sleep(600)
"""


def test_a_worker_killed_holding_a_batch_has_all_its_jobs_reissued(tmp_path: Path, processes: Processes) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}, **POPULATION})
    port = free_port()
    processes.orchestrator(spec, port, "--lease-seconds", str(LEASE))
    wait_for_status(port, lambda status: status["jobs_queued"] > 0)
    url = f"http://127.0.0.1:{port}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, AUTH["Authorization"].split()[1]], stdout=subprocess.PIPE
    )
    try:
        held = holder.stdout.readline().decode().split()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert len(held) == 5
    with httpx.Client(base_url=url, timeout=30, headers=AUTH) as http:
        rescuer = Hand(http, "rescuer")
        time.sleep(LEASE + 0.5)
        # Every job of the dead worker's batch comes back, first in line and in its order.
        assert [job["id"] for job in rescuer.jobs(64)][:5] == held
        assert http.get("/v1/status").json()["jobs_leased"] >= 5


WORKER = (
    "import sys; from feles.worker.client import Worker, WorkerOptions; "
    "sys.exit(Worker(WorkerOptions(orchestrator=sys.argv[1], name=sys.argv[2], token=sys.argv[3], wait=2, "
    "max_jobs=int(sys.argv[4]))).run())"
)


def _run(tmp_path: Path, processes: Processes, name: str, max_jobs: int, workers: int) -> tuple[list, str]:
    folder = tmp_path / name
    folder.mkdir()
    spec = write_spec(
        folder, {"simulation": {"num_rounds": 3}, "devices": {"num": 60}, "algorithms": {"fit": {"params": {"k": 0.5}}}}
    )
    port = free_port()
    processes.orchestrator(spec, port)
    url = f"http://127.0.0.1:{port}"
    token = AUTH["Authorization"].split()[1]
    started = [
        subprocess.Popen([sys.executable, "-c", WORKER, url, f"{name}-{index}", token, str(max_jobs)])
        for index in range(workers)
    ]
    status = wait_for_status(port, lambda status: status["phase"] in ("Succeeded", "Failed"), timeout=300)
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    for worker in started:
        worker.wait(timeout=60)
    assert status["phase"] == "Succeeded", status
    return comparable_rounds(folder / "out" / "results.json"), metrics


def test_results_are_identical_batched_and_unbatched(tmp_path: Path, processes: Processes) -> None:
    unbatched, plain_metrics = _run(tmp_path, processes, "unbatched", max_jobs=1, workers=2)
    batched, batch_metrics = _run(tmp_path, processes, "batched", max_jobs=64, workers=2)
    alone, _ = _run(tmp_path, processes, "alone", max_jobs=64, workers=1)
    assert batched == unbatched == alone
    assert len(batched) == 3

    def jobs_per_lease(metrics: str) -> float:
        total = float(re.search(r"^feles_lease_batch_jobs_sum (\S+)$", metrics, re.MULTILINE).group(1))
        return total / float(re.search(r"^feles_lease_batch_jobs_count (\S+)$", metrics, re.MULTILINE).group(1))

    assert jobs_per_lease(plain_metrics) == 1.0
    assert jobs_per_lease(batch_metrics) > 2.0  # the batched run really leased in batches


STACKED_WORKER = (
    "import logging, sys; from feles.worker.client import Worker, WorkerOptions; "
    "logging.basicConfig(level=logging.DEBUG); "
    "sys.exit(Worker(WorkerOptions(orchestrator=sys.argv[1], name='stacked', token=sys.argv[2], wait=2, "
    "stack_jobs=16)).run())"
)


def test_a_worker_stacking_a_batchs_jobs_learns_what_one_by_one_learns(tmp_path: Path, processes: Processes) -> None:
    one_by_one, _ = _run(tmp_path, processes, "one-by-one", max_jobs=64, workers=1)
    folder = tmp_path / "stacked"
    folder.mkdir()
    spec = write_spec(
        folder, {"simulation": {"num_rounds": 3}, "devices": {"num": 60}, "algorithms": {"fit": {"params": {"k": 0.5}}}}
    )
    port = free_port()
    processes.orchestrator(spec, port)
    token = AUTH["Authorization"].split()[1]
    log = folder / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-c", STACKED_WORKER, f"http://127.0.0.1:{port}", token], stderr=output
        )
        status = wait_for_status(port, lambda status: status["phase"] in ("Succeeded", "Failed"), timeout=300)
        worker.wait(timeout=60)
    assert status["phase"] == "Succeeded", status
    assert "alike fit jobs stacked" in log.read_text()  # the batch's jobs really trained together
    stacked = comparable_rounds(folder / "out" / "results.json")
    assert len(stacked) == len(one_by_one) == 3
    for mine, theirs in zip(stacked, one_by_one, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
            else:
                assert mine[key] == value, key
