"""The FelesSweep's `.spec`: a SweepSpec (the same as a `feles sweep` file) plus the cells' pod settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError, create_model

from feles.config import validation_errors
from feles.sweep import Cell, SweepError, SweepSpec, expand
from feles_operator.simulation.resource import FelesSimulationSpec, KubeModel, ResourceError, plain
from feles_operator.sweep import names

#: A FelesSimulation's `.spec` without `.simulation` (which each cell gets from the grid): workers, image, storage.
SimulationTemplate = create_model(  # type: ignore[call-overload]
    "SimulationTemplate",
    __base__=KubeModel,
    __doc__="The cells' FelesSimulation settings: workers, image, resources, storage (as in a FelesSimulation).",
    **{
        key: (field.annotation, field) for key, field in FelesSimulationSpec.model_fields.items() if key != "simulation"
    },
)


class FelesSweepSpec(SweepSpec):
    """A base simulation, the axes of the grid, how many cells run at once, and the cells' pod settings."""

    template: SimulationTemplate | None = Field(  # type: ignore[valid-type]
        default=None, description="Each cell's FelesSimulation settings: workers, image, resources, storage."
    )


def parse_sweep_resource(spec: Mapping[str, Any] | None) -> FelesSweepSpec:
    """Validate a FelesSweep's `.spec`; ResourceError listing every problem as (`spec.<path>`, message)."""
    try:
        return FelesSweepSpec.model_validate(plain(spec or {}))
    except ValidationError as error:
        raise ResourceError([(f"spec.{path}", message) for path, message in validation_errors(error)]) from None


def sweep_cells(name: str, spec: FelesSweepSpec) -> list[Cell]:
    """The grid's cells, their names short enough for `<sweep>-<cell>`; ResourceError naming each cell and field.

    Every cell's spec is checked against the schema and its rules; plug-in names are checked by each cell's
    orchestrator (the operator does not load the simulator's plug-ins), so `feles sweep --dry-run` checks more.
    """
    problem = names.name_problem(name)
    if problem is not None:
        raise ResourceError([("metadata.name", problem)])
    try:
        return expand(spec, max_length=names.cell_name_length(name))
    except SweepError as error:
        raise ResourceError([(_where(where), message) for where, message in error.errors]) from None


def _where(where: str) -> str:
    """An error's place: `spec.axes[0].path`, or a cell's `cell NAME: field` as it is."""
    return where if where.startswith("cell ") else f"spec.{where}"
