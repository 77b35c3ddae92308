"""Device records written by hand, standing in for the orchestrator's writer in the live page's tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from feles.records import RECORDS_SCHEMA, Table, part_path, write_part


def records_table(
    repetition: int, round_: int, fit: Sequence[int], failed: Sequence[int] = (), evaluated: Sequence[int] = ()
) -> pa.Table:
    """One round's records: `fit` devices trained (those in `failed` failed), `evaluated` ones evaluated."""
    rows = [("fit", device, device in failed) for device in fit] + [("eval", device, False) for device in evaluated]
    count = len(rows)
    columns = {
        "repetition": [repetition] * count,
        "round": [round_] * count,
        "phase": [phase for phase, _, _ in rows],
        "device": [device for _, device, _ in rows],
        "available": [True] * count,
        "failed": [flag for _, _, flag in rows],
        "failure": ["random" if flag else None for _, _, flag in rows],
    }
    for name in RECORDS_SCHEMA.names:
        if name not in columns:
            kind = RECORDS_SCHEMA.field(name).type
            columns[name] = [1.0 if pa.types.is_floating(kind) else 1] * count
    return pa.Table.from_pydict(columns, schema=RECORDS_SCHEMA)


def write_round(
    output_folder: str | Path, repetition: int, round_: int, fit: Sequence[int], failed: Sequence[int] = ()
) -> Path:
    path = part_path(output_folder, Table.RECORDS, repetition, round_)
    write_part(path, records_table(repetition, round_, fit, failed))
    return path
