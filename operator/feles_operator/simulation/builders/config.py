"""The ConfigMap with the simulation spec, the Secret with the API token and the results PVC."""

from __future__ import annotations

from typing import Any

from feles.config import spec_to_yaml
from feles_operator.simulation import names
from feles_operator.simulation.builders.common import SPEC_HASH_ANNOTATION, Simulation, digest, encode, metadata


def spec_config_map(sim: Simulation) -> dict[str, Any]:
    """The spec the orchestrator reads (`--config`), every field explicit. Immutable like `.spec.simulation`."""
    text = spec_to_yaml(sim.spec.simulation)
    annotations = {SPEC_HASH_ANNOTATION: simulation_hash(sim)}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(sim, names.spec_config_map(sim.name), names.ORCHESTRATOR, annotations),
        "immutable": True,
        "data": {names.SPEC_KEY: text},
    }


def simulation_hash(sim: Simulation) -> str:
    """Identifies the simulation spec, to notice a change that slipped past the CRD's immutability rule."""
    return digest(sim.spec.simulation.model_dump(mode="json"))


def token_secret(sim: Simulation, token: str) -> dict[str, Any]:
    """The bearer token of the simulation's API; the operator generates it once and never logs it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(sim, names.token_secret(sim.name), names.ORCHESTRATOR),
        "type": "Opaque",
        "immutable": True,
        "data": {names.TOKEN_KEY: encode(token)},
    }


def results_claim(sim: Simulation) -> dict[str, Any] | None:
    """A PVC for results and checkpoints when `.spec.storage.results.size` asks for one."""
    storage = sim.spec.storage.results if sim.spec.storage else None
    if storage is None or storage.size is None:
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(sim, names.results_claim(sim.name), names.ORCHESTRATOR),
        "spec": spec,
    }


def results_claim_name(sim: Simulation) -> str | None:
    """The PVC mounted at /results, or None for an emptyDir."""
    storage = sim.spec.storage.results if sim.spec.storage else None
    if storage is None:
        return None
    return storage.claim_name or names.results_claim(sim.name)
