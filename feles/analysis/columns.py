"""Small pyarrow -> numpy helpers shared by the analyses of the device records."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def values(table: pa.Table, name: str) -> np.ndarray:
    """A column as a numpy array (nulls become NaN in float columns)."""
    return table.column(name).to_numpy()


def equals(table: pa.Table, name: str, value: object) -> np.ndarray:
    """Which rows hold `value` in the column (a null is no match)."""
    return pc.fill_null(pc.equal(table.column(name), value), False).to_numpy()


def of_repetition(table: pa.Table, repetition: int) -> pa.Table:
    """The rows of one repetition (the table itself when it holds only that one: no copy)."""
    if table.num_rows:
        bounds = pc.min_max(table.column("repetition")).as_py()
        if bounds["min"] == bounds["max"] == repetition:
            return table
    return table.filter(pc.equal(table.column("repetition"), repetition))


def of_phase(records: pa.Table, phase: str | None) -> pa.Table:
    """The records rows of one phase (`fit`, `eval`); all rows for None."""
    return records if phase is None else records.filter(pc.equal(records.column("phase"), phase))


def locate(devices: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The position of each of `ids` in `devices` (sorted ids), and which of `ids` are there at all."""
    position = np.searchsorted(devices, ids)
    known = position < len(devices)
    known[known] = devices[position[known]] == ids[known]
    return position, known


def count_by_device(devices: np.ndarray, ids: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Per device of `devices` (sorted ids), how many of `ids` are that device (or the sum of their `weights`).

    Ids outside `devices` are left out.
    """
    position, known = locate(devices, ids)
    chosen = None if weights is None else weights[known]
    return np.bincount(position[known], weights=chosen, minlength=len(devices))


def group_last(keys: np.ndarray, order_by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys (sorted) and, per key, the row index with the largest `order_by`."""
    order = np.lexsort((order_by, keys))
    sorted_keys = keys[order]
    last = np.flatnonzero(np.append(sorted_keys[1:] != sorted_keys[:-1], True))
    return sorted_keys[last], order[last]
