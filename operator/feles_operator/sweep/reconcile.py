"""Bring a FelesSweep's cells to what its spec asks for, and its status to what its cells report.

As KubeRay's cron controller: children have deterministic names, AlreadyExists means done, each carries an
owner reference; the status is written once per reconciliation, and only if it changed. A changed axis list
adds the missing cells; cells no longer in the grid are kept (never deleted or restarted) and listed as orphaned.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from feles.sweep import sweep_objective
from feles_operator import events
from feles_operator.events import Event
from feles_operator.kube import ApiError, KubeApi, path
from feles_operator.names import API_VERSION
from feles_operator.patches import status_patch
from feles_operator.simulation import names as simulation
from feles_operator.simulation.resource import ResourceError
from feles_operator.simulation.status.schema import TERMINAL
from feles_operator.sweep import names
from feles_operator.sweep.builders import cell_simulation
from feles_operator.sweep.resource import parse_sweep_resource, sweep_cells
from feles_operator.sweep.status import (
    Child,
    FelesSweepStatus,
    cells_to_create,
    invalid_sweep_status,
    next_sweep_status,
)

#: One lock per sweep (and event loop): its own events and its children's may reconcile it at the same time.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def sweep_lock(namespace: str, name: str) -> asyncio.Lock:
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault((namespace, name), asyncio.Lock())


@dataclass
class Outcome:
    """What a reconciliation did."""

    status: FelesSweepStatus | None = None
    created: list[str] = field(default_factory=list)
    written: bool = False


def sweep_path(namespace: str, name: str, sub: str | None = None) -> str:
    return path(API_VERSION, names.PLURAL, namespace, name, sub)


def is_child(obj: Mapping[str, Any], sweep: Mapping[str, Any]) -> bool:
    """Whether a FelesSimulation is one of this sweep's cells: its label, and the sweep's uid as its owner."""
    meta = obj.get("metadata") or {}
    uid = sweep["metadata"].get("uid")
    owned = any(reference.get("uid") == uid for reference in meta.get("ownerReferences") or ())
    return (meta.get("labels") or {}).get(names.SWEEP_LABEL) == sweep["metadata"]["name"] and owned


async def children(api: KubeApi, sweep: Mapping[str, Any]) -> list[Child]:
    meta = sweep["metadata"]
    url = path(API_VERSION, simulation.PLURAL, meta["namespace"])
    found = await api.list(url, label_selector=f"{names.SWEEP_LABEL}={meta['name']}")
    return [Child.of(obj) for obj in found if is_child(obj, sweep)]


async def reconcile_sweep(api: KubeApi, namespace: str, name: str) -> Outcome:
    """Read the sweep afresh, create the cells that may start, write its status if it changed, post events."""
    async with sweep_lock(namespace, name):
        sweep = await api.get_or_none(sweep_path(namespace, name))
        if sweep is None or sweep["metadata"].get("deletionTimestamp"):
            return Outcome()
        return await _reconcile(api, sweep)


async def _reconcile(api: KubeApi, sweep: dict[str, Any]) -> Outcome:
    meta, now = sweep["metadata"], time.time()
    old = FelesSweepStatus.parse(sweep.get("status"))
    outcome, news = Outcome(), []
    try:
        spec = parse_sweep_resource(sweep.get("spec"))
        cells = sweep_cells(meta["name"], spec)
    except ResourceError as error:
        outcome.status = invalid_sweep_status(error.errors, old, meta.get("generation"), now)
        if old.message != outcome.status.message:
            news.append(Event("Warning", "InvalidSpec", outcome.status.message or ""))
    else:
        found = await children(api, sweep)
        by_name = {cell.name: cell for cell in cells}
        for cell in cells_to_create([cell.name for cell in cells], found, spec.parallelism):
            child = cell_simulation(sweep, spec, by_name[cell])
            try:
                await api.request("POST", path(API_VERSION, simulation.PLURAL, meta["namespace"]), body=child)
            except ApiError as error:
                if error.status != 409:  # AlreadyExists: made by an earlier reconciliation, done
                    raise
            outcome.created.append(child["metadata"]["name"])
            found.append(Child(cell, child["metadata"]["name"]))
        grid = [cell.name for cell in cells]
        objective = sweep_objective(spec, cells)
        outcome.status = next_sweep_status(old, meta["name"], grid, found, objective, meta.get("generation"), now)
        news += _events(old, outcome)
    if outcome.status.dump() != old.dump():
        body = {"status": status_patch(outcome.status.dump(), old.dump())}
        await api.patch(sweep_path(meta["namespace"], meta["name"], "status"), body)
        outcome.written = True
    await events.post(api, events.involved_object(sweep), news, now)
    return outcome


def _events(old: FelesSweepStatus, outcome: Outcome) -> list[Event]:
    new = outcome.status
    news = []
    if outcome.created:
        news.append(Event("Normal", "Created", "created FelesSimulation " + ", ".join(outcome.created)))
    if new is not None and new.phase in TERMINAL and old.phase != new.phase:
        kind = "Normal" if new.phase == "Succeeded" else "Warning"
        news.append(Event(kind, f"Sweep{new.phase}", new.message or ""))
    return news
