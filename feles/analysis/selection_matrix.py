"""The device x round selection matrix, binned so that it stays readable at 10,000 devices and 1,000 rounds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from feles.analysis.columns import locate, of_phase, values

#: Most device rows and round columns a figure shows: beyond, neighbours are binned together.
MAX_DEVICE_BINS = 200
MAX_ROUND_BINS = 250


@dataclass(frozen=True)
class SelectionMatrix:
    """fraction[i, j]: share of the device-rounds of device bin i and round bin j in which the device was selected.

    Device bin i holds the devices at positions device_edges[i]:device_edges[i + 1] of the rows' order; round
    bin j the rounds round_edges[j]:round_edges[j + 1] (0-based). Unbinned (bins of 1), a cell is 0 or 1.
    """

    fraction: np.ndarray
    device_edges: np.ndarray
    round_edges: np.ndarray
    device_bin: int
    round_bin: int

    @property
    def binned(self) -> bool:
        return self.device_bin > 1 or self.round_bin > 1

    def describe(self) -> str:
        """What a cell is, for the figure's title."""
        if not self.binned:
            return "every device and round; dark = selected"
        parts = []
        if self.device_bin > 1:
            parts.append(f"devices in bins of {self.device_bin:,}")
        if self.round_bin > 1:
            parts.append(f"rounds in bins of {self.round_bin:,}")
        return f"{' and '.join(parts)}; colour = fraction of the bin's device-rounds selected"


def _edges(length: int, size: int) -> np.ndarray:
    return np.minimum(np.arange(0, length + size, size), length)[: math.ceil(length / size) + 1]


def bin_size(length: int, most: int) -> int:
    """The smallest bin size that makes at most `most` bins of `length` items."""
    return max(1, math.ceil(length / most))


def selection_matrix(
    records: pa.Table,
    devices: np.ndarray,
    num_rounds: int,
    phase: str | None = "fit",
    max_devices: int = MAX_DEVICE_BINS,
    max_rounds: int = MAX_ROUND_BINS,
    order: np.ndarray | None = None,
) -> SelectionMatrix:
    """One repetition's selections of `phase` over `devices` (sorted ids) and rounds 0..num_rounds-1, binned.

    `order` (positions in `devices`) sets the rows' order, e.g. by times selected; by id when None. Counts
    straight into the bins: no devices x rounds array is built.
    """
    device_bin, round_bin = bin_size(len(devices), max_devices), bin_size(num_rounds, max_rounds)
    device_edges, round_edges = _edges(len(devices), device_bin), _edges(num_rounds, round_bin)
    selected = of_phase(records, phase)
    position, known = locate(devices, values(selected, "device"))
    if order is not None:
        row = np.empty(len(devices), dtype=np.int64)
        row[order] = np.arange(len(devices))
        position = row[np.where(known, position, 0)] if len(devices) else position
    rounds = values(selected, "round")
    known &= (rounds >= 0) & (rounds < num_rounds)
    shape = (len(device_edges) - 1, len(round_edges) - 1)
    counts = np.zeros(shape)
    np.add.at(counts, (position[known] // device_bin, rounds[known] // round_bin), 1)
    cells = np.outer(np.diff(device_edges), np.diff(round_edges))
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(cells > 0, counts / np.maximum(cells, 1), 0.0)
    return SelectionMatrix(fraction, device_edges, round_edges, device_bin, round_bin)
