"""kopf handlers: thin glue between FelesSimulation events and the reconcile, scale and poll logic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kopf

from feles_operator import events, names
from feles_operator.builders import Simulation
from feles_operator.kube import ApiError, KubeApi
from feles_operator.poller import Indexed, StatusPoller
from feles_operator.reconcile import reconcile, scale_workers
from feles_operator.resource import ResourceError, parse_resource
from feles_operator.settings import OperatorSettings, SettingsError
from feles_operator.status import (
    FAILED_CONDITION,
    TERMINAL,
    Event,
    FelesSimulationStatus,
    get_condition,
    initial_status,
    invalid_status,
)

RESOURCE = (names.GROUP, names.VERSION, names.PLURAL)
#: How long the operator waits at startup for the CRD to be served (`kubectl apply -f manifests/` races).
CRD_WAIT_SECONDS = 120.0


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings for this operator."""
    # No runtime discovery of CRDs and namespaces: no cluster-wide read access needed for them.
    settings.scanning.disabled = True
    # kopf's bookkeeping lives in feles.io/ annotations, so that `.status` holds only the schema's fields.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    # The operator posts its own events (Created, RoundFinished, ...); kopf's only for its warnings.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = names.MANAGER


async def wait_for_crd(api: KubeApi, logger: logging.Logger | Any, timeout: float = CRD_WAIT_SECONDS) -> None:
    """Block until the API serves felessimulations (the CRD may be applied in the same breath as the operator)."""
    deadline = time.monotonic() + timeout
    url = f"/apis/{names.API_VERSION}"
    while True:
        try:
            served = {item.get("name") for item in (await api.get(url)).get("resources") or []}
            if names.PLURAL in served:
                return
        except (ApiError, OSError) as error:
            if time.monotonic() > deadline:
                raise kopf.PermanentError(f"the CRD {names.CRD_NAME} is not served: {error}") from None
        if time.monotonic() > deadline:
            raise kopf.PermanentError(f"the CRD {names.CRD_NAME} is not served after {timeout:.0f} s")
        logger.info("waiting for the CRD %s to be served", names.CRD_NAME)
        await asyncio.sleep(2.0)


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


@kopf.on.startup()
async def startup(
    settings: kopf.OperatorSettings, memo: kopf.Memo, simulations: kopf.Index, logger: Any, **_: Any
) -> None:
    configure(settings)
    try:
        memo.settings = OperatorSettings.from_env()
    except SettingsError as error:
        raise kopf.PermanentError(str(error)) from None
    memo.api = KubeApi.from_environment()
    await wait_for_crd(memo.api, logger)
    memo.poller = StatusPoller(memo.api, memo.settings, simulations)
    memo.poller_task = asyncio.create_task(memo.poller.run(), name="feles status poller")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "poller_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await memo.poller.close()
    if getattr(memo, "api", None) is not None:
        memo.api.close()


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
    simulation = Simulation(name, namespace, spec, memo.settings)
    outcome = await reconcile(api, simulation, old.phase, lambda child: kopf.adopt(child, owner=body), roll)
    news = []
    if outcome.created:
        news.append(Event("Normal", "Created", "created " + ", ".join(outcome.created)))
    if outcome.updated:
        news.append(Event("Normal", "Updated", "updated " + ", ".join(outcome.updated)))
    if outcome.simulation_changed:
        message = "spec.simulation changed after creation: ignored, the orchestrator keeps the original spec"
        news.append(Event("Warning", "SimulationSpecChanged", message))
    selector = names.selector_string(names.selector_labels(name, names.WORKER))
    failed = get_condition(old, FAILED_CONDITION)
    if old.phase is None or (failed is not None and failed.reason == "InvalidSpec"):
        _replace_status(patch, old, initial_status(name, selector, generation, now))
    else:
        patch.status["selector"] = selector
        patch.status["observedGeneration"] = generation
    await events.post(api, involved, news, now)


def _replace_status(patch: kopf.Patch, old: FelesSimulationStatus, new: FelesSimulationStatus) -> None:
    """Set `new` as the whole status through a merge patch (old keys not in `new` become null)."""
    document: dict[str, Any] = {key: None for key in old.dump()}
    document.update(new.dump())
    for key, value in document.items():
        patch.status[key] = value
