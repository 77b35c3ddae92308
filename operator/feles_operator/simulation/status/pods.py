"""A simulation's pods, as the API lists them, summed up: container restarts and the failures worth reporting."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from feles_operator.simulation import names
from feles_operator.simulation.status.observation import PodSummary
from feles_operator.simulation.status.schema import PodFailure

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


def summarize_pods(pods: Iterable[Mapping[str, Any]], name: str) -> PodSummary:
    """Restarts and failures of one simulation's pods (pod objects as the API returns them)."""
    restarts = {names.ORCHESTRATOR: 0, names.WORKER: 0}
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
        failure = pod_failure(pod_name, component, status, statuses, count)
        if failure is not None:
            failures.append(failure)
    failures.sort(key=lambda item: (item.component != names.ORCHESTRATOR, item.pod))
    return PodSummary(
        orchestrator_restarts=restarts[names.ORCHESTRATOR],
        worker_restarts=restarts[names.WORKER],
        failures=tuple(failures),
    )


def pod_failure(
    pod: str, component: str, status: Mapping[str, Any], containers: list[Mapping[str, Any]], restarts: int
) -> PodFailure | None:
    """Why one pod fails (failed, a container stuck waiting, unschedulable), or None if it does not."""
    if status.get("phase") == "Failed":
        reason = status.get("reason") or "PodFailed"
        return PodFailure(pod=pod, component=component, reason=reason, message=status.get("message") or reason)
    for item in containers:
        waiting = (item.get("state") or {}).get("waiting") or {}
        last = (item.get("lastState") or {}).get("terminated") or {}
        if component == names.WORKER and last.get("exitCode") == 0:
            continue  # a worker exits 0 once the simulation is over: restarting it is not a failure
        if waiting.get("reason") in FAILING_WAIT_REASONS:
            return _waiting_failure(pod, component, waiting, last, restarts)
    for item in status.get("conditions") or []:
        if item.get("type") == "PodScheduled" and item.get("status") == "False" and item.get("reason"):
            message = f"{item['reason']}: {item.get('message') or 'not scheduled'}"
            return PodFailure(pod=pod, component=component, reason=item["reason"], message=message)
    return None


def _waiting_failure(
    pod: str, component: str, waiting: Mapping[str, Any], last: Mapping[str, Any], restarts: int
) -> PodFailure:
    message = waiting["reason"]
    if last:
        message += f" (last exit: {last.get('reason') or 'Error'}, code {last.get('exitCode')})"
    if waiting.get("message"):
        message += f": {waiting['message']}"
    message += f"; {restarts} restart(s)"
    return PodFailure(pod=pod, component=component, reason=waiting["reason"], message=message, restarts=restarts)
