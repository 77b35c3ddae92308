"""The live page of a run: `GET /ui` (a static shell) and the data it polls, `GET /v1/ui/data`.

The shell (HTML, JavaScript and CSS from the package, no library, no external network) holds no data, so
it is served without the token: a browser cannot put a bearer token on a navigation anyway. The page
takes the token from the URL fragment `#token=...` (never sent to a server, so never in an access log)
and sends it as `Authorization: Bearer` on every data request, which the API's token check guards.

The data endpoint reads only what `/v1/status` and `/v1/results` read, plus the device records under
the output folder (`feles.records`). Every answer is incremental: `since` is the number of round records
the page already holds, `records` the number of device-record rounds; an answer carries only what came
after, so a poll stays small at 1,000 rounds.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from feles.config import SimulationSpec
from feles.orchestrator.limits import only_query
from feles.orchestrator.results import ResultsDocument
from feles.orchestrator.state import Progress
from feles.protocol import API_PREFIX, SimulationPhase, SimulationStatus, json_safe
from feles.records import SCHEMAS, Table, part_files, repetition_of, round_of

log = logging.getLogger("feles.orchestrator.web")

#: Where the page lives; `feles run` prints this path with the token in the fragment.
PAGE_PATH = "/ui"
#: Most rows and columns of the selection matrix: beyond, devices and rounds are binned.
MAX_MATRIX_ROWS = 100
MAX_MATRIX_COLUMNS = 200
#: Most bars of the participation histogram.
MAX_HISTOGRAM_BARS = 30

#: The page's two files beside it (the HTML shell itself is served at PAGE_PATH).
_ASSETS = {"live.js": "text/javascript", "live.css": "text/css"}
_SHELL_HEADERS = {
    # Everything comes from this server: a page that can reach nowhere else cannot leak the token.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class LiveSource(Protocol):
    """What the page reads of the orchestrator's state: the parts behind /v1/status and /v1/results."""

    spec: SimulationSpec
    results: ResultsDocument | None

    def snapshot(self) -> SimulationStatus: ...


class SelectionRound(BaseModel):
    """The fit selection of one round, per matrix row (a bin of `device_bin` consecutive devices)."""

    repetition: int
    round: int
    column: int = Field(description="The matrix column of the round (a bin of `round_bin` rounds).")
    selected: list[int] = Field(description="Per row: devices selected for fit.")
    failed: list[int] = Field(description="Per row: selected devices that failed.")
    jain: float | None = Field(
        description="Jain's index of the repetition's selection counts after this round (1: all equal)."
    )


class Histogram(BaseModel):
    """Devices by times selected for fit: bar i counts the devices selected [i * width, (i + 1) * width) times."""

    width: int
    counts: list[int]


class DeviceRecordsData(BaseModel):
    available: bool = Field(description="False while no device records exist under the output folder.")
    devices: int
    device_bin: int = Field(description="Devices per matrix row.")
    rows: int
    round_bin: int = Field(description="Rounds per matrix column.")
    columns: int
    since: int = Field(description="Index of the first round in `rounds`: 0 when the page must start over.")
    total: int = Field(description="Rounds of records so far: the next poll's `records`.")
    rounds: list[SelectionRound]
    histogram: Histogram | None = Field(description="Of the latest repetition with records.")


class LiveData(BaseModel):
    """One poll's answer: the status, and what the page does not hold yet."""

    run_id: str
    status: SimulationStatus
    jobs_done: int | None = Field(description="Jobs of the current round with a result.")
    since: int = Field(description="Index of the first record in `rounds`: 0 when the page must start over.")
    total: int = Field(description="Round records so far: the next poll's `since`.")
    rounds: list[dict[str, Any]] = Field(description="Round records as results.json has them (test_<metric>, ...).")
    repetitions: list[dict[str, Any]] = Field(description="Repetition summaries as results.json has them.")
    spec: dict[str, Any] | None = Field(description="The spec, on a poll with since=0 only.")
    devices: DeviceRecordsData


def live_data(
    status: SimulationStatus,
    results: ResultsDocument,
    since: int,
    devices: DeviceRecordsData,
    jobs_done: int | None = None,
) -> LiveData:
    """The answer to a poll of a page holding `since` round records (more than exist: start over)."""
    rounds = list(results.rounds)  # one copy: the loop thread appends meanwhile
    start = since if since <= len(rounds) else 0
    return LiveData(
        run_id=results.run_id,
        status=status,
        jobs_done=jobs_done,
        since=start,
        total=len(rounds),
        rounds=json_safe(results.round_rows(rounds[start:])),
        repetitions=json_safe(results.repetition_rows()),
        spec=results.spec.model_dump(mode="json") if start == 0 else None,
        devices=devices,
    )


def bin_size(count: int, most: int) -> int:
    """Items per bin so that `count` items make at most `most` bins."""
    return max(1, math.ceil(count / most))


def per_bin(items: np.ndarray, width: int, bins: int) -> list[int]:
    """How many of `items` (non-negative ints) fall into each of `bins` bins of `width`."""
    index = np.minimum(items.astype(np.int64) // width, bins - 1)
    return np.bincount(index, minlength=bins).tolist()


def jain_index(counts: np.ndarray) -> float | None:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all are equal, 1/n when one has all."""
    squares = float(np.square(counts, dtype=np.float64).sum())
    if squares == 0:
        return None
    return float(counts.sum(dtype=np.float64)) ** 2 / (len(counts) * squares)


def histogram(counts: np.ndarray, most: int = MAX_HISTOGRAM_BARS) -> Histogram:
    """Devices by selection count, in at most `most` bars of equal width."""
    top = int(counts.max()) if len(counts) else 0
    width = bin_size(top + 1, most)
    return Histogram(width=width, counts=per_bin(counts, width, top // width + 1))


def fit_selection(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The devices selected for fit in a round's records, and those of them that failed."""
    fit = table.filter(pc.equal(table["phase"], "fit"))
    devices = fit["device"].to_numpy()
    failed = fit["failed"].to_numpy(zero_copy_only=False)
    return devices, devices[failed]


@dataclass(frozen=True)
class MatrixShape:
    """How devices and rounds are binned into the selection matrix (fixed for a run)."""

    devices: int
    rounds: int
    device_bin: int
    round_bin: int

    @classmethod
    def of(cls, devices: int, rounds: int) -> MatrixShape:
        return cls(devices, rounds, bin_size(devices, MAX_MATRIX_ROWS), bin_size(rounds, MAX_MATRIX_COLUMNS))

    @property
    def rows(self) -> int:
        return math.ceil(self.devices / self.device_bin)

    @property
    def columns(self) -> int:
        return math.ceil(self.rounds / self.round_bin)


def selection_round(
    table: pa.Table, repetition: int, round_: int, shape: MatrixShape, counts: np.ndarray
) -> SelectionRound:
    """One round's matrix column contribution; adds its selection to the repetition's `counts`."""
    selected, failed = fit_selection(table)
    np.add.at(counts, np.minimum(selected, shape.devices - 1), 1)
    return SelectionRound(
        repetition=repetition,
        round=round_,
        column=min(round_ // shape.round_bin, shape.columns - 1),
        selected=per_bin(selected, shape.device_bin, shape.rows),
        failed=per_bin(failed, shape.device_bin, shape.rows),
        jain=jain_index(counts),
    )


@dataclass
class SelectionHistory:
    """Selection digests of the device records, each part file read once (parts are never rewritten)."""

    shape: MatrixShape
    rounds: list[SelectionRound] = field(default_factory=list)
    counts: dict[int, np.ndarray] = field(default_factory=dict)
    seen: set[Path] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, output_folder: str | Path) -> bool:
        """Digest the parts written since the last call; False while there are no records at all."""
        with self.lock:
            parts = part_files(output_folder, Table.RECORDS)
            for path in parts:
                if path not in self.seen:
                    self._digest(path)
            return bool(parts)

    def _digest(self, path: Path) -> None:
        self.seen.add(path)
        repetition = repetition_of(path)
        try:
            # The three columns the digest needs, not the whole part: 1,000 parts read in about a second.
            table = pq.read_table(path, columns=["phase", "device", "failed"], schema=SCHEMAS[Table.RECORDS])
        except (OSError, pa.ArrowException) as error:
            # One unreadable part costs the page a matrix column, not every poll from now on.
            log.warning("device records %s skipped by the live page: %s", path, error)
            return
        counts = self.counts.setdefault(repetition, np.zeros(self.shape.devices, dtype=np.int64))
        self.rounds.append(selection_round(table, repetition, round_of(path), self.shape, counts))

    def data(self, since: int, available: bool) -> DeviceRecordsData:
        with self.lock:
            rounds = self.rounds[since:] if since <= len(self.rounds) else self.rounds
            latest = self.counts[max(self.counts)] if self.counts else None
            total = len(self.rounds)
        return DeviceRecordsData(
            available=available,
            devices=self.shape.devices,
            device_bin=self.shape.device_bin,
            rows=self.shape.rows,
            round_bin=self.shape.round_bin,
            columns=self.shape.columns,
            since=since if since <= total else 0,
            total=total,
            rounds=rounds,
            histogram=histogram(latest) if latest is not None else None,
        )


#: The phases of a run that is over.
ENDED = frozenset({SimulationPhase.SUCCEEDED, SimulationPhase.FAILED})


def _note_end_seen(progress: Progress) -> None:
    progress.page_saw_end = True


def _source(request: Request) -> LiveSource:
    return request.app.state.orchestrator


def _history(request: Request, source: LiveSource) -> SelectionHistory:
    """The app's selection history, made on first use (one per orchestrator app)."""
    history = getattr(request.app.state, "selection_history", None)
    if history is None:
        simulation = source.spec.simulation
        shape = MatrixShape.of(source.spec.devices.num, simulation.num_rounds)
        history = request.app.state.selection_history = SelectionHistory(shape)
    return history


def _jobs_done(source: LiveSource) -> int | None:
    # The queue's count of finished jobs, as /metrics reads it; None for a source without a queue.
    queue = getattr(source, "queue", None)
    return queue.counts().done if queue is not None else None


@cache
def _asset(name: str) -> bytes:
    return resources.files("feles.orchestrator").joinpath("static", name).read_bytes()


def live_router(require_token: Callable[..., None]) -> APIRouter:
    """The page (open: it holds no data) and its data endpoint (behind `require_token`)."""
    router = APIRouter()

    @router.get(PAGE_PATH, include_in_schema=False)
    def page() -> Response:
        return Response(_asset("live.html"), media_type="text/html", headers=_SHELL_HEADERS)

    @router.get(f"{PAGE_PATH}/static/{{name}}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in _ASSETS:
            raise HTTPException(HTTPStatus.NOT_FOUND, f"no asset {name!r}")
        return Response(_asset(name), media_type=_ASSETS[name], headers=_SHELL_HEADERS)

    @router.get(
        f"{API_PREFIX}/ui/data",
        response_model=LiveData,
        dependencies=[Depends(require_token), Depends(only_query("since", "records"))],
        responses={401: {"description": "Missing or wrong bearer token"}},
    )
    def data(
        request: Request,
        since: Annotated[int, Query(ge=0, description="Round records the page holds.")] = 0,
        records: Annotated[int, Query(ge=0, description="Rounds of device records the page holds.")] = 0,
    ) -> Response:
        """Status, round records after `since`, device-record digests after `records`: what the page polls."""
        source = _source(request)
        progress = getattr(source, "progress", None)
        if progress is not None:
            progress.page_polled_at = time.time()
        history = _history(request, source)
        available = history.update(source.spec.simulation.output_folder)
        status = source.snapshot()
        answer = live_data(status, source.results, since, history.data(records, available), _jobs_done(source))
        # Noted once the answer has gone out: feles run stops the orchestrator as soon as it reads it.
        seen = BackgroundTask(_note_end_seen, progress) if progress is not None and status.phase in ENDED else None
        # pydantic writes NaN and infinities as null (a diverged loss), which JSON.parse accepts.
        return Response(
            answer.model_dump_json(),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
            background=seen,
        )

    return router
