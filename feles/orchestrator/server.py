"""Runs the orchestrator: the API under uvicorn and the simulation loop in a thread beside it."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI

from feles.config import SimulationSpec
from feles.data import default_model_for
from feles.orchestrator.api import create_app
from feles.orchestrator.jobs import JobQueue
from feles.orchestrator.loop import SimulationLoop
from feles.orchestrator.notify import JobSignal
from feles.orchestrator.status import OrchestratorStatus

log = logging.getLogger("feles.orchestrator")

#: Seconds the API stays up after the end so that polling workers learn it (410) and exit.
EXIT_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class OrchestratorOptions:
    host: str = "0.0.0.0"
    port: int = 8080
    port_file: Path | None = None
    lease_seconds: float = 120.0
    data_dir: str | None = None
    exit_on_completion: bool = False
    threads: int = 2


def build_status(spec: SimulationSpec, lease_seconds: float) -> OrchestratorStatus:
    """A fresh OrchestratorStatus whose queue wakes long-polls on submit."""
    signal = JobSignal()
    queue = JobQueue(lease_seconds, on_submit=signal.notify)
    model_name = spec.simulation.model or default_model_for(spec.simulation.dataset)
    return OrchestratorStatus(spec=spec, queue=queue, model_name=model_name, job_signal=signal)


def build_app(spec: SimulationSpec, options: OrchestratorOptions) -> tuple[FastAPI, OrchestratorStatus]:
    """The API with a lifespan that runs the simulation loop while the server is up."""
    state = build_status(spec, options.lease_seconds)
    simulation = SimulationLoop(state, options.data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.job_signal.bind(asyncio.get_running_loop())
        thread = threading.Thread(target=simulation.run, name="simulation-loop", daemon=True)
        thread.start()
        yield
        simulation.stop_event.set()
        state.queue.close()
        thread.join(timeout=10)

    return create_app(state, lifespan=lifespan), state


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one (see `port_file`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve(spec: SimulationSpec, options: OrchestratorOptions) -> int:
    """Serve until stopped (or until the simulation ends, with exit_on_completion); 0 on success."""
    torch.set_num_threads(options.threads)
    app, state = build_app(spec, options)
    sock = bind_socket(options.host, options.port)
    port = sock.getsockname()[1]
    if options.port_file is not None:
        options.port_file.write_text(f"{port}\n")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    if options.exit_on_completion:
        threading.Thread(target=_exit_when_finished, args=(state, server), daemon=True).start()
    log.info("orchestrator listening on %s:%d (run %s)", options.host, port, state.run_id)
    server.run(sockets=[sock])
    return 0 if state.progress.phase.value != "Failed" else 1


def _exit_when_finished(state: OrchestratorStatus, server: uvicorn.Server) -> None:
    while not state.finished:
        threading.Event().wait(0.2)
    threading.Event().wait(EXIT_GRACE_SECONDS)
    server.should_exit = True
