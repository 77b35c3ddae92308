"""The worker's HTTP loop: register, long-poll for jobs, fetch models, post results; retry with backoff."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import torch

from feles.protocol import (
    API_PREFIX,
    TENSOR_MEDIA_TYPE,
    Job,
    JobResult,
    RegisterReply,
    RegisterRequest,
    decode_tensors,
    encode_result,
)
from feles.worker.metrics import WorkerMetrics
from feles.worker.state import WorkerState
from feles.worker.trainer import run_job

log = logging.getLogger("feles.worker")


class OrchestratorUnavailable(RuntimeError):
    """The orchestrator stayed unreachable for longer than the worker was told to wait."""


class Unauthorized(RuntimeError):
    """The orchestrator refused the worker's token (401)."""


class WorkerStopping(BaseException):
    """SIGTERM arrived: give the current job back and exit (BaseException: no handler swallows it)."""


@dataclass(frozen=True)
class WorkerOptions:
    orchestrator: str
    name: str = "worker"
    data_dir: Path | None = None
    wait: float = 20.0
    threads: int = 1
    max_backoff: float = 10.0
    give_up_after: float | None = None
    token: str | None = None
    metrics_port: int | None = None


class Worker:
    """One worker process: runs jobs until the orchestrator says the simulation is over (410)."""

    def __init__(self, options: WorkerOptions, http: httpx.Client | None = None) -> None:
        self.options = options
        self.http = http or _client(options)
        # Heartbeats come from a thread: a client of their own, built once (a client costs ~20 ms).
        self.beat_http = _client(options)
        self.state: WorkerState | None = None
        self.jobs_done = 0
        self.metrics = WorkerMetrics()

    def run(self) -> int:
        """The job loop; returns the process exit code (0 when the simulation ended or SIGTERM came)."""
        torch.set_num_threads(self.options.threads)
        if self.options.metrics_port is not None:
            port = self.metrics.serve(self.options.metrics_port)
            log.info("metrics on port %d", port)
        previous = signal.signal(signal.SIGTERM, _raise_stopping)
        try:
            return self._loop()
        except WorkerStopping:
            self._leave()
            log.info("SIGTERM: worker exits after %d jobs", self.jobs_done)
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _loop(self) -> int:
        state = self._register()
        while True:
            params = {"worker": state.worker_id, "wait": self.options.wait}
            response = self._request("GET", f"{API_PREFIX}/jobs/next", params=params, headers=state.auth)
            if response.status_code == 410:
                log.info("simulation over after %d jobs; worker exits", self.jobs_done)
                return 0
            if response.status_code in (403, 404):
                log.info("orchestrator does not know this worker (restarted?): registering again")
                state = self._register()
                continue
            if response.status_code == 204:
                continue
            response.raise_for_status()
            job = Job.model_validate(response.json())
            if job.run_id != state.run_id:
                state = self._register()
                continue
            self._run(state, job)

    def _run(self, state: WorkerState, job: Job) -> None:
        if self.jobs_done == 0:
            # bench/light.py times the start-up to this line.
            log.info("first job %s (%s, repetition %d round %d)", job.id, job.phase.value, job.repetition, job.round)
        with self._heartbeats(job, state):
            weights = self._model(state, job)
            if weights is None:
                return
            job_tensors = self._job_tensors(job) if job.has_tensors else None
            result, tensors = run_job(state, job, weights, job_tensors)
        self._post_result(state, job, result, tensors)
        self.jobs_done += 1
        self.metrics.record(job.phase.value, result.train_seconds)

    @contextmanager
    def _heartbeats(self, job: Job, state: WorkerState) -> Iterator[None]:
        """Extend the job's lease every third of it while the job runs, from a thread."""
        done = threading.Event()
        params, headers = {"worker": state.worker_id}, state.auth

        def beat() -> None:
            while not done.wait(job.lease_seconds / 3):
                # A missed beat may let the lease lapse; the job is then re-issued, which is safe.
                with suppress(httpx.TransportError):
                    self.beat_http.post(f"{API_PREFIX}/jobs/{job.id}/heartbeat", params=params, headers=headers)

        thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)

    def _leave(self) -> None:
        """Tell the orchestrator this worker is gone, so that the jobs it holds go to others at once."""
        if self.state is None:
            return
        try:
            response = self.http.delete(
                f"{API_PREFIX}/workers/{self.state.worker_id}", timeout=5, headers=self.state.auth
            )
            if response.status_code == 200:
                log.info("left the orchestrator; jobs given back: %s", response.json()["released"] or "none")
        except httpx.HTTPError:
            log.warning("could not reach the orchestrator; held jobs return to the queue when their leases expire")

    def _register(self) -> WorkerState:
        body = RegisterRequest(name=self.options.name).model_dump()
        response = self._request("POST", f"{API_PREFIX}/workers", json=body)
        response.raise_for_status()
        reply = RegisterReply.model_validate(response.json())
        previous = self.state
        if previous is not None and previous.run_id == reply.run_id:
            # Same run: keep the built data and models (cached by repetition and version, never by version alone).
            previous.worker_id, previous.worker_secret = reply.worker_id, reply.worker_secret
        else:
            self.state = WorkerState.from_reply(reply, self.options.data_dir)
        log.info("registered as %s (run %s)", reply.worker_id, reply.run_id[:8])
        assert self.state is not None
        return self.state

    def _model(self, state: WorkerState, job: Job) -> dict[str, torch.Tensor] | None:
        """The global model the job names: from the cache only if cached for the same repetition and version."""
        version = job.model_version
        cached = state.cached_model(job.repetition, version)
        if cached is not None:
            return cached
        response = self._request("GET", f"{API_PREFIX}/models/{version}")
        if response.status_code == 404:
            log.warning("model version %d is no longer served; skipping the job", version)
            return None
        response.raise_for_status()
        weights, _ = decode_tensors(response.content)
        state.cache_model(job.repetition, version, weights)
        return weights

    def _job_tensors(self, job: Job) -> dict[str, torch.Tensor]:
        response = self._request("GET", f"{API_PREFIX}/jobs/{job.id}/tensors")
        response.raise_for_status()
        tensors, _ = decode_tensors(response.content)
        return tensors

    def _post_result(self, state: WorkerState, job: Job, result: JobResult, tensors: dict[str, torch.Tensor]) -> None:
        response = self._request(
            "POST",
            f"{API_PREFIX}/jobs/{job.id}/result",
            params={"worker": state.worker_id},
            content=encode_result(result, tensors),
            headers={"Content-Type": TENSOR_MEDIA_TYPE, **state.auth},
        )
        if response.status_code == 409:
            log.info("job %s not taken: %s", job.id, response.text[:200])
            return
        if response.status_code in (403, 404, 422):
            log.warning("result of job %s refused (%d): %s", job.id, response.status_code, response.text[:300])
            return
        response.raise_for_status()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request, retrying with exponential backoff while the orchestrator is down or failing."""
        backoff, failing_since = 0.5, None
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
                if response.status_code == 401:
                    raise Unauthorized(f"orchestrator at {self.options.orchestrator} refused the API token (401)")
                if response.status_code < 500:
                    if failing_since is not None:
                        log.info("orchestrator reachable again")
                    return response
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            now = time.monotonic()
            if failing_since is None:
                failing_since = now
                log.warning("orchestrator at %s unavailable (%s); retrying", self.options.orchestrator, problem)
            if self.options.give_up_after is not None and now - failing_since > self.options.give_up_after:
                raise OrchestratorUnavailable(
                    f"orchestrator at {self.options.orchestrator} unavailable for "
                    f"{self.options.give_up_after:.0f} s ({problem})"
                )
            time.sleep(backoff)
            backoff = min(backoff * 2, self.options.max_backoff)


def _client(options: WorkerOptions) -> httpx.Client:
    headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
    return httpx.Client(base_url=options.orchestrator.rstrip("/"), timeout=options.wait + 30, headers=headers)


def _raise_stopping(signum: int, frame: FrameType | None) -> None:
    raise WorkerStopping
