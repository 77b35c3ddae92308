"""The Kubernetes Events a FelesSimulation's status change is worth: finished rounds, phases, readiness, failures."""

from __future__ import annotations

from feles_operator.conditions import get_condition
from feles_operator.events import Event
from feles_operator.simulation import names
from feles_operator.simulation.status.conditions import READY
from feles_operator.simulation.status.schema import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    FelesSimulationStatus,
    metric_text,
    summary,
)

#: Events per poll at most for rounds that finished since the last one (a fast simulation or a long outage).
MAX_ROUND_EVENTS = 20


def status_events(old: FelesSimulationStatus, new: FelesSimulationStatus) -> list[Event]:
    """The events of the change from `old` to `new`, in the order a reader of `kubectl describe` expects."""
    return [*_round_events(old, new), *_phase_events(old, new), *_ready_events(old, new), *_failure_events(old, new)]


def _round_events(old: FelesSimulationStatus, new: FelesSimulationStatus) -> list[Event]:
    if new.round is None or new.repetition is None:
        return []
    same_repetition = old.repetition == new.repetition and old.round is not None
    first = (old.round or 0) + 1 if same_repetition else 1
    finished = list(range(first, new.round + 1))
    if not finished:
        return []
    events = []
    skipped = finished[:-MAX_ROUND_EVENTS] if len(finished) > MAX_ROUND_EVENTS else []
    if skipped:
        message = f"repetition {new.repetition_progress}: rounds {skipped[0]}-{skipped[-1]}/{new.rounds} finished"
        events.append(Event("Normal", "RoundFinished", message))
    for number in finished[len(skipped) :]:
        message = f"repetition {new.repetition_progress} round {number}/{new.rounds} finished"
        if number == new.round and (new.metric_value is not None or new.accuracy is not None):
            loss = f"{new.loss:.4f}" if new.loss is not None else "n/a"
            message += f": {metric_text(new)}, loss {loss}, simulated time {new.simulated_time} s"
        events.append(Event("Normal", "RoundFinished", message))
    return events


def _phase_events(old: FelesSimulationStatus, new: FelesSimulationStatus) -> list[Event]:
    if new.phase == old.phase:
        return []
    if new.phase == RUNNING:
        message = f"the orchestrator runs repetition {new.repetition_progress} of {new.rounds} rounds"
        return [Event("Normal", "SimulationStarted", message)]
    if new.phase == SUCCEEDED:
        return [Event("Normal", "SimulationSucceeded", summary(new))]
    if new.phase == FAILED:
        return [Event("Warning", "SimulationFailed", new.message or "the simulation failed")]
    return []


def _ready_events(old: FelesSimulationStatus, new: FelesSimulationStatus) -> list[Event]:
    before, after = get_condition(old, READY), get_condition(new, READY)
    if after is None or (before is not None and (before.status, before.reason) == (after.status, after.reason)):
        return []
    if after.status == "True":
        return [Event("Normal", after.reason, after.message)]
    if after.reason == "OrchestratorStarting":
        return []
    return [Event("Warning", after.reason, after.message)]


def _failure_events(old: FelesSimulationStatus, new: FelesSimulationStatus) -> list[Event]:
    known = {(item.pod, item.reason) for item in old.pod_failures or ()}
    return [
        Event("Warning", item.reason, f"pod {item.pod}: {item.message}")
        for item in new.pod_failures or ()
        if (item.pod, item.reason) not in known and item.component != names.ORCHESTRATOR
    ]
