"""Hand-made device records (the tables of feles/records.py) for the analyzer's tests and figures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from feles.records import (
    AVAILABILITY_SCHEMA,
    POPULATION_SCHEMA,
    RECORDS_SCHEMA,
    Table,
    part_path,
    write_part,
)
from tests.unit.analyze_documents import results_document, round_record, write_document


def job(device: int, round_: int = 0, phase: str = "fit", repetition: int = 0, **fields: Any) -> dict[str, Any]:
    """A records row of a completed job: 2 s computation, 1 s download, 1 s upload, 10 mWh; `fields` override."""
    row = {
        "repetition": repetition,
        "round": round_,
        "phase": phase,
        "device": device,
        "available": True,
        "failed": False,
        "failure": None,
        "epochs": 1,
        "batch_size": 32,
        "num_examples": 64,
        "epochs_configured": 1,
        "batch_size_configured": 32,
        "num_examples_configured": 64,
        "local_iterations": 2,
        "computation_time": 2.0,
        "upload_time": 1.0,
        "download_time": 1.0,
        "energy": 10.0,
        "energy_available": 1000.0,
        "energy_left": 990.0,
        "loss": 1.0,
        "accuracy": 0.5,
    }
    row.update(fields)
    return row


def failed(device: int, reason: str, round_: int = 0, phase: str = "fit", **fields: Any) -> dict[str, Any]:
    return job(device, round_, phase, failed=True, failure=reason, loss=None, accuracy=None, **fields)


def records_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=RECORDS_SCHEMA)


def availability_table(available: Sequence[Sequence[int]], repetition: int = 0) -> pa.Table:
    """Round r's available devices are available[r]."""
    rows = [
        {"repetition": repetition, "round": round_, "available_devices": list(ids)}
        for round_, ids in enumerate(available)
    ]
    return pa.Table.from_pylist(rows, schema=AVAILABILITY_SCHEMA)


def population_table(num_devices: int, repetition: int = 0, classes: int = 3, **columns: Sequence[Any]) -> pa.Table:
    """Devices 0..n-1: ips 10, net speed 1000, data size 30 split evenly over `classes`; `columns` override."""
    table: dict[str, Any] = {
        "repetition": [repetition] * num_devices,
        "device": list(range(num_devices)),
        "ips": [10.0] * num_devices,
        "net_speed_mean": [1000.0] * num_devices,
        "net_speed_var": [100.0] * num_devices,
        "data_size": [30] * num_devices,
        "label_counts": [[30 // classes] * classes] * num_devices,
    }
    table.update({name: list(value) for name, value in columns.items()})
    return pa.Table.from_pydict(table, schema=POPULATION_SCHEMA)


def write_tables(output: Path, records: pa.Table, availability: pa.Table, population: pa.Table) -> None:
    """Write the tables as the orchestrator does: a part per (repetition, round), a population per repetition."""
    for table, kind in ((records, Table.RECORDS), (availability, Table.AVAILABILITY)):
        keys = np.unique(np.stack([table["repetition"].to_numpy(), table["round"].to_numpy()]), axis=1)
        for repetition, round_ in keys.T:
            mask = (table["repetition"].to_numpy() == repetition) & (table["round"].to_numpy() == round_)
            write_part(part_path(output, kind, int(repetition), int(round_)), table.filter(mask))
    for repetition in np.unique(population["repetition"].to_numpy()):
        part = population.filter(population["repetition"].to_numpy() == repetition)
        write_part(part_path(output, Table.POPULATION, int(repetition)), part)


def synthetic_parts(
    num_devices: int,
    num_rounds: int,
    repetitions: int = 1,
    k: float = 0.1,
    prefer_fast: float = 0.0,
    adapt_epochs: bool = False,
    seed: int = 0,
) -> Iterator[tuple[Table, int, int | None, pa.Table]]:
    """A plausible run as the orchestrator writes it: (table, repetition, round or None, part), part by part.

    Devices of random speed and data, ~80 % available per round, k of them selected per phase. prefer_fast > 0
    makes the selection favour devices with high ips (unfair); adapt_epochs lets an update strategy cut the
    epochs of slow devices. Times in s, energy in mWh as the simulator computes them.
    """
    rng = np.random.default_rng(seed)
    parameters, classes = 200_000, 10
    for rep in range(repetitions):
        ips = rng.uniform(5, 60, num_devices)
        speed = rng.uniform(30_000, 170_000, num_devices)
        sizes = rng.integers(20, 400, num_devices)
        shares = rng.dirichlet(np.full(classes, 0.5), num_devices)
        labels = np.floor(shares * sizes[:, None]).astype(np.int64)
        population = {
            "repetition": np.full(num_devices, rep, np.int32),
            "device": np.arange(num_devices, dtype=np.int64),
            "ips": ips,
            "net_speed_mean": speed,
            "net_speed_var": speed * 0.3,
            "data_size": labels.sum(axis=1),
            "label_counts": pa.array(list(labels), type=pa.list_(pa.int64())),
        }
        yield Table.POPULATION, rep, None, pa.table(population, schema=POPULATION_SCHEMA)
        weight = np.exp(prefer_fast * (ips - ips.mean()) / ips.std())
        for round_ in range(num_rounds):
            available = np.flatnonzero(rng.random(num_devices) < 0.8)
            availability = {
                "repetition": pa.array([rep], pa.int32()),
                "round": pa.array([round_], pa.int32()),
                "available_devices": pa.array([available], pa.list_(pa.int64())),
            }
            yield Table.AVAILABILITY, rep, round_, pa.table(availability, schema=AVAILABILITY_SCHEMA)
            phases = []
            for phase, transfers in (("fit", 2), ("eval", 1)):
                count = min(len(available), max(1, round(k * num_devices)))
                p = weight[available] / weight[available].sum()
                chosen = np.sort(rng.choice(available, count, replace=False, p=p))
                phases.append(
                    _phase_rows(rng, rep, round_, phase, transfers, chosen, ips, speed, sizes, parameters, adapt_epochs)
                )
            yield Table.RECORDS, rep, round_, pa.concat_tables(phases)


def synthetic_tables(*args: Any, **kwargs: Any) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The parts of synthetic_parts(*args, **kwargs) as the three whole tables (records, availability, population)."""
    parts: dict[Table, list[pa.Table]] = {table: [] for table in Table}
    for table, _, _, part in synthetic_parts(*args, **kwargs):
        parts[table].append(part)
    return tuple(pa.concat_tables(parts[table]) for table in Table)  # type: ignore[return-value]


def write_synthetic(output: Path, *args: Any, **kwargs: Any) -> None:
    """Write synthetic_parts(*args, **kwargs) part by part, as the orchestrator does."""
    for table, repetition, round_, part in synthetic_parts(*args, **kwargs):
        write_part(part_path(output, table, repetition, round_), part)


def _phase_rows(rng, rep, round_, phase, transfers, chosen, ips, speed, sizes, parameters, adapt_epochs) -> pa.Table:
    n = len(chosen)
    epochs_configured = np.full(n, 5 if phase == "fit" else 1, np.int32)
    epochs = epochs_configured.copy()
    if adapt_epochs and phase == "fit":
        epochs = np.where(ips[chosen] < np.median(ips), 2, epochs_configured).astype(np.int32)
    batch = np.full(n, 32, np.int32)
    examples = sizes[chosen].astype(np.int64)
    iterations = epochs * np.ceil(examples / batch).astype(np.int64)
    computation = iterations / ips[chosen]
    net = speed[chosen] * rng.uniform(0.7, 1.3, n)
    download = parameters / net
    upload = download if transfers == 2 else np.zeros(n)
    energy = 100 * computation + 200 * (download + upload)
    available_energy = rng.uniform(800, 8000, n)
    reason = np.full(n, None, object)
    reason[energy > available_energy] = "energy"
    draw = rng.random(n)
    reason[(reason == None) & (draw < 0.04)] = "random"  # noqa: E711 (elementwise)
    reason[(reason == None) & (draw > 0.995)] = "lost"  # noqa: E711
    reason[(reason == None) & (draw > 0.99) & (draw <= 0.995)] = "rejected"  # noqa: E711
    done = reason == None  # noqa: E711
    return pa.table(
        {
            "repetition": np.full(n, rep, np.int32),
            "round": np.full(n, round_, np.int32),
            "phase": [phase] * n,
            "device": chosen.astype(np.int64),
            "available": np.ones(n, bool),
            "failed": ~done,
            "failure": pa.array(list(reason), pa.string()),
            "epochs": epochs,
            "batch_size": batch,
            "num_examples": examples,
            "epochs_configured": epochs_configured,
            "batch_size_configured": batch,
            "num_examples_configured": examples,
            "local_iterations": iterations,
            "computation_time": computation,
            "upload_time": upload,
            "download_time": download,
            "energy": energy,
            "energy_available": available_energy,
            "energy_left": np.where(done, available_energy - energy, available_energy),
            "loss": pa.array(np.where(done, rng.uniform(0.3, 2, n), np.nan), from_pandas=True),
            "accuracy": pa.array(np.where(done, rng.uniform(0.3, 0.9, n), np.nan), from_pandas=True),
        },
        schema=RECORDS_SCHEMA,
    )


def write_run(
    folder: Path,
    tables: tuple[pa.Table, pa.Table, pa.Table] | None,
    accuracies: Sequence[Sequence[float]] = ((0.5, 0.6),),
    algorithm: str = "fedavg",
    num_devices: int = 4,
    **spec: Any,
) -> Path:
    """`folder/results.json` (rounds with these test accuracies) and, unless tables is None, `folder/devices/`."""
    rounds = [
        [round_record(rep, round_, accuracy) for round_, accuracy in enumerate(values)]
        for rep, values in enumerate(accuracies)
    ]
    document = results_document(rounds, algorithm=algorithm)
    document["spec"]["devices"] = {"num": num_devices}
    document["spec"].update(spec)
    path = write_document(folder / "results.json", document)
    if tables is not None:
        write_tables(folder, *tables)
    return path
