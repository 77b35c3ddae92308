"""The FelesSimulation's four conditions, computed from its new status and what the poll observed."""

from __future__ import annotations

from feles_operator.conditions import Condition, condition, get_condition
from feles_operator.simulation import names
from feles_operator.simulation.status.observation import Observation
from feles_operator.simulation.status.schema import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    FelesSimulationStatus,
    summary,
)
from feles_operator.timestamps import parse_rfc3339

READY, PROGRESSING, COMPLETED, FAILED_CONDITION = "Ready", "Progressing", "Completed", "Failed"
CONDITION_TYPES = (READY, PROGRESSING, COMPLETED, FAILED_CONDITION)


def simulation_conditions(
    status: FelesSimulationStatus, observed: Observation, old: FelesSimulationStatus | None = None
) -> list[Condition]:
    """Ready, Progressing, Completed and Failed of `status`, the one computed from `old` and `observed`."""
    return [
        _ready(status, observed, old),
        _progressing(status, observed),
        _completed(status, observed),
        _failed(status, observed),
    ]


def _progressing(status: FelesSimulationStatus, observed: Observation) -> Condition:
    phase, now, generation = status.phase or PENDING, observed.now, observed.generation
    if phase == PENDING:
        return condition(PROGRESSING, True, "Starting", "waiting for the orchestrator", now, generation)
    if phase == RUNNING and observed.desired_workers == 0:
        message = "no workers: the simulation waits (kubectl scale fsim NAME --replicas N)"
        return condition(PROGRESSING, False, "ScaledToZero", message, now, generation)
    if phase == RUNNING:
        message = f"repetition {status.repetition_progress}, round {status.round_progress}"
        return condition(PROGRESSING, True, "Training", message, now, generation)
    if phase == SUCCEEDED:
        return condition(PROGRESSING, False, status.stop_reason or "Completed", summary(status), now, generation)
    return condition(PROGRESSING, False, "SimulationFailed", status.message or "", now, generation)


def _completed(status: FelesSimulationStatus, observed: Observation) -> Condition:
    phase, now, generation = status.phase or PENDING, observed.now, observed.generation
    if phase == SUCCEEDED:
        return condition(COMPLETED, True, status.stop_reason or "Completed", summary(status), now, generation)
    return condition(COMPLETED, False, phase, f"the simulation is {phase.lower()}", now, generation)


def _failed(status: FelesSimulationStatus, observed: Observation) -> Condition:
    now, generation = observed.now, observed.generation
    if status.phase == FAILED:
        return condition(FAILED_CONDITION, True, "SimulationFailed", status.message or "", now, generation)
    return condition(FAILED_CONDITION, False, "NoFailure", "no failure so far", now, generation)


def _ready(status: FelesSimulationStatus, observed: Observation, old: FelesSimulationStatus | None) -> Condition:
    """Ready: the orchestrator answers /v1/status. False says why: a failing pod or a long silence."""
    now, generation, orchestrator = observed.now, observed.generation, observed.orchestrator
    if orchestrator is not None:
        message = f"the orchestrator serves its API; {orchestrator.workers} worker(s) registered"
        return condition(READY, True, "OrchestratorReady", message, now, generation)
    failing = [item for item in observed.pods.failures if item.component == names.ORCHESTRATOR]
    if failing:
        first = failing[0]
        message = f"pod {first.pod}: {first.message}"
        return condition(READY, False, first.reason, message, now, generation)
    since = parse_rfc3339(status.unreachable_since) if status.unreachable_since else now
    silent = now - since
    if silent < observed.unreachable_after:
        previous = get_condition(old, READY) if old is not None else None
        if previous is not None:
            return previous  # one failed poll is no news: keep the condition until the silence lasts
        return condition(READY, False, "OrchestratorStarting", "the orchestrator pod is starting", now, generation)
    message = f"/v1/status has not answered for {silent:.0f} s: {observed.error or 'no answer'}"
    return condition(READY, False, "OrchestratorUnreachable", message, now, generation)
