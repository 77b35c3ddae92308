"""`.status` of a FelesSimulation: its model (the CRD's status schema) and pure functions that compute it.

The poller observes (the orchestrator's /v1/status, the StatefulSet, the pods) and `next_status` turns the
previous status plus one observation into the next status and the Kubernetes Events worth posting.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from feles.protocol import SimulationStatus
from feles_operator import names

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = frozenset({SUCCEEDED, FAILED})
Phase = Literal["Pending", "Running", "Succeeded", "Failed"]

READY, PROGRESSING, COMPLETED, FAILED_CONDITION = "Ready", "Progressing", "Completed", "Failed"
CONDITION_TYPES = (READY, PROGRESSING, COMPLETED, FAILED_CONDITION)

#: Events per poll at most for rounds that finished since the last one (a fast simulation or a long outage).
MAX_ROUND_EVENTS = 20
#: Pod failures kept in `.status.podFailures`.
MAX_POD_FAILURES = 10
#: Container waiting reasons that mean "this will not get better by itself".
FAILING_WAIT_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


class StatusModel(BaseModel):
    """camelCase keys; unknown keys of a stored status are ignored rather than fatal."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)


class Condition(StatusModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(description="Ready, Progressing, Completed or Failed.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(description="CamelCase reason, e.g. RoundsCompleted or CrashLoopBackOff.")
    message: str = Field(description="Human-readable details.")
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})
    observed_generation: int | None = None


class PodFailure(StatusModel):
    """A pod of the simulation that fails: crash loop, image pull error, eviction, unschedulable."""

    pod: str
    component: str = Field(description="orchestrator or worker.")
    reason: str
    message: str
    restarts: int = 0


class Restarts(StatusModel):
    orchestrator: int = Field(default=0, description="Container restarts of the orchestrator pod.")
    workers: int = Field(default=0, description="Container restarts summed over the worker pods.")


class FelesSimulationStatus(StatusModel):
    """What the operator observed; `kubectl get fsim` shows part of it."""

    phase: Phase | None = Field(default=None, description="Pending, Running, Succeeded or Failed.")
    message: str | None = Field(default=None, description="Why the simulation failed or what it waits for.")
    stop_reason: str | None = Field(default=None, description="RoundsCompleted, TargetAccuracyReached, ...")
    repetition: int | None = Field(default=None, description="Current repetition, from 1.")
    repetitions: int | None = None
    round: int | None = Field(default=None, description="Rounds finished in the current repetition.")
    rounds: int | None = Field(default=None, description="Rounds per repetition (simulation.num_rounds).")
    round_progress: str | None = Field(default=None, description="round/rounds, e.g. 7/50.")
    repetition_progress: str | None = Field(default=None, description="repetition/repetitions, e.g. 1/3.")
    accuracy: float | None = Field(default=None, description="Test accuracy after the last round.")
    loss: float | None = Field(default=None, description="Test loss after the last round.")
    simulated_time: float | None = Field(default=None, description="Simulated seconds of this repetition.")
    workers_ready: int | None = Field(default=None, description="Ready worker pods (the scale subresource's).")
    workers_registered: int | None = Field(default=None, description="Workers the orchestrator heard from lately.")
    selector: str | None = Field(default=None, description="Label selector of the worker pods (for HPA).")
    restarts: Restarts | None = None
    pod_failures: list[PodFailure] | None = Field(default=None, description="Failing pods, at most 10.")
    unreachable_since: str | None = Field(
        default=None, description="Since when /v1/status has not answered.", json_schema_extra={"format": "date-time"}
    )
    start_time: str | None = Field(
        default=None, description="When the simulation started.", json_schema_extra={"format": "date-time"}
    )
    completion_time: str | None = Field(
        default=None, description="When it succeeded or failed.", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(default=None, description="The .metadata.generation last acted on.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready, Progressing, Completed and Failed.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )

    @classmethod
    def parse(cls, status: Mapping[str, Any] | None) -> FelesSimulationStatus:
        return cls.model_validate(dict(status or {}))

    def dump(self) -> dict[str, Any]:
        """The status as the API stores it (absent fields omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post about the simulation."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


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


def rfc3339(timestamp: float) -> str:
    """Unix seconds as the RFC 3339 UTC string Kubernetes uses."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def parse_rfc3339(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def condition(
    type_: str, status: bool | None, reason: str, message: str, now: float, generation: int | None
) -> Condition:
    text = "Unknown" if status is None else ("True" if status else "False")
    return Condition(
        type=type_,
        status=text,
        reason=reason,
        message=message,
        last_transition_time=rfc3339(now),
        observed_generation=generation,
    )


def merge_conditions(old: Iterable[Condition] | None, new: Iterable[Condition]) -> list[Condition]:
    """`new`, keeping each old condition's lastTransitionTime when its status did not change."""
    previous = {item.type: item for item in old or ()}
    merged = []
    for item in new:
        before = previous.get(item.type)
        if before is not None and before.status == item.status:
            item = item.model_copy(update={"last_transition_time": before.last_transition_time})
        merged.append(item)
    return merged


def get_condition(status: FelesSimulationStatus, type_: str) -> Condition | None:
    return next((item for item in status.conditions or () if item.type == type_), None)


def initial_status(name: str, selector: str, generation: int | None, now: float) -> FelesSimulationStatus:
    """The status right after the children are created: Pending, waiting for the orchestrator."""
    status = FelesSimulationStatus(
        phase=PENDING,
        message="waiting for the orchestrator",
        selector=selector,
        workers_ready=0,
        observed_generation=generation,
    )
    status.conditions = _conditions(status, None, None, now, generation, desired_workers=1)
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
    conditions = _conditions(
        new,
        orchestrator,
        observed,
        observed.now,
        observed.generation,
        desired_workers=observed.desired_workers,
        old_ready=get_condition(old, READY),
    )
    new.conditions = merge_conditions(old.conditions, conditions)
    if new.phase in TERMINAL:
        new.message = new.message or _summary(new)
    events = [*_round_events(old, new), *_phase_events(old, new), *_ready_events(old, new), *_failure_events(old, new)]
    return new, events


def _copy_progress(new: FelesSimulationStatus, old: FelesSimulationStatus, doc: SimulationStatus, now: float) -> None:
    repetition = min(doc.repetition + 1, doc.repetitions)
    new.phase = doc.phase.value
    new.message = doc.message or None
    new.stop_reason = doc.stop_reason
    new.repetition, new.repetitions = repetition, doc.repetitions
    new.round, new.rounds = doc.round, doc.rounds
    new.round_progress = f"{doc.round}/{doc.rounds}"
    new.repetition_progress = f"{repetition}/{doc.repetitions}"
    new.accuracy = _rounded(doc.accuracy, 4)
    new.loss = _rounded(doc.loss, 4)
    new.simulated_time = _rounded(doc.simulated_time, 1)
    new.workers_registered = doc.workers
    if old.start_time is None and doc.started_at is not None:
        new.start_time = rfc3339(doc.started_at)
    if new.phase in TERMINAL and old.completion_time is None:
        new.completion_time = rfc3339(doc.finished_at if doc.finished_at is not None else now)


def _summary(status: FelesSimulationStatus) -> str:
    accuracy = f"{status.accuracy:.4f}" if status.accuracy is not None else "n/a"
    loss = f"{status.loss:.4f}" if status.loss is not None else "n/a"
    return (
        f"{status.stop_reason or 'finished'}: test accuracy {accuracy}, loss {loss} after round "
        f"{status.round_progress} of repetition {status.repetition_progress}"
    )


def _conditions(
    status: FelesSimulationStatus,
    orchestrator: SimulationStatus | None,
    observed: Observation | None,
    now: float,
    generation: int | None,
    desired_workers: int,
    old_ready: Condition | None = None,
) -> list[Condition]:
    phase = status.phase or PENDING
    ready = _ready(status, orchestrator, observed, now, generation, old_ready)
    if phase == PENDING:
        progressing = condition(PROGRESSING, True, "Starting", "waiting for the orchestrator", now, generation)
    elif phase == RUNNING and desired_workers == 0:
        message = "no workers: the simulation waits (kubectl scale fsim NAME --replicas N)"
        progressing = condition(PROGRESSING, False, "ScaledToZero", message, now, generation)
    elif phase == RUNNING:
        message = f"repetition {status.repetition_progress}, round {status.round_progress}"
        progressing = condition(PROGRESSING, True, "Training", message, now, generation)
    elif phase == SUCCEEDED:
        progressing = condition(
            PROGRESSING, False, status.stop_reason or "Completed", _summary(status), now, generation
        )
    else:
        progressing = condition(PROGRESSING, False, "SimulationFailed", status.message or "", now, generation)
    if phase == SUCCEEDED:
        completed = condition(COMPLETED, True, status.stop_reason or "Completed", _summary(status), now, generation)
    else:
        completed = condition(COMPLETED, False, phase, f"the simulation is {phase.lower()}", now, generation)
    if phase == FAILED:
        failed = condition(FAILED_CONDITION, True, "SimulationFailed", status.message or "", now, generation)
    else:
        failed = condition(FAILED_CONDITION, False, "NoFailure", "no failure so far", now, generation)
    return [ready, progressing, completed, failed]


def _ready(
    status: FelesSimulationStatus,
    orchestrator: SimulationStatus | None,
    observed: Observation | None,
    now: float,
    generation: int | None,
    old: Condition | None,
) -> Condition:
    """Ready: the orchestrator answers /v1/status. False says why: a failing pod or a long silence."""
    if orchestrator is not None:
        message = f"the orchestrator serves its API; {orchestrator.workers} worker(s) registered"
        return condition(READY, True, "OrchestratorReady", message, now, generation)
    if observed is None:
        return condition(READY, False, "OrchestratorStarting", "the orchestrator pod is starting", now, generation)
    failing = [item for item in observed.pods.failures if item.component == "orchestrator"]
    if failing:
        first = failing[0]
        message = f"pod {first.pod}: {first.message}"
        return condition(READY, False, first.reason, message, now, generation)
    since = parse_rfc3339(status.unreachable_since) if status.unreachable_since else now
    silent = now - since
    if silent < observed.unreachable_after:
        if old is not None:
            return old  # one failed poll is no news: keep the condition until the silence lasts
        return condition(READY, False, "OrchestratorStarting", "the orchestrator pod is starting", now, generation)
    message = f"/v1/status has not answered for {silent:.0f} s: {observed.error or 'no answer'}"
    return condition(READY, False, "OrchestratorUnreachable", message, now, generation)


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
        if number == new.round and new.accuracy is not None:
            loss = f"{new.loss:.4f}" if new.loss is not None else "n/a"
            message += f": test accuracy {new.accuracy:.4f}, loss {loss}, simulated time {new.simulated_time} s"
        events.append(Event("Normal", "RoundFinished", message))
    return events


def _phase_events(old: FelesSimulationStatus, new: FelesSimulationStatus) -> list[Event]:
    if new.phase == old.phase:
        return []
    if new.phase == RUNNING:
        message = f"the orchestrator runs repetition {new.repetition_progress} of {new.rounds} rounds"
        return [Event("Normal", "SimulationStarted", message)]
    if new.phase == SUCCEEDED:
        return [Event("Normal", "SimulationSucceeded", _summary(new))]
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
        if (item.pod, item.reason) not in known and item.component != "orchestrator"
    ]


def summarize_pods(pods: Iterable[Mapping[str, Any]], name: str) -> PodSummary:
    """Restarts and failures of one simulation's pods (pod objects as the API returns them)."""
    restarts = {"orchestrator": 0, "worker": 0}
    failures: list[PodFailure] = []
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        component = labels.get(names.COMPONENT_LABEL)
        if labels.get(names.SIMULATION_LABEL) != name or component not in restarts:
            continue  # a list without server-side selectors (or a stranger's pod)
        pod_name = (pod.get("metadata") or {}).get("name", "?")
        status = pod.get("status") or {}
        statuses = status.get("containerStatuses") or []
        count = sum(int(item.get("restartCount") or 0) for item in statuses)
        restarts[component] += count
        failure = _pod_failure(pod_name, component, status, statuses, count)
        if failure is not None:
            failures.append(failure)
    failures.sort(key=lambda item: (item.component != "orchestrator", item.pod))
    return PodSummary(restarts["orchestrator"], restarts["worker"], tuple(failures))


def _pod_failure(
    pod: str, component: str, status: Mapping[str, Any], containers: list[Mapping[str, Any]], restarts: int
) -> PodFailure | None:
    if status.get("phase") == "Failed":
        reason = status.get("reason") or "PodFailed"
        return PodFailure(pod=pod, component=component, reason=reason, message=status.get("message") or reason)
    for item in containers:
        waiting = (item.get("state") or {}).get("waiting") or {}
        last = (item.get("lastState") or {}).get("terminated") or {}
        if component == names.WORKER and last.get("exitCode") == 0:
            continue  # a worker exits 0 once the simulation is over: restarting it is not a failure
        if waiting.get("reason") in FAILING_WAIT_REASONS:
            message = waiting["reason"]
            if last:
                message += f" (last exit: {last.get('reason') or 'Error'}, code {last.get('exitCode')})"
            if waiting.get("message"):
                message += f": {waiting['message']}"
            message += f"; {restarts} restart(s)"
            return PodFailure(
                pod=pod, component=component, reason=waiting["reason"], message=message, restarts=restarts
            )
    for item in status.get("conditions") or []:
        if item.get("type") == "PodScheduled" and item.get("status") == "False" and item.get("reason"):
            message = f"{item['reason']}: {item.get('message') or 'not scheduled'}"
            return PodFailure(pod=pod, component=component, reason=item["reason"], message=message)
    return None
