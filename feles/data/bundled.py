"""The data files scikit-learn ships (digits, diabetes), read with numpy as its own loaders read them.

Why not `sklearn.datasets.load_digits`: importing scikit-learn (and the scipy it imports) cost every orchestrator
and worker process 2.4 s of CPU and 147 MB of memory on a slow 2-core machine, about as much as importing torch,
to read one small gzip CSV file. `importlib.util.find_spec` finds the installed package without importing it.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np


def bundled_table(file_name: str, delimiter: str | None = None) -> np.ndarray | None:
    """The numbers in scikit-learn's `datasets/data/<file_name>` (gzip CSV) as float64, as its loaders read them;
    None when scikit-learn is not installed or keeps the file elsewhere (the caller then uses its loader)."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "datasets" / "data" / file_name
        if path.is_file():
            with gzip.open(path, mode="rt", encoding="utf-8") as text:
                return np.loadtxt(text, delimiter=delimiter)
    return None
