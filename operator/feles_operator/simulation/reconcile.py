"""Bring a FelesSimulation's children to what its spec asks for: create what is missing, fix what drifted."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feles_operator.kube import ApiError, KubeApi, object_path, path
from feles_operator.patches import merge_patch
from feles_operator.simulation import names
from feles_operator.simulation.builders import Simulation, build_children
from feles_operator.simulation.builders.common import SPEC_HASH_ANNOTATION, TEMPLATE_HASH_ANNOTATION
from feles_operator.simulation.resource import FelesSimulationSpec
from feles_operator.simulation.status.schema import TERMINAL

log = logging.getLogger("feles_operator.reconcile")


@dataclass
class Outcome:
    """What a reconciliation did, for events and logs."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    simulation_changed: bool = False


def desired_replicas(spec: FelesSimulationSpec, phase: str | None) -> int:
    """Workers to run: none once the simulation is over (a worker exits 0 then, and would be restarted)."""
    return 0 if phase in TERMINAL else spec.workers


def new_token() -> str:
    """A fresh API token (256 random bits); only used if the Secret does not exist yet."""
    return secrets.token_urlsafe(32)


def describe(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']} {obj['metadata']['name']}"


async def ensure(api: KubeApi, desired: dict[str, Any], outcome: Outcome, roll: bool = True) -> None:
    """Create `desired`, or bring an existing workload's replicas (and with `roll`, its pod template) to it."""
    try:
        await api.create(desired)
        outcome.created.append(describe(desired))
        return
    except ApiError as error:
        if error.status != 409:
            raise
    kind = desired["kind"]
    if kind == "ConfigMap":
        existing = await api.get(object_path(desired))
        old_hash = ((existing.get("metadata") or {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
        if old_hash and old_hash != desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION]:
            outcome.simulation_changed = True
        return
    if kind not in ("Deployment", "StatefulSet"):
        return  # Services, Secret, PVC, NetworkPolicy: created once, nothing in them follows the spec
    existing = await api.get(object_path(desired))
    patch = workload_patch(existing, desired, roll)
    if patch:
        await api.patch(object_path(desired), patch)
        outcome.updated.append(describe(desired))


def workload_patch(existing: Mapping[str, Any], desired: Mapping[str, Any], roll: bool = True) -> dict[str, Any]:
    """The patch that brings an existing Deployment/StatefulSet to `desired`, or {} when it is there.

    Without `roll`, only the replicas: a new pod template restarts the pods (the orchestrator's progress
    survives that only with a results volume).
    """
    patch: dict[str, Any] = {}
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    wanted_hash = desired["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
    if roll and annotations.get(TEMPLATE_HASH_ANNOTATION) != wanted_hash:
        old_template = (existing.get("spec") or {}).get("template") or {}
        patch["metadata"] = {"annotations": {TEMPLATE_HASH_ANNOTATION: wanted_hash}}
        patch["spec"] = {"template": merge_patch(old_template, desired["spec"]["template"])}
    if (existing.get("spec") or {}).get("replicas") != desired["spec"]["replicas"]:
        patch.setdefault("spec", {})["replicas"] = desired["spec"]["replicas"]
    return patch


async def reconcile(
    api: KubeApi,
    sim: Simulation,
    phase: str | None,
    adopt: Callable[[dict[str, Any]], None],
    roll: bool = False,
) -> Outcome:
    """Ensure every child exists, owned by the FelesSimulation (`adopt` sets the ownerReference).

    `roll` (a user changed the spec) also brings the pod templates up to date, unless the simulation is
    over: its orchestrator must keep serving the results.
    """
    outcome = Outcome()
    for child in build_children(sim, new_token(), desired_replicas(sim.spec, phase)):
        adopt(child)
        await ensure(api, child, outcome, roll=roll and phase not in TERMINAL)
    return outcome


async def scale_workers(api: KubeApi, name: str, namespace: str, replicas: int) -> bool:
    """Set the worker StatefulSet's replicas; False if it does not exist (yet)."""
    url = path("apps/v1", "statefulsets", namespace, names.workers(name))
    try:
        await api.patch(url, {"spec": {"replicas": replicas}})
    except ApiError as error:
        if error.status == 404:
            return False
        raise
    return True
