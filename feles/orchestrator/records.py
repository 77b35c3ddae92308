"""Appends the device records of a run as it goes: one Parquet part per round, written before the checkpoint.

Rows are built from a phase's plan and outcome (pure functions); nothing is kept in memory after a
write. On resume the parts a crash left beyond the checkpoint are removed, so that no round is
missing or recorded twice.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from feles.config import PhaseParams, SimulationSpec
from feles.devices import DevicePopulation, RoundConditions
from feles.orchestrator.outcomes import PhaseOutcome
from feles.protocol import Phase
from feles.records import (
    AVAILABILITY_SCHEMA,
    POPULATION_SCHEMA,
    RECORDS_SCHEMA,
    Failure,
    Table,
    part_files,
    part_path,
    records_root,
    repetition_of,
    round_of,
    write_part,
)

#: Parquet writer options per table: sorted device ids delta-encode to a few bits each.
_AVAILABILITY_OPTIONS = {"use_dictionary": False, "column_encoding": {"available_devices": "DELTA_BINARY_PACKED"}}


def failure_reasons(outcome: PhaseOutcome) -> list[str | None]:
    """Why each selected device failed (None: it completed), in the plan's device order."""
    plan = outcome.plan
    reasons: list[str | None] = []
    for i, device in enumerate(plan.selected.tolist()):
        if plan.random_failures[i]:
            reasons.append(Failure.RANDOM.value)
        elif plan.costs.failed[i]:
            reasons.append(Failure.ENERGY.value)
        elif device in outcome.rejected:
            reasons.append(Failure.REJECTED.value)
        elif device not in outcome.results:
            reasons.append(Failure.LOST.value)
        else:
            reasons.append(None)
    return reasons


def phase_rows(outcome: PhaseOutcome, configured: PhaseParams, data_sizes: np.ndarray) -> pa.Table:
    """The records of one phase: a row per selected device, in device order."""
    plan, costs = outcome.plan, outcome.plan.costs
    devices = plan.selected
    n = len(devices)
    started = ~costs.failed
    results = [outcome.results.get(device) for device in devices.tolist()]
    losses = [None if result is None else result[0].loss for result in results]
    accuracies = [None if result is None else result[0].accuracy for result in results]
    configured_examples = (
        data_sizes[devices] if configured.num_examples is None else np.full(n, configured.num_examples, np.int64)
    )
    columns = {
        "repetition": np.full(n, plan.repetition, np.int32),
        "round": np.full(n, plan.round, np.int32),
        "phase": [plan.phase.value] * n,
        "device": devices,
        "available": np.ones(n, dtype=bool),
        "failed": outcome.costs.failed,
        "failure": failure_reasons(outcome),
        "epochs": plan.work.epochs.astype(np.int32),
        "batch_size": plan.work.batch_size.astype(np.int32),
        "num_examples": plan.work.num_examples.astype(np.int64),
        "epochs_configured": np.full(n, configured.epochs, np.int32),
        "batch_size_configured": np.full(n, configured.batch_size, np.int32),
        "num_examples_configured": configured_examples.astype(np.int64),
        "local_iterations": plan.iterations.astype(np.int64),
        "computation_time": costs.computation_time,
        "upload_time": costs.upload_time,
        "download_time": costs.download_time,
        "energy": costs.energy,
        "energy_available": plan.energy_before,
        "energy_left": np.where(started, plan.energy_before - costs.energy, plan.energy_before),
        "loss": losses,
        "accuracy": accuracies if plan.phase is Phase.EVAL else [None] * n,
    }
    return pa.table(columns, schema=RECORDS_SCHEMA)


def availability_row(repetition: int, round_: int, conditions: RoundConditions) -> pa.Table:
    return pa.table(
        {"repetition": [repetition], "round": [round_], "available_devices": [conditions.available_ids]},
        schema=AVAILABILITY_SCHEMA,
    )


def population_rows(
    spec: SimulationSpec, repetition: int, population: DevicePopulation, label_counts: np.ndarray
) -> pa.Table:
    """One row per device: what is fixed for the repetition. `label_counts` is (devices, classes)."""
    n = population.size
    counts = pa.FixedSizeListArray.from_arrays(label_counts.astype(np.int64).ravel(), label_counts.shape[1])
    return pa.table(
        {
            "repetition": np.full(n, repetition, np.int32),
            "device": np.arange(n, dtype=np.int64),
            "ips": population.ips,
            "net_speed_mean": np.full(n, spec.network.speed_mean),
            "net_speed_var": np.full(n, spec.network.speed_var),
            "data_size": population.data_sizes.astype(np.int64),
            "label_counts": counts.cast(pa.list_(pa.int64())),
        },
        schema=POPULATION_SCHEMA,
    )


class RecordsWriter:
    """Writes a run's device records under its output folder, one part per round."""

    def __init__(self, spec: SimulationSpec) -> None:
        self.spec = spec
        self.folder = Path(spec.simulation.output_folder)
        self.configured = {Phase.FIT: spec.algorithms.fit.params, Phase.EVAL: spec.algorithms.eval.params}

    def discard_from(self, repetition: int, round_: int) -> None:
        """Remove the parts at or after (repetition, round_): a crash may have left them beyond the checkpoint."""
        if repetition == 0 and round_ == 0:
            shutil.rmtree(records_root(self.folder), ignore_errors=True)
            return
        for table in (Table.RECORDS, Table.AVAILABILITY):
            for path in part_files(self.folder, table):
                if (repetition_of(path), round_of(path)) >= (repetition, round_):
                    path.unlink()
        for path in part_files(self.folder, Table.POPULATION):
            if repetition_of(path) > repetition:
                path.unlink()

    def write_population(self, repetition: int, population: DevicePopulation, label_counts: np.ndarray) -> None:
        """The repetition's population, once (a resumed repetition already has it)."""
        path = part_path(self.folder, Table.POPULATION, repetition)
        if not path.exists():
            write_part(path, population_rows(self.spec, repetition, population, label_counts))

    def write_round(self, conditions: RoundConditions, phases: list[PhaseOutcome], data_sizes: np.ndarray) -> None:
        """A round's records (every phase) and its availability."""
        plan = phases[0].plan
        rows = [phase_rows(outcome, self.configured[outcome.plan.phase], data_sizes) for outcome in phases]
        write_part(part_path(self.folder, Table.RECORDS, plan.repetition, plan.round), pa.concat_tables(rows))
        availability = availability_row(plan.repetition, plan.round, conditions)
        path = part_path(self.folder, Table.AVAILABILITY, plan.repetition, plan.round)
        write_part(path, availability, **_AVAILABILITY_OPTIONS)
