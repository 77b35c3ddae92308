"""The orchestrator's HTTP API (FastAPI): thin handlers over the OrchestratorState and its job queue."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from http import HTTPStatus
from typing import Annotated, Any, Literal, TypeVar

import torch
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import Route, compile_path
from starlette.types import Scope

from feles import __version__
from feles.api_token import tokens_match
from feles.orchestrator.batching import ResultRoom, WorkLeft, batch_body_limit, lease_limits
from feles.orchestrator.jobs import Completion, LeaseChange, Refusal
from feles.orchestrator.limits import DEFAULT_BODY_LIMIT, Admission, only_query
from feles.orchestrator.metrics import OrchestratorMetrics
from feles.orchestrator.state import OrchestratorState
from feles.orchestrator.web import live_router
from feles.protocol import (
    API_PREFIX,
    TENSOR_MEDIA_TYPE,
    WORKER_SECRET_HEADER,
    BatchResultAck,
    CodecError,
    Job,
    JobBatch,
    JobResult,
    JobTerms,
    Phase,
    RegisterReply,
    RegisterRequest,
    ResultAck,
    ResultOutcome,
    SimulationStatus,
    check_examples,
    check_finite,
    check_test_result,
    check_update,
    decode_parts,
    decode_result,
    has_layout,
    json_safe,
    split_extra,
    update_distances,
)
from feles.records import PARQUET_MEDIA_TYPE, Table, read_table, table_bytes

log = logging.getLogger("feles.orchestrator.api")

T = TypeVar("T")
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

#: A result body may be this many times the encoded global model (the model's tensors plus algorithm tensors
#: of the model's size, e.g. SCAFFOLD's control variates), plus RESULT_SLACK_BYTES of metadata.
RESULT_LIMIT_FACTOR = 3
RESULT_SLACK_BYTES = 1024 * 1024
#: Longest long-poll a worker may ask for, in seconds.
MAX_WAIT_SECONDS = 60.0
#: Most jobs a worker may ask for in one request (the orchestrator hands out at most MAX_BATCH_JOBS).
MAX_REQUESTED_JOBS = 1000
#: Malformed answers to one test shard before the simulation fails (each time it goes to another worker first).
MAX_BAD_TEST_RESULTS = 3


# Dependencies are async: FastAPI runs a sync one in a thread pool, a hop that costs more than what they do.
async def get_state(request: Request) -> OrchestratorState:
    return request.app.state.orchestrator


bearer = HTTPBearer(auto_error=False, description="The simulation's API token.")


async def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """401 unless the request carries the orchestrator's bearer token (none configured: open API)."""
    expected: str | None = request.app.state.api_token
    if expected is None:
        return
    given = f"Bearer {credentials.credentials}" if credentials else None
    if not tokens_match(expected, given):
        raise HTTPException(
            HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def _forbidden(worker: str) -> HTTPException:
    return HTTPException(HTTPStatus.FORBIDDEN, f"missing or wrong {WORKER_SECRET_HEADER} for worker {worker!r}")


def require_worker(request: Request, worker: str) -> None:
    """403 unless the request carries the secret `worker` got at registration (X-Feles-Worker-Secret)."""
    state: OrchestratorState = request.app.state.orchestrator
    if not state.workers.authenticate(worker, request.headers.get(WORKER_SECRET_HEADER)):
        raise _forbidden(worker)


StateDep = Annotated[OrchestratorState, Depends(get_state)]
WorkerQuery = Annotated[str, Query(min_length=1, max_length=200)]
router = APIRouter(
    prefix=API_PREFIX,
    dependencies=[Depends(require_token)],
    responses={
        400: {"description": "Body that cannot be parsed"},
        401: {"description": "Missing or wrong bearer token"},
        413: {"description": "Body too large"},
    },
)


@router.post("/workers", response_model=RegisterReply, status_code=HTTPStatus.CREATED)
def register_worker(body: RegisterRequest, state: StateDep) -> RegisterReply:
    """Register a worker; the reply carries everything it needs to run jobs."""
    worker_id, secret = state.workers.register(body.name)
    log.info("worker %s registered", worker_id)
    return RegisterReply(
        worker_id=worker_id,
        worker_secret=secret,
        spec=state.spec,
        run_id=state.run_id,
        model_name=state.model_name,
        lease_seconds=state.queue.lease_seconds,
    )


#: What a lease request may answer besides 200, for both lease routes' OpenAPI.
LEASE_RESPONSES: dict[int | str, dict[str, Any]] = {
    204: {"description": "No job yet"},
    403: {"description": "Wrong worker secret"},
    404: {"description": "Unknown worker"},
    410: {"description": "Simulation over"},
}


@router.get(
    "/jobs/next",
    response_model=Job,
    responses=LEASE_RESPONSES,
)
async def next_job(
    request: Request,
    state: StateDep,
    worker: WorkerQuery,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 20.0,
) -> Job | Response:
    """Long-poll for the next job: 200 with a job, 204 when none came within `wait` seconds."""

    def take() -> Job | None:
        job = state.queue.lease(worker)
        if job is not None:
            request.app.state.metrics.lease_batch.observe(1)
        return job

    return await _long_poll(request, state, worker, wait, take)


@router.get(
    "/jobs/batch",
    response_model=JobBatch,
    responses=LEASE_RESPONSES,
)
async def next_jobs(
    request: Request,
    state: StateDep,
    worker: WorkerQuery,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 20.0,
    max: Annotated[int, Query(ge=1, le=MAX_REQUESTED_JOBS, description="Most jobs the worker takes.")] = 1,
) -> Response:
    """Long-poll for jobs: 200 with up to `max` jobs (as many as the orchestrator's batch rule allows, each
    with its own lease), 204 when none came within `wait` seconds."""

    def take() -> Response | None:
        queue = state.queue
        queue.reclaim_expired()  # expired leases count among the jobs waiting for the fair share
        left = WorkLeft(queue.waiting_work, queue.held_work(), state.workers.live())
        size, work = lease_limits(max, worker, left, queue.pass_cost.value)
        leased = queue.lease_json(worker, size, work, ResultRoom.for_model(state.models.encoded_size()))
        if leased is None:
            return None
        count, body = leased
        request.app.state.metrics.lease_batch.observe(count)
        # Rendered by the queue from its blocks of jobs: FastAPI would build, dump and validate each job again.
        return Response(body, media_type="application/json")

    return await _long_poll(request, state, worker, wait, take)


async def _long_poll(
    request: Request, state: StateDep, worker: str, wait: float, take: Callable[[], T | None]
) -> T | Response:
    deadline = time.monotonic() + wait
    checked = False
    while True:
        if state.queue.closed:
            return Response(status_code=HTTPStatus.GONE)
        # Checked before every lease: a worker that left during the long-poll (its client is gone)
        # must not be handed a job that would then wait out its lease. `leave` runs on this event
        # loop too, so nothing comes between this check and the lease.
        if not state.workers.touch(worker):
            raise HTTPException(HTTPStatus.NOT_FOUND, f"unknown worker {worker!r}: register again")
        if not checked:
            require_worker(request, worker)
            checked = True
        taken = take()
        if taken is not None:
            return taken
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Response(status_code=HTTPStatus.NO_CONTENT)
        await state.job_signal.wait(min(remaining, 0.5))


@router.get(
    "/models/{version}",
    response_class=Response,
    responses={200: {"content": {TENSOR_MEDIA_TYPE: {}}}, 404: {"description": "Unknown or expired version"}},
)
async def get_model(version: int, state: StateDep) -> Response:
    """The global model's weights of `version` as safetensors bytes (encoded once per version: served on the event
    loop, without the thread-pool hop of a plain route, as both workers ask for it at each phase end)."""
    data = state.models.get(version)
    if data is None:
        raise HTTPException(HTTPStatus.NOT_FOUND, f"model version {version} is not available")
    headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    return Response(content=data, media_type=TENSOR_MEDIA_TYPE, headers=headers)


@router.get(
    "/jobs/{job_id}/tensors",
    response_class=Response,
    responses={200: {"content": {TENSOR_MEDIA_TYPE: {}}}, 404: {"description": "Unknown job or no tensors"}},
)
def get_job_tensors(job_id: str, state: StateDep) -> Response:
    """The algorithm tensors that travel with a job (e.g. SCAFFOLD's control variates), safetensors."""
    data = state.queue.payload(job_id)
    if data is None:
        raise HTTPException(HTTPStatus.NOT_FOUND, f"job {job_id!r} is unknown or has no tensors")
    return Response(content=data, media_type=TENSOR_MEDIA_TYPE)


@router.post(
    "/jobs/{job_id}/result",
    response_model=ResultAck,
    responses={
        403: {"description": "Wrong worker secret, or the metadata names another worker"},
        404: {"description": "Unknown job"},
        409: {"description": "The job already has a result, its round is over, or it was never leased to this worker"},
        413: {"description": "Body too large"},
        422: {"description": "Malformed result"},
    },
    openapi_extra={"requestBody": {"content": {TENSOR_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
async def post_result(job_id: str, worker: WorkerQuery, request: Request, state: StateDep) -> ResultAck:
    """A job's result from a worker the job was leased to: safetensors bytes with the JobResult metadata;
    the first result wins."""
    require_worker(request, worker)
    outcome = _not_held(state, job_id, worker) or _accept_result(state, worker, await request.body(), job_id)
    if not outcome.accepted:
        raise HTTPException(outcome.status, outcome.reason)
    return ResultAck(accepted=True, reason="accepted")


@router.post(
    "/jobs/results",
    response_model=BatchResultAck,
    responses={
        403: {"description": "Wrong worker secret"},
        413: {"description": "Body too large"},
        422: {"description": "The body is not a sequence of length-prefixed parts"},
    },
    openapi_extra={"requestBody": {"content": {TENSOR_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
async def post_results(worker: WorkerQuery, request: Request, state: StateDep) -> Response:
    """Several jobs' results in one body (each part what POST /v1/jobs/{id}/result takes, after its 8-byte
    little-endian length); answered per part, each judged as the single-result route judges it."""
    require_worker(request, worker)
    try:
        parts = decode_parts(await request.body())
    except CodecError as error:
        raise HTTPException(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from None
    decoded = [_decode(part) for part in parts]
    outcomes = _judge_parts(state, worker, decoded, _update_distances(state, decoded))
    acknowledgement = BatchResultAck.model_construct(results=outcomes)
    # Serialized here: the outcomes are valid already, and FastAPI would validate each of them again.
    return Response(acknowledgement.model_dump_json(), media_type="application/json")


Decoded = tuple[JobResult, dict[str, torch.Tensor]]


def _judge_parts(
    state: OrchestratorState, worker: str, decoded: list[Decoded | ResultOutcome], distances: dict[int, float]
) -> list[ResultOutcome]:
    """Each part judged in order as the single-result route judges it; the results that pass are stored
    together, under one hold of the queue's lock, except that a job named again has its earlier part stored
    before the later one is judged (which then answers 409, as one by one)."""
    outcomes: list[ResultOutcome | None] = []
    passed: dict[str, int] = {}  # job id -> its part, waiting to be stored
    for index, item in enumerate(decoded):
        if isinstance(item, ResultOutcome):
            outcomes.append(item)
            continue
        if item[0].job_id in passed:
            _store(state, worker, decoded, outcomes, passed)
        outcome = _refuse_result(state, worker, *item, distance=distances.get(index))
        outcomes.append(outcome)
        if outcome is None:
            passed[item[0].job_id] = index
    _store(state, worker, decoded, outcomes, passed)
    return outcomes  # type: ignore[return-value]  # _store filled in every None


def _store(
    state: OrchestratorState,
    worker: str,
    decoded: list[Decoded | ResultOutcome],
    outcomes: list[ResultOutcome | None],
    passed: dict[str, int],
) -> None:
    """Store the passed parts' results; their outcomes say whether each was stored."""
    answers = [(job_id, *decoded[index]) for job_id, index in passed.items()]
    for (job_id, index), completion in zip(passed.items(), state.queue.complete_many(answers, worker), strict=True):
        outcomes[index] = _stored(completion, job_id)
    passed.clear()


def _refusal(job_id: str | None, status: HTTPStatus, reason: str) -> ResultOutcome:
    return ResultOutcome(job_id=job_id, status=int(status), accepted=False, reason=reason)


def _not_held(state: OrchestratorState, job_id: str, worker: str) -> ResultOutcome | None:
    """Why `worker` may not answer the job (unknown, already answered, never leased to it), or None."""
    return _completion_refusal(state.queue.held_by(job_id, worker), job_id)


def _accept_result(state: OrchestratorState, worker: str, data: bytes, job_id: str) -> ResultOutcome:
    """Check the result message of the job the URL names (its lease already checked) and store it; the outcome
    says whether it was accepted, else why not."""
    try:
        result, tensors = decode_result(data)
    except CodecError as error:
        return _malformed(state, job_id, worker, error)
    return _judge_result(state, worker, result, tensors, job_id)


def _decode(part: bytes) -> Decoded | ResultOutcome:
    """A batch's part decoded, or its refusal (the job it names is unknown until it decodes)."""
    try:
        return decode_result(part)
    except CodecError as error:
        return _refusal(None, HTTPStatus.UNPROCESSABLE_ENTITY, str(error))


def _update_distances(state: OrchestratorState, decoded: list[Decoded | ResultOutcome]) -> dict[int, float]:
    """The distance from the global model of each part's update that has the model's layout, measured together
    (update_distances); the parts' judgments use them instead of measuring one by one."""
    reference = state.models.reference()
    updates = {}
    for index, item in enumerate(decoded):
        if not isinstance(item, ResultOutcome) and item[1]:
            model, _ = split_extra(item[1])
            if has_layout(model, reference):
                updates[index] = model
    return dict(zip(updates, update_distances(list(updates.values()), reference), strict=True))


def _judge_result(
    state: OrchestratorState, worker: str, result: JobResult, tensors: dict[str, torch.Tensor], job_id: str
) -> ResultOutcome:
    """Check a decoded result of the job the URL names (its lease already checked) and store it."""
    refused = _refuse_result(state, worker, result, tensors, job_id)
    return refused or _stored(state.queue.complete(job_id, result, tensors, worker), job_id)


def _stored(completion: Completion, job_id: str) -> ResultOutcome:
    refused = _completion_refusal(completion, job_id)
    return refused or ResultOutcome(job_id=job_id, status=HTTPStatus.OK, accepted=True, reason="accepted")


def _refuse_result(
    state: OrchestratorState,
    worker: str,
    result: JobResult,
    tensors: dict[str, torch.Tensor],
    job_id: str | None = None,
    distance: float | None = None,
) -> ResultOutcome | None:
    """Why a decoded result may not be stored, or None when it passes every check. `job_id` is the URL's (its
    lease already checked); None takes the job from the metadata (a batch's part). `distance`: the update's,
    when measured with its batch's."""
    if job_id is None:
        job_id = result.job_id
        refused = _not_held(state, job_id, worker)
        if refused is not None:
            return refused
    try:
        if result.job_id != job_id:
            raise CodecError("job_id in the metadata differs from the URL")
        if result.worker_id != worker:
            return _refusal(job_id, HTTPStatus.FORBIDDEN, _forbidden(result.worker_id).detail)
        _check_result(state, state.queue.terms(job_id), result, tensors, distance)
    except CodecError as error:
        return _malformed(state, job_id, worker, error)
    return None


def _check_result(
    state: OrchestratorState,
    job: JobTerms | None,
    result: JobResult,
    tensors: dict[str, torch.Tensor],
    distance: float | None = None,
) -> None:
    """CodecError unless the result fits its job: examples, tensor names, shapes, values, bounds."""
    if job is not None and job.phase is Phase.FIT:
        check_examples(job, result)
        model, extra = split_extra(tensors)
        check_update(model, state.models.reference(), distance)
        check_finite(extra)
    elif job is not None and job.phase is Phase.EVAL:
        check_examples(job, result)
        if tensors:
            raise CodecError(f"an eval result carries no tensors, got {sorted(tensors)[:5]}")
    elif job is not None and job.phase is Phase.TEST:
        check_test_result(job, result, tensors)


def _malformed(state: OrchestratorState, job_id: str, worker: str, error: CodecError) -> ResultOutcome:
    """A malformed answer: a test shard goes to another worker first, any other job fails its device."""
    job = state.queue.terms(job_id)
    if job is not None and job.phase is Phase.TEST:
        # Another worker may well evaluate a test shard right: the shard goes to another worker first,
        # and the simulation fails only after MAX_BAD_TEST_RESULTS malformed answers.
        refusal = state.queue.refuse(job_id, worker, str(error), MAX_BAD_TEST_RESULTS)
        if refusal is not Refusal.IGNORED:
            log.warning("test job %s: malformed answer from %s (%s): %s", job_id, worker, refusal.value, error)
    elif state.queue.reject(job_id):
        # A worker re-running the job would produce the same bytes: the device fails the round instead.
        log.warning("job %s rejected: %s", job_id, error)
    return _refusal(job_id, HTTPStatus.UNPROCESSABLE_ENTITY, str(error))


def _completion_refusal(completion: Completion | None, job_id: str) -> ResultOutcome | None:
    if completion is Completion.UNKNOWN:
        return _refusal(job_id, HTTPStatus.NOT_FOUND, f"unknown job {job_id!r}")
    if completion is Completion.DUPLICATE:
        return _refusal(job_id, HTTPStatus.CONFLICT, f"job {job_id!r} already has a result or its round is over")
    if completion is Completion.NOT_HOLDER:
        return _refusal(job_id, HTTPStatus.CONFLICT, f"job {job_id!r} was never leased to this worker")
    return None


@router.post(
    "/jobs/{job_id}/heartbeat",
    responses={
        403: {"description": "Wrong worker secret"},
        404: {"description": "Unknown job"},
        409: {"description": "Job not leased to this worker"},
    },
)
async def heartbeat(job_id: str, worker: WorkerQuery, request: Request, state: StateDep) -> dict[str, float]:
    """Extend the lease of a job the worker is still running."""
    require_worker(request, worker)
    _lease_answer(state.queue.extend(job_id, worker), job_id)
    state.workers.touch(worker)
    return {"lease_seconds": state.queue.lease_seconds}


@router.delete(
    "/workers/{worker_id}",
    responses={403: {"description": "Wrong worker secret"}, 404: {"description": "Unknown worker"}},
)
async def leave(worker_id: str, request: Request, state: StateDep) -> dict[str, list[str]]:
    """A worker is stopping: its leased jobs go back to the queue at once, first in line."""
    if worker_id not in state.workers:
        raise HTTPException(HTTPStatus.NOT_FOUND, f"unknown worker {worker_id!r}")
    require_worker(request, worker_id)
    if not state.workers.forget(worker_id):
        raise HTTPException(HTTPStatus.NOT_FOUND, f"unknown worker {worker_id!r}")
    released = state.queue.release_worker(worker_id)
    log.info("worker %s left; jobs given back: %s", worker_id, released or "none")
    return {"released": released}


def _lease_answer(change: LeaseChange, job_id: str) -> None:
    if change is LeaseChange.UNKNOWN:
        raise HTTPException(HTTPStatus.NOT_FOUND, f"unknown job {job_id!r}")
    if change is LeaseChange.NOT_HOLDER:
        raise HTTPException(HTTPStatus.CONFLICT, f"job {job_id!r} is not leased to this worker")


@router.get("/status", response_model=SimulationStatus)
def get_simulation_status(state: StateDep) -> SimulationStatus:
    return state.snapshot()


@router.get("/results")
def get_results(state: StateDep) -> JSONResponse:
    """The full results document so far (spec, repetitions, rounds)."""
    return JSONResponse(state.results.to_dict())


@router.get(
    "/results/devices",
    response_class=Response,
    dependencies=[Depends(only_query("table", "repetition", "round", "format"))],
    responses={
        200: {
            "description": "The rows as Parquet (default) or JSON (`format=json`: a list of row objects)",
            "content": {PARQUET_MEDIA_TYPE: {}, "application/json": {}},
        }
    },
)
def get_device_records(
    state: StateDep,
    table: Table = Table.RECORDS,
    repetition: Annotated[int | None, Query(ge=0)] = None,
    round: Annotated[int | None, Query(ge=0)] = None,
    format: Literal["parquet", "json"] = "parquet",
) -> Response:
    """Device records written so far (feles/records.py): every row, or those of a repetition and a round."""
    rows = read_table(state.spec.simulation.output_folder, table, repetition, round)
    if format == "json":
        return JSONResponse(json_safe(rows.to_pylist()))
    return Response(content=table_bytes(rows), media_type=PARQUET_MEDIA_TYPE)


health = APIRouter()


@health.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics (no token: scrapers see numbers, never data or the spec)."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@health.get("/readyz", responses={503: {"description": "Not ready"}})
def readyz(state: StateDep) -> JSONResponse:
    """Ready once the first model version is published (workers can start)."""
    ready = state.models.version >= 0
    code = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
    return JSONResponse({"ready": ready, "phase": state.progress.phase.value}, status_code=code)


#: The result route's paths: their bodies are model-sized, every other route's are small JSON documents.
RESULT_PATH = re.compile(rf"^{re.escape(API_PREFIX)}/jobs/[^/]+/result$")
#: The batch results route: model-sized parts, as many as a batch may hold (feles.orchestrator.batching).
RESULTS_PATH = f"{API_PREFIX}/jobs/results"


def result_limit(state: OrchestratorState) -> int:
    """Largest result body: RESULT_LIMIT_FACTOR x the encoded global model + RESULT_SLACK_BYTES."""
    return RESULT_LIMIT_FACTOR * state.models.encoded_size() + RESULT_SLACK_BYTES


def body_limit_for(scope: Scope) -> int | None:
    """The body limit of a request's route (a result's derives from the model's size); None if no route
    matches its path, so that it is refused before its body is read."""
    app = scope["app"]
    # Compiled path patterns, not the router's own matching: FastAPI's rebuilds route state on every match
    # (~130 us a request, 10 % of a busy orchestrator's time with tiny jobs).
    if not any(pattern.match(scope["path"]) for pattern in app.state.route_patterns):
        return None
    if scope["method"] == "POST" and RESULT_PATH.match(scope["path"]):
        return result_limit(app.state.orchestrator)
    if scope["method"] == "POST" and scope["path"] == RESULTS_PATH:
        return batch_body_limit(app.state.orchestrator.models.encoded_size())
    return DEFAULT_BODY_LIMIT


def authorized(scope: Scope) -> bool:
    """Whether a request may go on: /v1 routes need the bearer token (checked before any body is read)."""
    expected: str | None = scope["app"].state.api_token
    if expected is None or not scope["path"].startswith(f"{API_PREFIX}/"):
        return True
    headers = dict(scope["headers"])
    authorization = headers.get(b"authorization")
    return tokens_match(expected, authorization.decode("latin-1") if authorization is not None else None)


def create_app(
    state: OrchestratorState,
    api_token: str | None,
    lifespan: Lifespan | None = None,
    metrics: OrchestratorMetrics | None = None,
) -> FastAPI:
    """The FastAPI application serving `state`; `api_token` None leaves /v1 open."""
    app = FastAPI(title="FELES orchestrator", version=__version__, lifespan=lifespan)
    app.state.orchestrator = state
    app.state.api_token = api_token
    if metrics is None:
        metrics = OrchestratorMetrics()
        metrics.attach(state)
    app.state.metrics = metrics
    app.add_middleware(Admission, limit_for=body_limit_for, authorized=authorized)
    routers = (router, health, live_router(require_token))
    for included in routers:
        app.include_router(included)
    paths = [route.path for route in app.router.routes if isinstance(route, Route)]
    paths += [route.path for included in routers for route in included.routes if isinstance(route, Route)]
    app.state.route_patterns = tuple(compile_path(path)[0] for path in paths)
    return app
