"""SIGTERM to an orchestrator: after the simulation's end it exits at once with the run's code (its files are
written); before the end, uvicorn's graceful shutdown stops the loop as before."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from feles.config import parse_spec
from feles.orchestrator import server
from feles.orchestrator.metrics import OrchestratorMetrics
from feles.orchestrator.server import OrchestratorServer, build_state
from feles.protocol import SimulationPhase


class Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


@pytest.fixture
def orchestrator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OrchestratorServer:
    def exit_now(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(server.os, "_exit", exit_now)
    spec = parse_spec({"simulation": {"dataset": "digits", "output_folder": str(tmp_path)}})
    state = build_state(spec, 10.0, OrchestratorMetrics())
    return OrchestratorServer(uvicorn.Config(FastAPI()), state)


@pytest.mark.parametrize(("phase", "code"), [(SimulationPhase.SUCCEEDED, 0), (SimulationPhase.FAILED, 1)])
def test_after_the_end_sigterm_exits_at_once_with_the_runs_code(
    orchestrator: OrchestratorServer, phase: SimulationPhase, code: int
) -> None:
    orchestrator.state.progress.phase = phase
    with pytest.raises(Exited) as exited:
        orchestrator.handle_exit(signal.SIGTERM, None)
    assert exited.value.code == code


def test_before_the_end_sigterm_asks_for_the_graceful_shutdown(orchestrator: OrchestratorServer) -> None:
    orchestrator.state.progress.phase = SimulationPhase.RUNNING
    orchestrator.handle_exit(signal.SIGTERM, None)
    assert orchestrator.should_exit
