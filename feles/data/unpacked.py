"""Unpacked copies of compressed dataset arrays, memory-mapped, so that the processes of one machine share them.

Every worker, and the orchestrator, decompressed Fashion-MNIST's train images into a private 47 MB array
(~0.3 s each). Now the first process to read a compressed file writes the array, uncompressed, as a .npy
file in ${XDG_CACHE_HOME:-~/.cache}/feles/unpacked/ and maps it read-only; every later process maps the same
file. The operating system keeps one copy of its pages for all of them, and a process pages in only the
examples it touches. Writing the copy is best effort: where the folder cannot be written, each process
keeps its own array, as before.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from feles.data.location import CACHE_ENV_VAR

#: FELES_UNPACKED_CACHE=off keeps every array private (no file is written or read).
ENV_VAR = "FELES_UNPACKED_CACHE"
#: Bumped when the way arrays are read changes, so that older copies are not used.
FORMAT = 1
#: Smaller arrays stay private: sharing saves little, and a test's tiny files would fill the folder.
MIN_BYTES = 1 << 20


def unpacked_folder() -> Path:
    """${XDG_CACHE_HOME:-~/.cache}/feles/unpacked."""
    root = os.environ.get(CACHE_ENV_VAR, "")
    base = Path(root) if root and Path(root).is_absolute() else Path("~/.cache").expanduser()
    return base / "feles" / "unpacked"


def unpacked_path(source: Path) -> Path:
    """The copy of `source`'s array: named after the file, its size and its modification time."""
    status = source.stat()
    key = f"{source.resolve()}\0{status.st_size}\0{status.st_mtime_ns}\0{FORMAT}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return unpacked_folder() / f"{source.name}-{digest}.npy"


def unpacked_array(source: Path, read: Callable[[Path], np.ndarray]) -> np.ndarray:
    """`read(source)`, or the same array mapped read-only from its unpacked copy (written first if missing)."""
    if os.environ.get(ENV_VAR, "").lower() == "off":
        return read(source)
    copy = unpacked_path(source)
    mapped = _map(copy)
    if mapped is not None:
        return mapped
    array = read(source)
    if array.nbytes < MIN_BYTES or not _write(copy, array):
        return array
    # The private array goes: this process shares the copy's pages too.
    mapped = _map(copy)
    return array if mapped is None else mapped


def _map(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None  # missing, or damaged (it is written again)


def _write(path: Path, array: np.ndarray) -> bool:
    """Write atomically (a reader never maps half a file; processes racing write the same bytes)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        os.replace(temporary, path)
        return True
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        return False
