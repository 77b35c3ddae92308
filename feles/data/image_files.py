"""What the image datasets read from files share: pixels to normalised tensors, and the missing-files error."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from feles.data.dataset import DatasetUnavailableError, Split, Standardization
from feles.data.location import cache_dir


def image_split(pixels: np.ndarray, labels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> Split:
    """uint8 pixels (n, C, H, W), kept as uint8 and standardised per batch (scaled to [0, 1], then per channel);
    labels as int64."""
    channels = pixels.shape[1]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"{channels} channels need as many means and standard deviations, got {mean}, {std}")
    standardize = Standardization(255.0, tuple(mean), tuple(std))
    with warnings.catch_warnings():
        # A read-only memory map (feles.data.unpacked) is fine: nothing writes to a split's inputs.
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.uint8))
    return Split(x=x, y=torch.from_numpy(np.asarray(labels, dtype=np.int64)), standardize=standardize)


def check_labels(labels: np.ndarray, count: int, num_classes: int, source: str) -> None:
    """ValueError naming `source` unless there are `count` labels, each in 0 .. num_classes - 1."""
    if labels.shape != (count,) or (labels.size > 0 and int(labels.max()) >= num_classes):
        raise ValueError(f"{source}: expected {count} labels in 0..{num_classes - 1}, got shape {labels.shape}")


def files_unavailable(
    dataset: str, missing: str, searched: Sequence[Path], data_dir: Path | None, needed: str, extra_hint: str = ""
) -> DatasetUnavailableError:
    """The error for a dataset whose files are in none of the `searched` folders: how to fetch or point at them."""
    where = " or ".join(
        f"{folder}" + ("" if folder.is_dir() else " (the directory does not exist)") for folder in searched
    )
    fetch = f"feles data fetch {dataset}" + (f" --dir {data_dir}" if data_dir is not None else "")
    return DatasetUnavailableError(
        f"dataset {dataset!r}: {missing} not found in {where}. Run `{fetch}` to download it"
        + ("" if data_dir is not None else f" (into {cache_dir(dataset)})")
        + (f", {extra_hint}" if extra_hint else "")
        + f", or point --data-dir, the env var FELES_DATA_DIR or simulation.data_dir at a folder holding {needed}"
    )
