"""The CRD that `feles crd` prints (feles/cli.py imports `crd_yaml` from here): the FelesSimulation's.

Each kind generates its own CRD (`simulation/crd.py`) with the generic generator (`crdgen.py`).
"""

from __future__ import annotations

from feles_operator.simulation.crd import crd_yaml as crd_yaml
