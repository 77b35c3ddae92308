"""What one poll of one simulation saw: the input of `transitions.next_status`."""

from __future__ import annotations

from dataclasses import dataclass, field

from feles.protocol import SimulationStatus
from feles_operator.simulation.status.schema import PodFailure


@dataclass(frozen=True)
class PodSummary:
    """What the simulation's pods say: restarts and failures."""

    orchestrator_restarts: int = 0
    worker_restarts: int = 0
    failures: tuple[PodFailure, ...] = ()


@dataclass(frozen=True)
class Observation:
    """One poll of one simulation."""

    now: float
    generation: int | None
    desired_workers: int
    workers_ready: int
    orchestrator: SimulationStatus | None
    error: str | None = None
    pods: PodSummary = field(default_factory=PodSummary)
    unreachable_after: float = 120.0
