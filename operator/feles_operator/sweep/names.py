"""The FelesSweep API's identity, its cells' FelesSimulation names and the labels that tie them to the sweep."""

from __future__ import annotations

import re

from feles_operator.names import GROUP, crd_name
from feles_operator.simulation import names as simulation

KIND = "FelesSweep"
PLURAL = "felessweeps"
SINGULAR = "felessweep"
SHORT_NAME = "fsweep"
CRD_NAME = crd_name(PLURAL)

#: Labels of every cell's FelesSimulation: the sweep's name and the cell's.
SWEEP_LABEL = f"{GROUP}/sweep"
CELL_LABEL = f"{GROUP}/sweep-cell"
#: Annotation of a cell's FelesSimulation: its axis values (JSON, path -> value).
VALUES_ANNOTATION = f"{GROUP}/sweep-values"

#: Longest sweep name: a cell's FelesSimulation is `<sweep>-<cell>`, at most 45 characters (its own children's
#: names derive from it), which leaves a cell name of at least 14 characters (room for the hash of a long one).
MAX_NAME_LENGTH = 30
NAME_PATTERN = simulation.NAME_PATTERN


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a sweep (its cells' names would be invalid), or None."""
    if len(name) > MAX_NAME_LENGTH:
        return f"at most {MAX_NAME_LENGTH} characters (got {len(name)}): the cells' FelesSimulations are <name>-<cell>"
    if not re.match(NAME_PATTERN, name):
        return "lower-case letters, digits and '-', starting with a letter (a DNS label)"
    return None


def cell_name_length(sweep: str) -> int:
    """The longest cell name that keeps `<sweep>-<cell>` a valid FelesSimulation name."""
    return simulation.MAX_NAME_LENGTH - len(sweep) - 1


def simulation_name(sweep: str, cell: str) -> str:
    """The FelesSimulation of one cell."""
    return f"{sweep}-{cell}"
