"""Appends the device records of a run as it goes: one Parquet part per round, written before the checkpoint.

Rows are built from a phase's plan and outcome (pure functions); nothing is kept in memory after a
write. On resume the parts a crash left beyond the checkpoint are removed, so that no round is
missing or recorded twice.
"""

from __future__ import annotations

import shutil
from concurrent.futures import Future, ThreadPoolExecutor
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
    Failure,
    Table,
    arrow_table,
    empty_table,
    part_files,
    part_path,
    records_root,
    records_schema,
    repetition_of,
    round_of,
    write_part,
)

#: Parquet writer options per table: sorted device ids delta-encode to a few bits each.
_AVAILABILITY_OPTIONS = {"column_encoding": {"available_devices.list.element": "DELTA_BINARY_PACKED"}}


#: The failure column's categories, in the code order of `failure_codes` (-1: the device completed).
FAILURES = [Failure.RANDOM.value, Failure.ENERGY.value, Failure.REJECTED.value, Failure.LOST.value]


def failure_codes(outcome: PhaseOutcome) -> np.ndarray:
    """Why each selected device failed, as an index into FAILURES (-1: it completed), in the plan's order."""
    plan = outcome.plan
    codes = np.full(len(plan.selected), -1, dtype=np.int8)
    # Later assignments win: a device failing its random draw never started, so it has no other reason.
    codes[~outcome.completed] = FAILURES.index(Failure.LOST.value)
    codes[np.isin(plan.selected, np.fromiter(outcome.rejected, np.int64))] = FAILURES.index(Failure.REJECTED.value)
    codes[plan.costs.failed] = FAILURES.index(Failure.ENERGY.value)
    codes[plan.random_failures] = FAILURES.index(Failure.RANDOM.value)
    return codes


def failure_reasons(outcome: PhaseOutcome) -> list[str | None]:
    """Why each selected device failed (None: it completed), in the plan's device order."""
    return [None if code < 0 else FAILURES[code] for code in failure_codes(outcome).tolist()]


def phase_rows(
    outcome: PhaseOutcome, configured: PhaseParams, data_sizes: np.ndarray, metric: str = "accuracy"
) -> pa.Table:
    """The records of one phase: a row per selected device, in device order; eval rows carry `metric`."""
    plan, costs = outcome.plan, outcome.plan.costs
    devices = plan.selected
    n = len(devices)
    started = ~costs.failed
    missing = ~outcome.completed
    losses, metrics = np.full(n, np.nan), np.full(n, np.nan)
    losses[outcome.completed] = [result.loss for result, _ in outcome.results.values()]
    if plan.phase is Phase.EVAL:
        metrics[outcome.completed] = [np.nan if r.metric is None else r.metric for r, _ in outcome.results.values()]
    configured_examples = (
        data_sizes[devices] if configured.num_examples is None else np.full(n, configured.num_examples, np.int64)
    )
    columns = {
        "repetition": np.full(n, plan.repetition, np.int32),
        "round": np.full(n, plan.round, np.int32),
        "phase": (np.zeros(n, np.int8), [plan.phase.value]),
        "device": devices,
        "available": np.ones(n, dtype=bool),
        "failed": outcome.costs.failed,
        "failure": (failure_codes(outcome), FAILURES),
        "epochs": plan.work.epochs,
        "batch_size": plan.work.batch_size,
        "num_examples": plan.work.num_examples,
        "epochs_configured": np.full(n, configured.epochs, np.int32),
        "batch_size_configured": np.full(n, configured.batch_size, np.int32),
        "num_examples_configured": configured_examples,
        "local_iterations": plan.iterations,
        "computation_time": costs.computation_time,
        "upload_time": costs.upload_time,
        "download_time": costs.download_time,
        "energy": costs.energy,
        "energy_available": plan.energy_before,
        "energy_left": np.where(started, plan.energy_before - costs.energy, plan.energy_before),
        # A diverged model's NaN loss is a value; a device without a result has none (null).
        "loss": (losses, missing),
        metric: (metrics, missing | (plan.phase is not Phase.EVAL)),
    }
    return arrow_table(records_schema(metric), columns)


def availability_row(repetition: int, round_: int, conditions: RoundConditions) -> pa.Table:
    available = conditions.available_ids
    columns = {
        "repetition": np.array([repetition], np.int32),
        "round": np.array([round_], np.int32),
        "available_devices": (np.array([0, len(available)]), available),
    }
    return arrow_table(AVAILABILITY_SCHEMA, columns)


def population_rows(repetition: int, population: DevicePopulation, label_counts: np.ndarray) -> pa.Table:
    """One row per device: what is fixed for the repetition. `label_counts` is (devices, classes)."""
    n, classes = label_counts.shape
    columns = {
        "repetition": np.full(n, repetition, np.int32),
        "device": np.arange(n, dtype=np.int64),
        "ips": population.ips,
        "net_speed_mean": population.net_speed_mean,
        "net_speed_var": population.net_speed_spread,
        "data_size": population.data_sizes,
        "label_counts": (np.arange(n + 1) * classes, label_counts.ravel()),
    }
    return arrow_table(POPULATION_SCHEMA, columns)


class RecordsWriter:
    """Writes a run's device records under its output folder, one part per round.

    The loop's thread builds a round's rows; a thread of the writer encodes and writes them while the loop
    writes results.json (Parquet encoding releases the GIL). `flush` waits for the writes: the loop calls it
    before the checkpoint, so that a checkpointed round always has its records.
    """

    def __init__(self, spec: SimulationSpec) -> None:
        self.spec = spec
        self.folder = Path(spec.simulation.output_folder)
        self.configured = {Phase.FIT: spec.algorithms.fit.params, Phase.EVAL: spec.algorithms.eval.params}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feles-records")
        self._pending: list[Future[None]] = []

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
            write_part(path, population_rows(repetition, population, label_counts))

    def write_round(
        self, when: tuple[int, int], conditions: RoundConditions, phases: list[PhaseOutcome], data_sizes: np.ndarray
    ) -> None:
        """A round's records (every phase) and its availability; `when` is (repetition, round)."""
        metric = self.spec.simulation.metric
        rows = [phase_rows(outcome, self.configured[outcome.plan.phase], data_sizes, metric) for outcome in phases]
        records = pa.concat_tables(rows) if rows else empty_table(records_schema(metric))
        availability = availability_row(*when, conditions)
        self._pending += [
            self._executor.submit(write_part, part_path(self.folder, Table.RECORDS, *when), records),
            self._executor.submit(
                write_part, part_path(self.folder, Table.AVAILABILITY, *when), availability, **_AVAILABILITY_OPTIONS
            ),
        ]

    def flush(self) -> None:
        """Wait until every submitted part is written; a failed write raises here."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Let the writes under way finish (a failure among them was already raised by `flush` or is moot)."""
        self._executor.shutdown(wait=True)
        self._pending = []
