"""How a FelesSimulation's status moves: created (Pending), refused (invalid spec), and one poll after another."""

from __future__ import annotations

from feles.protocol import SimulationStatus
from feles_operator.conditions import condition, merge_conditions
from feles_operator.events import Event
from feles_operator.simulation import names
from feles_operator.simulation.status.conditions import (
    COMPLETED,
    FAILED_CONDITION,
    PROGRESSING,
    READY,
    simulation_conditions,
)
from feles_operator.simulation.status.events import status_events
from feles_operator.simulation.status.observation import Observation
from feles_operator.simulation.status.schema import (
    FAILED,
    PENDING,
    TERMINAL,
    FelesSimulationStatus,
    Restarts,
    summary,
)
from feles_operator.timestamps import rfc3339

#: Pod failures kept in `.status.podFailures`.
MAX_POD_FAILURES = 10


def initial_status(name: str, selector: str, generation: int | None, now: float) -> FelesSimulationStatus:
    """The status right after the children are created: Pending, waiting for the orchestrator."""
    status = FelesSimulationStatus(
        phase=PENDING,
        message="waiting for the orchestrator",
        selector=selector,
        workers_ready=0,
        observed_generation=generation,
    )
    # Nothing observed yet: no orchestrator, no pod, the silence only starts now.
    created = Observation(now=now, generation=generation, desired_workers=1, workers_ready=0, orchestrator=None)
    status.conditions = simulation_conditions(status, created)
    return status


def invalid_status(
    errors: list[tuple[str, str]], generation: int | None, now: float, old: FelesSimulationStatus | None = None
) -> FelesSimulationStatus:
    """Failed before any pod exists: the spec breaks a rule the CRD schema cannot express."""
    message = "invalid spec: " + "; ".join(f"{path}: {rule}" for path, rule in errors)
    status = FelesSimulationStatus(phase=FAILED, message=message, observed_generation=generation)
    conditions = [
        condition(READY, False, "InvalidSpec", "no orchestrator: the spec is invalid", now, generation),
        condition(PROGRESSING, False, "InvalidSpec", message, now, generation),
        condition(COMPLETED, False, "InvalidSpec", message, now, generation),
        condition(FAILED_CONDITION, True, "InvalidSpec", message, now, generation),
    ]
    status.conditions = merge_conditions(old.conditions if old else None, conditions)
    status.completion_time = old.completion_time if old and old.completion_time else rfc3339(now)
    return status


def next_status(old: FelesSimulationStatus, observed: Observation) -> tuple[FelesSimulationStatus, list[Event]]:
    """The status after `observed`, and the events it is worth: finished rounds, phase changes, failures."""
    if old.phase in TERMINAL:
        return old, []
    new = old.model_copy(deep=True)
    orchestrator = observed.orchestrator
    if orchestrator is not None:
        _copy_progress(new, old, orchestrator, observed.now)
        new.unreachable_since = None
    else:
        new.phase = old.phase or PENDING
        new.unreachable_since = old.unreachable_since or rfc3339(observed.now)
    new.workers_ready = observed.workers_ready
    new.restarts = Restarts(orchestrator=observed.pods.orchestrator_restarts, workers=observed.pods.worker_restarts)
    failures = observed.pods.failures
    if new.phase in TERMINAL:
        failures = tuple(item for item in failures if item.component == names.ORCHESTRATOR)  # workers are done
    new.pod_failures = list(failures[:MAX_POD_FAILURES]) or None
    new.observed_generation = observed.generation
    new.conditions = merge_conditions(old.conditions, simulation_conditions(new, observed, old))
    if new.phase in TERMINAL:
        new.message = new.message or summary(new)
    return new, status_events(old, new)


def _copy_progress(new: FelesSimulationStatus, old: FelesSimulationStatus, doc: SimulationStatus, now: float) -> None:
    repetition = min(doc.repetition + 1, doc.repetitions)
    new.phase = doc.phase.value
    new.message = doc.message or None
    new.stop_reason = doc.stop_reason
    new.repetition, new.repetitions = repetition, doc.repetitions
    new.round, new.rounds = doc.round, doc.rounds
    new.round_progress = f"{doc.round}/{doc.rounds}"
    new.repetition_progress = f"{repetition}/{doc.repetitions}"
    new.metric = doc.metric
    # An orchestrator older than the metric field reports only its accuracy.
    new.metric_value = _rounded(doc.metric_value if doc.metric_value is not None else doc.accuracy, 4)
    new.accuracy = _rounded(doc.accuracy, 4)
    new.loss = _rounded(doc.loss, 4)
    new.simulated_time = _rounded(doc.simulated_time, 1)
    new.workers_registered = doc.workers
    if old.start_time is None and doc.started_at is not None:
        new.start_time = rfc3339(doc.started_at)
    if new.phase in TERMINAL and old.completion_time is None:
        new.completion_time = rfc3339(doc.finished_at if doc.finished_at is not None else now)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
