"""Where a dataset's files live: command line, then environment, then spec, then the dataset's default folders.

The default folder of a downloadable dataset is its cache folder, `${XDG_CACHE_HOME:-~/.cache}/feles/datasets/NAME`,
where `feles data fetch NAME` puts the files; a few datasets look in a system folder after it (Fashion-MNIST:
Debian's /usr/share/datasets/fashion-mnist).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

ENV_VAR = "FELES_DATA_DIR"
CACHE_ENV_VAR = "XDG_CACHE_HOME"


def resolve_data_dir(explicit: str | Path | None, spec_value: str | None) -> Path | None:
    """`--data-dir` > $FELES_DATA_DIR > simulation.data_dir > None (the dataset's default directory)."""
    for candidate in (explicit, os.environ.get(ENV_VAR), spec_value):
        # An empty value (e.g. FELES_DATA_DIR= in a manifest) means "not set", not the current directory.
        if candidate is not None and str(candidate) != "":
            return Path(candidate).expanduser()
    return None


def cache_dir(name: str) -> Path:
    """The cache folder of dataset `name`: ${XDG_CACHE_HOME:-~/.cache}/feles/datasets/NAME."""
    root = os.environ.get(CACHE_ENV_VAR, "")
    # The XDG base directory spec says a relative (or empty) value is invalid and must be ignored.
    base = Path(root) if root and Path(root).is_absolute() else Path("~/.cache").expanduser()
    return base / "feles" / "datasets" / name


def fetch_dir(name: str, explicit: str | Path | None) -> Path:
    """Where `feles data fetch NAME` writes: --dir > $FELES_DATA_DIR > the cache folder, so runs find the files."""
    return resolve_data_dir(explicit, None) or cache_dir(name)


def search_dirs(name: str, data_dir: Path | None, fallbacks: Sequence[Path] = ()) -> list[Path]:
    """The folders a dataset looks in, in order: data_dir alone when given, else its cache folder, then fallbacks."""
    if data_dir is not None:
        return [Path(data_dir)]
    return [cache_dir(name), *fallbacks]
