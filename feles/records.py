"""Device records: what every device did, as Parquet tables under a run's output folder.

The orchestrator appends one part file per round while the run goes; analyses, `/v1/results/devices`
and the data tools of the field (pandas, polars, DuckDB) read the folders directly. Three tables:

- ``records``: one row per (repetition, round, phase, selected device): its work, outcome, times and
  energy. Failed rows carry the cost the job would have had; what a round spent sums the rows with
  ``failed == false``.
- ``availability``: one row per (repetition, round): the devices available in the round.
- ``population``: one row per (repetition, device): what is fixed for a repetition (speed, network
  parameters, data size, label histogram).

Layout (one file per round, written once and never rewritten)::

    devices/records/rep-0000/round-000042.parquet
    devices/availability/rep-0000/round-000042.parquet
    devices/population/rep-0000.parquet
"""

from __future__ import annotations

import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: The media type of Parquet bytes served over HTTP.
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
#: The folder of the device records inside a run's output folder.
RECORDS_FOLDER = "devices"


class Table(StrEnum):
    RECORDS = "records"
    AVAILABILITY = "availability"
    POPULATION = "population"


class Failure(StrEnum):
    """Why a selected device did not complete its job."""

    RANDOM = "random"  # the Bernoulli(p_fail) draw
    ENERGY = "energy"  # the job needed more energy than the device had left
    LOST = "lost"  # no result came (the simulation gave up on it)
    REJECTED = "rejected"  # the result was malformed


RECORDS_SCHEMA = pa.schema(
    [
        pa.field("repetition", pa.int32(), nullable=False),
        pa.field("round", pa.int32(), nullable=False),
        pa.field("phase", pa.string(), nullable=False),
        pa.field("device", pa.int64(), nullable=False),
        pa.field("available", pa.bool_(), nullable=False),
        pa.field("failed", pa.bool_(), nullable=False),
        pa.field("failure", pa.string()),
        pa.field("epochs", pa.int32(), nullable=False),
        pa.field("batch_size", pa.int32(), nullable=False),
        pa.field("num_examples", pa.int64(), nullable=False),
        pa.field("epochs_configured", pa.int32(), nullable=False),
        pa.field("batch_size_configured", pa.int32(), nullable=False),
        pa.field("num_examples_configured", pa.int64(), nullable=False),
        pa.field("local_iterations", pa.int64(), nullable=False),
        pa.field("computation_time", pa.float64(), nullable=False),
        pa.field("upload_time", pa.float64(), nullable=False),
        pa.field("download_time", pa.float64(), nullable=False),
        pa.field("energy", pa.float64(), nullable=False),
        pa.field("energy_available", pa.float64(), nullable=False),
        pa.field("energy_left", pa.float64(), nullable=False),
        pa.field("loss", pa.float64()),
        pa.field("accuracy", pa.float64()),
    ],
    metadata={
        "computation_time": "simulated seconds",
        "upload_time": "simulated seconds",
        "download_time": "simulated seconds",
        "energy": "mWh",
        "energy_available": "mWh, before the job",
        "energy_left": "mWh, after the job",
    },
)

AVAILABILITY_SCHEMA = pa.schema(
    [
        pa.field("repetition", pa.int32(), nullable=False),
        pa.field("round", pa.int32(), nullable=False),
        pa.field("available_devices", pa.list_(pa.int64()), nullable=False),
    ]
)

POPULATION_SCHEMA = pa.schema(
    [
        pa.field("repetition", pa.int32(), nullable=False),
        pa.field("device", pa.int64(), nullable=False),
        pa.field("ips", pa.float64(), nullable=False),
        pa.field("net_speed_mean", pa.float64(), nullable=False),
        pa.field("net_speed_var", pa.float64(), nullable=False),
        pa.field("data_size", pa.int64(), nullable=False),
        pa.field("label_counts", pa.list_(pa.int64()), nullable=False),
    ],
    metadata={"ips": "local iterations per second", "net_speed_mean": "parameters per second"},
)

SCHEMAS = {Table.RECORDS: RECORDS_SCHEMA, Table.AVAILABILITY: AVAILABILITY_SCHEMA, Table.POPULATION: POPULATION_SCHEMA}


def records_root(output_folder: str | Path) -> Path:
    return Path(output_folder) / RECORDS_FOLDER


def part_path(output_folder: str | Path, table: Table, repetition: int, round_: int | None = None) -> Path:
    """Where one part lives: a round's part, or (round None) a repetition's population."""
    folder = records_root(output_folder) / table.value
    if round_ is None:
        return folder / f"rep-{repetition:04d}.parquet"
    return folder / f"rep-{repetition:04d}" / f"round-{round_:06d}.parquet"


def round_of(path: Path) -> int:
    return int(path.stem.removeprefix("round-"))


def repetition_of(path: Path) -> int:
    """The repetition of a round part (its folder) or of a population part (its name)."""
    name = path.stem if path.stem.startswith("rep-") else path.parent.name
    return int(name.removeprefix("rep-"))


def part_files(output_folder: str | Path, table: Table) -> list[Path]:
    """The table's part files in (repetition, round) order."""
    folder = records_root(output_folder) / table.value
    if not folder.is_dir():
        return []
    pattern = "rep-*.parquet" if table is Table.POPULATION else "rep-*/round-*.parquet"
    return sorted(folder.glob(pattern))


def write_part(path: Path, table: pa.Table, **options: Any) -> None:
    """Write a part atomically (a reader, or a crash, never sees half a file); `options` go to the Parquet writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, temporary, compression="zstd", **options)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_table(
    output_folder: str | Path, table: Table, repetition: int | None = None, round_: int | None = None
) -> pa.Table:
    """A table's rows in (repetition, round) order, optionally of one repetition and one round.

    An empty table (with the schema) when nothing was written yet.
    """
    files = part_files(output_folder, table)
    if repetition is not None:
        files = [path for path in files if repetition_of(path) == repetition]
    if round_ is not None and table is not Table.POPULATION:
        files = [path for path in files if round_of(path) == round_]
    schema = SCHEMAS[table]
    if not files:
        return schema.empty_table()
    return pa.concat_tables([pq.read_table(path, schema=schema) for path in files])


def table_bytes(table: pa.Table) -> bytes:
    """A table as one Parquet file's bytes (what `/v1/results/devices` serves)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()
