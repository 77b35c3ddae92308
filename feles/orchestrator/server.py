"""Runs the orchestrator: the API under uvicorn and the simulation loop in a thread beside it."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from feles.config import SimulationSpec
from feles.data import default_model_for
from feles.orchestrator.api import create_app
from feles.orchestrator.checkpoint import Checkpoint, CheckpointError, checkpoint_path, load_checkpoint
from feles.orchestrator.collector import settle_collector
from feles.orchestrator.jobs import JobQueue
from feles.orchestrator.listener import bind_socket, inherited_socket
from feles.orchestrator.loop import RunParts, SimulationLoop
from feles.orchestrator.metrics import OrchestratorMetrics
from feles.orchestrator.notify import JobSignal
from feles.orchestrator.runner import QueueRunner
from feles.orchestrator.state import OrchestratorState
from feles.orchestrator.workers import DEFAULT_EXPIRY_SECONDS, WorkerRegistry
from feles.protocol import SimulationPhase
from feles.records import records_root

log = logging.getLogger("feles.orchestrator")

#: Seconds the API stays up after the end so that polling workers learn it (410) and exit.
EXIT_GRACE_SECONDS = 3.0
#: The file written (and removed) at start to prove that the output folder takes files.
PROBE_FILE = ".feles-write-probe"


class OutputFolderError(RuntimeError):
    """The output folder cannot hold the results: the message names it and the reason."""


def check_output_folder(folder: str | Path) -> None:
    """Create the output folder if needed and write, fsync and remove a probe file in it, before anything runs.

    An unwritable folder, a path that is a file or a full disk then stop the orchestrator at once with a clear
    message instead of failing the run after its first round.
    """
    path = Path(folder)
    probe = path / PROBE_FILE
    try:
        path.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as handle:
            handle.write(b"feles\n")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputFolderError(f"output folder {str(path)!r} cannot hold the results: {reason}") from None


@dataclass(frozen=True)
class OrchestratorOptions:
    host: str = "0.0.0.0"
    port: int = 8080
    port_file: Path | None = None
    lease_seconds: float = 120.0
    data_dir: str | None = None
    exit_on_completion: bool = False
    threads: int = 2
    api_token: str | None = None
    fresh: bool = False
    fd: int | None = None


def build_state(
    spec: SimulationSpec, lease_seconds: float, metrics: OrchestratorMetrics, run_id: str | None = None
) -> OrchestratorState:
    """An OrchestratorState whose queue wakes long-polls on submit (a new run id unless given)."""
    signal = JobSignal()
    queue = JobQueue(lease_seconds, on_submit=signal.notify, on_round_trip=metrics.round_trip.observe)
    model_name = spec.simulation.model or default_model_for(spec.simulation.dataset)
    extra = {"run_id": run_id} if run_id else {}
    # A registration outlives a few leases without a request (a worker heartbeats every third of one).
    workers = WorkerRegistry(expiry=max(DEFAULT_EXPIRY_SECONDS, 3 * lease_seconds))
    state = OrchestratorState(
        spec=spec, queue=queue, model_name=model_name, job_signal=signal, workers=workers, **extra
    )
    metrics.attach(state)
    return state


#: How each command starts over on a folder whose checkpoint it cannot resume.
START_OVER = "feles run without --resume, feles orchestrator --fresh"


def resumable_checkpoint(spec: SimulationSpec, fresh: bool) -> Checkpoint | None:
    """The output folder's checkpoint of this same simulation; an error if it belongs to another one."""
    folder = spec.simulation.output_folder
    if fresh:
        refuse_another_runs_folder(spec)
        checkpoint_path(folder).unlink(missing_ok=True)
        return None
    checkpoint = load_checkpoint(folder)
    if checkpoint is None:
        return None
    if _comparable(_with_defaults(checkpoint.spec, folder)) != _comparable(spec.model_dump(mode="json")):
        raise CheckpointError(
            f"{checkpoint_path(folder)} belongs to a different simulation spec; "
            f"use another output folder, or start over, discarding it ({START_OVER})"
        )
    return checkpoint


def refuse_another_runs_folder(spec: SimulationSpec) -> None:
    """OutputFolderError if the output folder holds the checkpoint of a run with another output_file.

    A folder holds one run's checkpoint and device records: a fresh start discards them. Runs that share a folder
    and differ in their results file (as the original FELES's configs do) would discard each other's silently, and
    the analyzer would then show one run's device records for both.
    """
    folder = spec.simulation.output_folder
    try:
        previous = load_checkpoint(folder)
    except CheckpointError:
        return  # unreadable: nothing of it can be lost, and a fresh start discards it
    other = previous.spec.get("simulation", {}).get("output_file") if previous is not None else None
    if other is None or other == spec.simulation.output_file:
        return
    raise OutputFolderError(
        f"output folder {folder!r} holds the checkpoint and device records of the run whose results are {other}; "
        f"starting the run of {spec.simulation.output_file} there would discard them: give it its own "
        f"simulation.output_folder (or remove {checkpoint_path(folder)} and {records_root(folder)} to discard them)"
    )


def _with_defaults(document: dict, folder: str) -> dict:
    """A checkpoint's spec as this version writes it: keys added since it was written take their defaults."""
    try:
        return SimulationSpec.model_validate(document).model_dump(mode="json")
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise CheckpointError(
            f"{checkpoint_path(folder)} holds a spec this version cannot read ({field}: {first['msg']}); "
            f"use another output folder, or start over, discarding it ({START_OVER})"
        ) from None


def _comparable(spec: dict) -> dict:
    # Moving the results (another mount point, another folder) must not prevent a resume.
    simulation = {key: value for key, value in spec["simulation"].items() if key != "output_folder"}
    return {**spec, "simulation": simulation}


def loop_parts(state: OrchestratorState) -> RunParts:
    """The parts of the state the simulation loop reads and writes; its jobs go through the queue."""
    return RunParts(
        spec=state.spec,
        run_id=state.run_id,
        model_name=state.model_name,
        runner=QueueRunner(state.queue),
        models=state.models,
        progress=state.progress,
        results=state.results,
    )


def build_app(spec: SimulationSpec, options: OrchestratorOptions) -> tuple[FastAPI, OrchestratorState]:
    """The API with a lifespan that runs (or resumes) the simulation loop while the server is up."""
    check_output_folder(spec.simulation.output_folder)
    checkpoint = resumable_checkpoint(spec, options.fresh)
    metrics = OrchestratorMetrics()
    state = build_state(spec, options.lease_seconds, metrics, checkpoint.run_id if checkpoint else None)
    simulation = SimulationLoop(loop_parts(state), options.data_dir, checkpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.job_signal.bind(asyncio.get_running_loop())
        thread = threading.Thread(target=simulation.run, name="simulation-loop", daemon=True)
        thread.start()
        yield
        simulation.stop()
        thread.join(timeout=10)

    return create_app(state, options.api_token, lifespan=lifespan, metrics=metrics), state


def serve(spec: SimulationSpec, options: OrchestratorOptions) -> int:
    """Serve until stopped (or until the simulation ends, with exit_on_completion); 0 on success."""
    torch.set_num_threads(options.threads)
    sock = inherited_socket(options.fd) if options.fd is not None else bind_socket(options.host, options.port)
    app, state = build_app(spec, options)
    settle_collector()
    host, port = sock.getsockname()[:2]
    if options.port_file is not None:
        options.port_file.write_text(f"{port}\n")
    server = OrchestratorServer(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"), state)
    if options.exit_on_completion:
        threading.Thread(target=_exit_when_finished, args=(state, server), daemon=True).start()
    log.info("orchestrator listening on %s:%d (run %s)", host, port, state.run_id)
    server.run(sockets=[sock])
    return 1 if state.progress.phase is SimulationPhase.FAILED else 0


class OrchestratorServer(uvicorn.Server):
    """uvicorn's server, except that SIGTERM (or SIGINT) after the simulation's end exits at once.

    By then the loop has written the results, the records and the checkpoint; uvicorn's graceful shutdown
    (a 0.1 s tick, then closing connections and the lifespan) took 0.2 s, all of it after the run's end, which
    `feles run` waited for. Before the end, the signal stops the loop gracefully as before.
    """

    def __init__(self, config: uvicorn.Config, state: OrchestratorState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.state.finished:
            logging.shutdown()
            os._exit(1 if self.state.progress.phase is SimulationPhase.FAILED else 0)
        super().handle_exit(sig, frame)


def _exit_when_finished(state: OrchestratorState, server: uvicorn.Server) -> None:
    while not state.finished:
        threading.Event().wait(0.2)
    threading.Event().wait(EXIT_GRACE_SECONDS)
    server.should_exit = True
