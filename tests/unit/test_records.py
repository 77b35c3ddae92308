"""Device records: rows built from a phase's plan and outcome, the part layout, resume clean-up, reading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from feles.config import PhaseParams, parse_spec
from feles.devices import DevicePopulation, JobCosts, RoundConditions
from feles.orchestrator.outcomes import PhaseOutcome
from feles.orchestrator.planning import PhasePlan
from feles.orchestrator.records import RecordsWriter, failure_reasons, phase_rows, population_rows
from feles.protocol import JobResult, Phase
from feles.records import RECORDS_SCHEMA, Table, part_files, part_path, read_table, table_bytes
from feles.strategies import LocalWork


def result(device: int, loss: float, accuracy: float | None = None) -> tuple[JobResult, dict[str, torch.Tensor]]:
    meta = JobResult(
        job_id=f"j{device}", worker_id="w", loss=loss, metric=accuracy, num_examples=10, num_steps=1, train_seconds=0
    )
    return meta, {}


def plan_of(phase: Phase = Phase.FIT, repetition: int = 1, round_: int = 3) -> PhasePlan:
    """Five devices: 2 fails its random draw, 5 lacks energy, 7 will be rejected, 8 lost, 4 completes."""
    devices = np.array([2, 4, 5, 7, 8])
    work = LocalWork(devices, np.array([1, 2, 1, 1, 3]), np.array([10, 10, 20, 10, 5]), np.array([30, 40, 20, 10, 15]))
    costs = JobCosts(
        devices=devices,
        computation_time=np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        download_time=np.array([0.5, 0.5, 0.5, 0.5, 0.5]),
        upload_time=np.array([0.5, 0.5, 0.5, 0.5, 0.5]),
        energy=np.array([10.0, 20.0, 90.0, 5.0, 6.0]),
        failed=np.array([True, False, True, False, False]),
    )
    return PhasePlan(
        repetition=repetition,
        round=round_,
        phase=phase,
        work=work,
        iterations=np.array([3, 8, 1, 1, 9]),
        random_failures=np.array([True, False, False, False, False]),
        costs=costs,
        energy_before=np.array([100.0, 100.0, 50.0, 100.0, 100.0]),
        seeds=np.arange(5),
    )


def outcome_of(phase: Phase = Phase.FIT) -> PhaseOutcome:
    return PhaseOutcome(plan_of(phase), {4: result(4, 0.5, 0.75 if phase is Phase.EVAL else None)}, frozenset({7}))


def test_failure_reasons_name_each_way_a_device_fails() -> None:
    assert failure_reasons(outcome_of()) == ["random", None, "energy", "rejected", "lost"]


def test_phase_rows_hold_the_plan_and_the_outcome_of_every_selected_device() -> None:
    sizes = np.arange(10) * 100
    rows = phase_rows(outcome_of(), PhaseParams(epochs=1, batch_size=10, num_examples=None), sizes).to_pydict()
    assert rows["device"] == [2, 4, 5, 7, 8]
    assert rows["repetition"] == [1] * 5 and rows["round"] == [3] * 5 and rows["phase"] == ["fit"] * 5
    assert rows["failed"] == [True, False, True, True, True]
    assert rows["epochs"] == [1, 2, 1, 1, 3] and rows["num_examples"] == [30, 40, 20, 10, 15]
    assert rows["num_examples_configured"] == [200, 400, 500, 700, 800]  # null: the device's whole data
    assert rows["epochs_configured"] == [1] * 5 and rows["batch_size_configured"] == [10] * 5
    assert rows["local_iterations"] == [3, 8, 1, 1, 9]
    assert rows["computation_time"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert rows["upload_time"] == [0.5] * 5 and rows["download_time"] == [0.5] * 5
    # Devices failing before they start spend nothing; started ones spend their energy even without a result.
    assert rows["energy_available"] == [100.0, 100.0, 50.0, 100.0, 100.0]
    assert rows["energy_left"] == [100.0, 80.0, 50.0, 95.0, 94.0]
    assert rows["loss"] == [None, 0.5, None, None, None]
    assert rows["accuracy"] == [None] * 5


def test_eval_rows_carry_the_accuracy_and_a_configured_example_count() -> None:
    rows = phase_rows(outcome_of(Phase.EVAL), PhaseParams(num_examples=25), np.full(10, 100)).to_pydict()
    assert rows["phase"] == ["eval"] * 5
    assert rows["accuracy"] == [None, 0.75, None, None, None]
    assert rows["num_examples_configured"] == [25] * 5


def test_an_empty_phase_gives_no_rows() -> None:
    plan = plan_of()
    nothing = np.array([], dtype=np.int64)
    empty = PhasePlan(
        repetition=0,
        round=0,
        phase=Phase.FIT,
        work=LocalWork(nothing, nothing, nothing, nothing),
        iterations=nothing,
        random_failures=np.array([], dtype=bool),
        costs=JobCosts(nothing, *[np.array([])] * 4, np.array([], dtype=bool)),
        energy_before=np.array([]),
        seeds=nothing,
    )
    assert plan.selected.size == 5
    table = phase_rows(PhaseOutcome(empty, {}, frozenset()), PhaseParams(), np.ones(3, np.int64))
    assert table.num_rows == 0 and table.schema == RECORDS_SCHEMA


def a_population(num: int) -> DevicePopulation:
    return DevicePopulation(np.ones(num), np.ones(num, np.int64), np.full(num, 100.0), np.full(num, 10.0))


def test_population_rows_hold_label_histograms_and_network_of_each_device() -> None:
    population = DevicePopulation(
        ips=np.array([1.0, 2.0, 3.0]),
        data_sizes=np.array([4, 5, 6]),
        net_speed_mean=np.array([90.0, 100.0, 130.0]),
        net_speed_spread=np.array([5.0, 1.0, 20.0]),
    )
    counts = np.array([[1, 3], [5, 0], [2, 4]])
    rows = population_rows(2, population, counts).to_pydict()
    assert rows["device"] == [0, 1, 2] and rows["repetition"] == [2, 2, 2]
    assert rows["label_counts"] == [[1, 3], [5, 0], [2, 4]]
    # Each device's own network mean and spread (not the spec's speed_mean and speed_var).
    assert rows["net_speed_mean"] == [90.0, 100.0, 130.0] and rows["net_speed_var"] == [5.0, 1.0, 20.0]
    assert rows["data_size"] == [4, 5, 6]


def writer_in(folder: Path) -> RecordsWriter:
    return RecordsWriter(parse_spec({"simulation": {"output_folder": str(folder)}, "devices": {"num": 10}}))


def write_rounds(writer: RecordsWriter, rounds: list[tuple[int, int]]) -> None:
    conditions = RoundConditions(np.arange(10) % 2 == 0, np.ones(10), np.ones(10))
    for repetition, round_ in rounds:
        outcome = PhaseOutcome(plan_of(repetition=repetition, round_=round_), {4: result(4, 0.5)}, frozenset())
        writer.write_round((repetition, round_), conditions, [outcome], np.full(10, 100))
    writer.flush()


def test_rounds_are_written_one_part_each_and_read_back_in_order(tmp_path: Path) -> None:
    writer = writer_in(tmp_path)
    write_rounds(writer, [(0, 0), (0, 1), (1, 0)])
    assert [path.relative_to(tmp_path).as_posix() for path in part_files(tmp_path, Table.RECORDS)] == [
        "devices/records/rep-0000/round-000000.parquet",
        "devices/records/rep-0000/round-000001.parquet",
        "devices/records/rep-0001/round-000000.parquet",
    ]
    records = read_table(tmp_path, Table.RECORDS)
    assert records.num_rows == 15
    assert list(zip(records["repetition"].to_pylist()[::5], records["round"].to_pylist()[::5], strict=True)) == [
        (0, 0),
        (0, 1),
        (1, 0),
    ]
    assert read_table(tmp_path, Table.RECORDS, repetition=0, round_=1).num_rows == 5
    availability = read_table(tmp_path, Table.AVAILABILITY, repetition=1).to_pydict()
    assert availability == {"repetition": [1], "round": [0], "available_devices": [[0, 2, 4, 6, 8]]}


def test_nothing_written_reads_as_an_empty_table_with_the_schema(tmp_path: Path) -> None:
    table = read_table(tmp_path, Table.RECORDS)
    assert table.num_rows == 0 and table.schema == RECORDS_SCHEMA


def test_resume_removes_the_parts_a_crash_left_beyond_the_checkpoint(tmp_path: Path) -> None:
    writer = writer_in(tmp_path)
    write_rounds(writer, [(0, 0), (0, 1), (0, 2), (1, 0)])
    population = a_population(10)
    for repetition in (0, 1):
        writer.write_population(repetition, population, np.ones((10, 2), np.int64))
    writer.discard_from(0, 2)  # the checkpoint says: repetition 0, next round 2
    kept = [(path.parent.name, path.name) for path in part_files(tmp_path, Table.RECORDS)]
    assert kept == [("rep-0000", "round-000000.parquet"), ("rep-0000", "round-000001.parquet")]
    assert len(part_files(tmp_path, Table.AVAILABILITY)) == 2
    assert [path.name for path in part_files(tmp_path, Table.POPULATION)] == ["rep-0000.parquet"]


def test_a_fresh_start_removes_every_record_of_an_earlier_run(tmp_path: Path) -> None:
    writer = writer_in(tmp_path)
    write_rounds(writer, [(0, 0), (1, 3)])
    writer.discard_from(0, 0)
    assert not (tmp_path / "devices").exists()


def test_the_population_part_is_written_once(tmp_path: Path) -> None:
    writer = writer_in(tmp_path)
    population = a_population(10)
    writer.write_population(0, population, np.ones((10, 2), np.int64))
    path = part_path(tmp_path, Table.POPULATION, 0)
    before = path.stat().st_mtime_ns
    writer.write_population(0, population, np.zeros((10, 2), np.int64))
    assert path.stat().st_mtime_ns == before
    assert read_table(tmp_path, Table.POPULATION)["label_counts"].to_pylist()[0] == [1, 1]


def test_table_bytes_are_one_parquet_file(tmp_path: Path) -> None:
    write_rounds(writer_in(tmp_path), [(0, 0)])
    data = table_bytes(read_table(tmp_path, Table.RECORDS))
    path = tmp_path / "served.parquet"
    path.write_bytes(data)
    assert pq.read_table(path).num_rows == 5
    assert data[:4] == b"PAR1"


@pytest.mark.parametrize("mislabelling", [0.0, 0.3])
def test_label_counts_sum_to_the_data_sizes(mislabelling: float) -> None:
    from feles.data import DataRequest, load_dataset, partition_devices

    sizes = np.array([30, 50, 70])
    dataset = load_dataset("digits", DataRequest(0, 0, sizes, None, {}))
    partitions = partition_devices(dataset, sizes, 0.5, mislabelling, 0, 0)
    counts = partitions.label_counts(dataset.num_classes)
    assert counts.shape == (3, 10)
    assert counts.sum(axis=1).tolist() == [30, 50, 70]
    expected = [np.bincount(labels.numpy(), minlength=10).tolist() for labels in partitions.labels]
    assert counts.tolist() == expected


def test_availability_is_delta_encoded_and_writing_never_imports_pandas(tmp_path: Path) -> None:
    # pa.array/pa.table import pandas to inspect their input: seconds and tens of MiB in the orchestrator.
    script = f"""
import sys
import numpy as np
from feles.devices import RoundConditions
from feles.orchestrator.records import RecordsWriter
from feles.config import parse_spec
spec = parse_spec({{"simulation": {{"output_folder": {str(tmp_path)!r}}}, "devices": {{"num": 100000}}}})
conditions = RoundConditions(np.random.default_rng(0).random(100000) < 0.8, np.ones(100000), np.ones(100000))
writer = RecordsWriter(spec)
writer.write_round((0, 0), conditions, [], np.ones(100000, np.int64))
writer.flush()
print("pandas" in sys.modules)
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
    [path] = part_files(tmp_path, Table.AVAILABILITY)
    column = pq.ParquetFile(path).metadata.row_group(0).column(2)
    assert "DELTA_BINARY_PACKED" in column.encodings
    assert path.stat().st_size < 40_000  # 80,000 sorted ids; plain int32 would take 320 kB


def test_a_failed_write_raises_at_flush_before_the_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "devices").write_text("a file where the records folder should be")
    writer = writer_in(tmp_path)
    write_rounds_without_flush = RoundConditions(np.ones(10, bool), np.ones(10), np.ones(10))
    writer.write_round((0, 0), write_rounds_without_flush, [], np.full(10, 100))
    with pytest.raises(OSError):
        writer.flush()
    writer.close()
