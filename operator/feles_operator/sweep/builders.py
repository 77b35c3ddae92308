"""A cell's FelesSimulation: a pure function of the sweep and the cell (spec in, dict out)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from feles.sweep import Cell
from feles_operator import names as common
from feles_operator.simulation import names as simulation
from feles_operator.sweep import names
from feles_operator.sweep.resource import FelesSweepSpec


def owner_reference(sweep: Mapping[str, Any]) -> dict[str, Any]:
    """The reference that makes the sweep own a child: deleting the sweep deletes it (garbage collection)."""
    meta = sweep["metadata"]
    return {
        "apiVersion": common.API_VERSION,
        "kind": names.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def cell_labels(sweep: str, cell: str) -> dict[str, str]:
    return {names.SWEEP_LABEL: sweep, names.CELL_LABEL: cell, "app.kubernetes.io/managed-by": common.MANAGER}


def cell_simulation(sweep: Mapping[str, Any], spec: FelesSweepSpec, cell: Cell) -> dict[str, Any]:
    """The FelesSimulation of `cell`: the template's pod settings, the cell's whole simulation spec."""
    meta = sweep["metadata"]
    template = spec.template.model_dump(mode="json", by_alias=True, exclude_none=True) if spec.template else {}
    return {
        "apiVersion": common.API_VERSION,
        "kind": simulation.KIND,
        "metadata": {
            "name": names.simulation_name(meta["name"], cell.name),
            "namespace": meta["namespace"],
            "labels": cell_labels(meta["name"], cell.name),
            "annotations": {names.VALUES_ANNOTATION: json.dumps(cell.values, sort_keys=True)},
            "ownerReferences": [owner_reference(sweep)],
        },
        "spec": {**template, "simulation": cell.spec.model_dump(mode="json")},
    }
