"""kopf handlers of FelesSimulations: thin glue between their events and the reconcile, scale and poll logic."""

from __future__ import annotations

import time
from typing import Any

import kopf

from feles_operator import events, lifecycle
from feles_operator.conditions import get_condition
from feles_operator.events import Event
from feles_operator.kube import KubeApi
from feles_operator.patches import status_patch
from feles_operator.simulation import names
from feles_operator.simulation.builders import Simulation
from feles_operator.simulation.poller import Indexed, StatusPoller
from feles_operator.simulation.reconcile import Outcome, reconcile, scale_workers
from feles_operator.simulation.resource import ResourceError, parse_resource
from feles_operator.simulation.status.conditions import FAILED_CONDITION
from feles_operator.simulation.status.schema import TERMINAL, FelesSimulationStatus
from feles_operator.simulation.status.transitions import initial_status, invalid_status

RESOURCE = (names.GROUP, names.VERSION, names.PLURAL)


@kopf.index(*RESOURCE)
def simulations(
    namespace: str, name: str, uid: str, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[tuple[str, str], Indexed]:
    """Every FelesSimulation the operator serves, for the poller (an index adds no finalizer)."""
    workers = spec.get("workers", 2)
    entry = Indexed(
        namespace=namespace,
        name=name,
        uid=uid,
        generation=meta.get("generation"),
        resource_version=meta.get("resourceVersion"),
        desired_workers=workers if isinstance(workers, int) else 2,
        deleting=bool(meta.get("deletionTimestamp")),
        status=dict(status),
    )
    return {(namespace, name): entry}


# The poller keeps every FelesSimulation's status up to date from its orchestrator, reading the index above.
lifecycle.serve(
    lifecycle.ServedKind(plural=names.PLURAL, crd_name=names.CRD_NAME, index="simulations", background=StatusPoller)
)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
async def reconcile_simulation(
    body: kopf.Body, name: str, namespace: str, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    """Create the children (or check them after a restart), or fail the resource if its spec cannot run.

    After an operator restart or upgrade, existing pods are left as they are: a new pod template would
    restart a running orchestrator for nothing.
    """
    await _reconcile(body, name, namespace, status, patch, memo, roll=False)


@kopf.on.update(*RESOURCE, field="spec")
async def spec_changed(
    body: kopf.Body,
    name: str,
    namespace: str,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    diff: kopf.Diff,
    **_: Any,
) -> None:
    """Image, resources, storage: roll the pod templates. `.spec.workers` alone is the scale handler's job."""
    if all(tuple(change.field)[:1] == ("workers",) for change in diff):
        return
    await _reconcile(body, name, namespace, status, patch, memo, roll=True)


@kopf.on.field(*RESOURCE, field="spec.workers")
async def workers_changed(
    old: Any, new: Any, body: kopf.Body, name: str, namespace: str, status: kopf.Status, memo: kopf.Memo, **_: Any
) -> None:
    """`kubectl scale fsim NAME --replicas N` (or an HPA): the StatefulSet follows `.spec.workers`."""
    if old is None:
        return  # creation: the reconcile sizes the StatefulSet
    finished = status.get("phase") in TERMINAL
    replicas = 0 if finished else (new if isinstance(new, int) else 2)
    if not await scale_workers(memo.api, name, namespace, replicas):
        return  # not created yet (an invalid spec, or the reconcile still to come)
    if finished:
        event = Event("Normal", "Scaled", f"the simulation is over: workers stay at 0 (asked for {new})")
    else:
        event = Event("Normal", "Scaled", f"workers: {old} -> {replicas}")
    await events.post(memo.api, events.involved_object(body), [event], time.time())


async def _reconcile(
    body: kopf.Body, name: str, namespace: str, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, roll: bool
) -> None:
    api: KubeApi = memo.api
    now = time.time()
    generation = body.get("metadata", {}).get("generation")
    old = FelesSimulationStatus.parse(status)
    involved = events.involved_object(body)
    try:
        problem = names.name_problem(name)
        if problem is not None:
            raise ResourceError([("metadata.name", problem)])
        spec = parse_resource(body.get("spec"))
    except ResourceError as error:
        failed = invalid_status(error.errors, generation, now, old)
        _replace_status(patch, old, failed)
        await events.post(api, involved, [Event("Warning", "InvalidSpec", failed.message or "")], now)
        return
    simulation = Simulation(name=name, namespace=namespace, spec=spec, settings=memo.settings)
    outcome = await reconcile(api, simulation, old.phase, lambda child: kopf.adopt(child, owner=body), roll)
    selector = names.selector_string(names.selector_labels(name, names.WORKER))
    failed_condition = get_condition(old, FAILED_CONDITION)
    if old.phase is None or (failed_condition is not None and failed_condition.reason == "InvalidSpec"):
        _replace_status(patch, old, initial_status(name, selector, generation, now))
    else:
        patch.status["selector"] = selector
        patch.status["observedGeneration"] = generation
    await events.post(api, involved, _outcome_events(outcome), now)


def _outcome_events(outcome: Outcome) -> list[Event]:
    """What a reconciliation did, as events: children created or rolled, a changed simulation ignored."""
    news = []
    if outcome.created:
        news.append(Event("Normal", "Created", "created " + ", ".join(outcome.created)))
    if outcome.updated:
        news.append(Event("Normal", "Updated", "updated " + ", ".join(outcome.updated)))
    if outcome.simulation_changed:
        message = "spec.simulation changed after creation: ignored, the orchestrator keeps the original spec"
        news.append(Event("Warning", "SimulationSpecChanged", message))
    return news


def _replace_status(patch: kopf.Patch, old: FelesSimulationStatus, new: FelesSimulationStatus) -> None:
    """Set `new` as the whole status through kopf's merge patch (old keys not in `new` become null)."""
    for key, value in status_patch(new.dump(), old.dump()).items():
        patch.status[key] = value
