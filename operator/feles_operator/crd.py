"""The CRDs that `feles crd` prints (feles/cli.py imports from here): the FelesSimulation's, the FelesSweep's.

Each kind generates its own CRD (`simulation/crd.py`, `sweep/crd.py`) with the generic generator (`crdgen.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from feles_operator.simulation.crd import crd_yaml as crd_yaml
from feles_operator.sweep.crd import crd_yaml as sweep_crd_yaml

#: `feles crd --kind KIND`: each kind's CRD as YAML.
KINDS: dict[str, Callable[[], str]] = {"simulation": crd_yaml, "sweep": sweep_crd_yaml}


def all_crds_yaml() -> str:
    """Every kind's CRD, as one multi-document YAML stream."""
    return "---\n".join(generate() for generate in KINDS.values())
