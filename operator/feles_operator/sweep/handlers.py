"""kopf handlers of FelesSweeps: the sweep's own changes, and its cells' phases flowing up into it."""

from __future__ import annotations

from typing import Any

import kopf

from feles_operator import lifecycle
from feles_operator.names import GROUP, VERSION
from feles_operator.simulation import names as simulation
from feles_operator.sweep import names
from feles_operator.sweep.reconcile import reconcile_sweep

RESOURCE = (GROUP, VERSION, names.PLURAL)

# No background loop: a sweep changes only when it or one of its cells does.
lifecycle.serve(lifecycle.ServedKind(plural=names.PLURAL, crd_name=names.CRD_NAME))


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def sweep_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """Created, changed (axes, parallelism, best) or met again after a restart: create the cells that may start."""
    await reconcile_sweep(memo.api, namespace, name)


@kopf.on.field(GROUP, VERSION, simulation.PLURAL, field="status.phase", labels={names.SWEEP_LABEL: kopf.PRESENT})
async def cell_phase_changed(labels: kopf.Labels, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A cell went Pending, Running, Succeeded or Failed: recount, and start the next cells (as dask's DaskJob)."""
    await reconcile_sweep(memo.api, namespace, labels[names.SWEEP_LABEL])


@kopf.on.event(GROUP, VERSION, simulation.PLURAL, labels={names.SWEEP_LABEL: kopf.PRESENT})
async def cell_deleted(type: str, labels: kopf.Labels, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A cell's FelesSimulation deleted by hand: the sweep makes it again (a way to re-run a cell), unless the
    sweep itself is going (its cells go with it)."""
    if type == "DELETED":
        await reconcile_sweep(memo.api, namespace, labels[names.SWEEP_LABEL])
