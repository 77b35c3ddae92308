"""The worker's HTTP loop: register, long-poll for jobs, fetch models, post results; retry with backoff."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import torch

from feles.http_transport import load_httpx
from feles.protocol import (
    API_PREFIX,
    TENSOR_MEDIA_TYPE,
    BatchResultAck,
    Job,
    JobBatch,
    JobResult,
    RegisterReply,
    RegisterRequest,
    decode_tensors,
    encode_parts,
    encode_result,
)
from feles.worker.accelerator import prepare_device, resolve_device
from feles.worker.heartbeats import Beat, Heartbeats
from feles.worker.job_groups import run_jobs
from feles.worker.metrics import WorkerMetrics
from feles.worker.state import WorkerState
from feles.worker.trainer import run_job

if TYPE_CHECKING:
    import httpx
else:
    httpx = load_httpx()  # without its command line and trio: ~0.2 s of a worker's start (feles/http_transport.py)

log = logging.getLogger("feles.worker")


#: Jobs a worker asks for per request by default: the orchestrator's own cap (feles.orchestrator.batching).
DEFAULT_MAX_JOBS = 256


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
    device: str = "auto"
    #: Most jobs asked for per lease request; the orchestrator decides how many of them come (1: one job at
    #: a time over the single-job routes).
    max_jobs: int = DEFAULT_MAX_JOBS
    #: Alike fit jobs of a batch trained together (feles.worker.job_groups); 1: every job alone, bit for bit.
    stack_jobs: int = 1


class Worker:
    """One worker process: runs jobs until the orchestrator says the simulation is over (410)."""

    def __init__(self, options: WorkerOptions, http: httpx.Client | None = None) -> None:
        self.options = options
        self.device = resolve_device(options.device)  # DeviceUnavailable before any request: a clear start error
        prepare_device(self.device)
        self.http = http or _client(options)
        # Heartbeats come from a thread: a client of their own, built once (a client costs ~20 ms).
        self.beat_http = _client(options)
        self.heartbeats = Heartbeats()
        self.state: WorkerState | None = None
        self.jobs_done = 0
        self.metrics = WorkerMetrics()

    def run(self) -> int:
        """The job loop; returns the process exit code (0 when the simulation ended or SIGTERM came)."""
        torch.set_num_threads(self.options.threads)
        if self.options.metrics_port is not None:
            port = self.metrics.serve(self.options.metrics_port)
            log.info("metrics on port %d", port)
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _stopping_after(previous))
        try:
            return self._loop()
        except WorkerStopping:
            self._leave()
            log.info("SIGTERM: worker exits after %d jobs", self.jobs_done)
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.heartbeats.close()

    def _loop(self) -> int:
        state = self._register()
        batched = self.options.max_jobs > 1
        while True:
            params: dict[str, Any] = {"worker": state.worker_id, "wait": self.options.wait}
            if batched:
                params["max"] = self.options.max_jobs
            path = f"{API_PREFIX}/jobs/batch" if batched else f"{API_PREFIX}/jobs/next"
            response = self._request("GET", path, params=params, headers=state.auth)
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
            # Validated from the JSON bytes: pydantic parses and checks in one pass (json.loads first took as long).
            body = response.content
            jobs = JobBatch.model_validate_json(body).jobs if batched else [Job.model_validate_json(body)]
            if any(job.run_id != state.run_id for job in jobs):
                state = self._register()
                continue
            if batched:
                self._run_batch(state, jobs)
            else:
                self._run(state, jobs[0])

    def _run(self, state: WorkerState, job: Job) -> None:
        self._note_first(job)
        with self.heartbeats.holding([job], self._beat(state)):
            done = self._compute(state, job)
        if done is not None:
            self._post_result(state, job, *done)
            self._count(job, done[0])

    def _run_batch(self, state: WorkerState, jobs: list[Job]) -> None:
        """Run a batch's jobs in order (each exactly as alone), then post their results in one request."""
        self._note_first(jobs[0])
        finished: list[tuple[Job, JobResult, dict[str, torch.Tensor]]] = []
        with self.heartbeats.holding(jobs, self._beat(state)):
            if self.options.stack_jobs > 1:
                finished = self._compute_together(state, jobs)
            else:
                for job in jobs:
                    done = self._compute(state, job)
                    if done is not None:
                        finished.append((job, *done))
            if finished:
                self._post_results(state, finished)
        for job, result, _ in finished:
            self._count(job, result)

    def _note_first(self, job: Job) -> None:
        if self.jobs_done == 0:
            # bench/light.py times the start-up to this line.
            log.info("first job %s (%s, repetition %d round %d)", job.id, job.phase.value, job.repetition, job.round)

    def _compute(self, state: WorkerState, job: Job) -> tuple[JobResult, dict[str, torch.Tensor]] | None:
        """Train or evaluate one job; None when its model is no longer served (its lease then lapses)."""
        weights = self._model(state, job)
        if weights is None:
            return None
        job_tensors = self._job_tensors(job) if job.has_tensors else None
        return run_job(state, job, weights, job_tensors)

    def _compute_together(
        self, state: WorkerState, jobs: list[Job]
    ) -> list[tuple[Job, JobResult, dict[str, torch.Tensor]]]:
        """A batch's jobs with alike fit jobs stacked (`stack_jobs`); jobs whose model is gone are left out."""
        weights: dict[str, dict[str, torch.Tensor]] = {}
        tensors: dict[str, dict[str, torch.Tensor]] = {}
        ready = []
        for job in jobs:
            model = self._model(state, job)
            if model is None:
                continue
            weights[job.id] = model
            if job.has_tensors:
                tensors[job.id] = self._job_tensors(job)
            ready.append(job)
        outputs = run_jobs(state, ready, weights, tensors, stack=self.options.stack_jobs)
        return [(job, result, job_tensors) for job, (result, job_tensors) in zip(ready, outputs, strict=True)]

    def _count(self, job: Job, result: JobResult) -> None:
        self.jobs_done += 1
        self.metrics.record(job.phase.value, result.train_seconds)

    def _beat(self, state: WorkerState) -> Beat:
        params, headers = {"worker": state.worker_id}, state.auth

        def beat(job: Job) -> None:
            # A missed beat may let the lease lapse; the job is then re-issued, which is safe.
            with suppress(httpx.TransportError):
                self.beat_http.post(f"{API_PREFIX}/jobs/{job.id}/heartbeat", params=params, headers=headers)

        return beat

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
            self.state = WorkerState.from_reply(reply, self.options.data_dir, self.device)
        log.info("registered as %s (run %s) on %s", reply.worker_id, reply.run_id[:8], self.device)
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

    def _post_results(self, state: WorkerState, finished: list[tuple[Job, JobResult, dict[str, torch.Tensor]]]) -> None:
        """Post several results in one request; the orchestrator answers for each job on its own."""
        body = encode_parts([encode_result(result, tensors) for _, result, tensors in finished])
        response = self._request(
            "POST",
            f"{API_PREFIX}/jobs/results",
            params={"worker": state.worker_id},
            content=body,
            headers={"Content-Type": TENSOR_MEDIA_TYPE, **state.auth},
        )
        if response.status_code in (403, 404, 413, 422):
            log.warning("results of %d jobs refused (%d): %s", len(finished), response.status_code, response.text[:300])
            return
        response.raise_for_status()
        for outcome in BatchResultAck.model_validate(response.json()).results:
            if outcome.status == 409:
                log.info("job %s not taken: %s", outcome.job_id, outcome.reason[:200])
            elif not outcome.accepted:
                log.warning("result of job %s refused (%d): %s", outcome.job_id, outcome.status, outcome.reason[:300])

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
    url = options.orchestrator.rstrip("/")
    # TLS settings only for https: loading the CA bundle cost 24 to 100 ms of start-up per client (two a
    # worker), and a plain-http orchestrator (feles run, a cluster's Service) never uses them.
    verify = url.startswith("https://")
    return httpx.Client(base_url=url, timeout=options.wait + 30, headers=headers, verify=verify)


def _stopping_after(previous: object) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler that runs the handler installed before it, if that is a Python one (a worker forked by
    `--processes` forwards SIGTERM to its siblings that way), then stops the worker."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        raise WorkerStopping

    return stop
