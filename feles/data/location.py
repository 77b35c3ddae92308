"""Where a dataset's files live: command line, then environment, then spec, then the dataset's default."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "FELES_DATA_DIR"


def resolve_data_dir(explicit: str | Path | None, spec_value: str | None) -> Path | None:
    """`--data-dir` > $FELES_DATA_DIR > simulation.data_dir > None (the dataset's default directory)."""
    for candidate in (explicit, os.environ.get(ENV_VAR), spec_value):
        # An empty value (e.g. FELES_DATA_DIR= in a manifest) means "not set", not the current directory.
        if candidate is not None and str(candidate) != "":
            return Path(candidate).expanduser()
    return None
