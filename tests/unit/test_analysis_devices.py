"""The analyses of the device records against numbers computed by hand on small tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from feles.analysis.comparison import COMPARISON_COLUMNS, FAILURE_COLUMNS, comparison_rows, device_summary
from feles.analysis.device_records import DeviceRecords, DeviceRun, load_device_records, missing_note
from feles.analysis.device_stats import availability_counts, device_stats, label_matrix
from feles.analysis.fairness import failures_by_reason, fairness, gini, histogram, jain_index, participation
from feles.analysis.loading import Run, load_runs
from feles.analysis.selection_matrix import selection_matrix
from feles.analysis.summary import summarise
from feles.analysis.time_energy import device_times, mean_by_round, round_consumption, round_times
from feles.analysis.work import configured_vs_executed
from feles.records import AVAILABILITY_SCHEMA, POPULATION_SCHEMA, RECORDS_SCHEMA
from tests.unit.analyze_documents import results_document, write_document
from tests.unit.device_records_documents import (
    availability_table,
    failed,
    job,
    population_table,
    records_table,
    write_run,
)

DEVICES = np.arange(5)


def test_jain_index_by_hand() -> None:
    assert jain_index(np.array([1, 1, 1, 1])) == 1.0
    assert jain_index(np.array([4, 0, 0, 0])) == 0.25  # one device takes all: 1/n
    assert jain_index(np.array([1, 2, 3])) == pytest.approx(36 / 42)  # 6^2 / (3 * 14)
    assert math.isnan(jain_index(np.array([0, 0])))
    assert math.isnan(jain_index(np.array([], dtype=np.int64)))


def test_gini_by_hand() -> None:
    assert gini(np.array([1, 1, 1, 1])) == 0.0
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # (n - 1) / n
    # sum over ordered pairs of |x_i - x_j| = 2 * (1 + 2 + 1) = 8; / (2 * 3^2 * mean 2) = 8 / 36
    assert gini(np.array([3, 1, 2])) == pytest.approx(8 / 36)
    assert math.isnan(gini(np.array([0, 0, 0])))


# Fit: device 0 twice, devices 1 and 3 once (one failure counts: it was selected); eval: device 2.
FAIRNESS_ROWS = [
    job(0, 0),
    job(1, 0),
    job(0, 1),
    failed(3, "random", 1),
    job(2, 0, "eval"),
]


def test_participation_counts_every_device_of_the_population() -> None:
    records = records_table(FAIRNESS_ROWS)
    np.testing.assert_array_equal(participation(records, DEVICES), [2, 1, 0, 1, 0])
    np.testing.assert_array_equal(participation(records, DEVICES, "eval"), [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(participation(records, DEVICES, None), [2, 1, 1, 1, 0])
    result = fairness(records, DEVICES)
    np.testing.assert_array_equal(result.never_selected, [2, 4])
    # Counts 2, 1, 0, 1, 0: Jain 4^2 / (5 * 6); Gini sum |x_i - x_j| = 20 over ordered pairs, / (2 * 25 * 0.8).
    assert result.jain == pytest.approx(16 / 30)
    assert result.gini == pytest.approx(0.5)


def test_participation_histogram_counts_devices_per_number_of_selections() -> None:
    k, devices = histogram(np.array([2, 1, 0, 1, 0]))
    np.testing.assert_array_equal(k, [0, 1, 2])
    np.testing.assert_array_equal(devices, [2, 2, 1])


def test_failures_by_reason_per_phase_with_every_reason_listed() -> None:
    records = records_table(
        [
            failed(0, "random"),
            failed(1, "random"),
            failed(2, "energy"),
            job(3),
            failed(0, "lost", phase="eval"),
            failed(1, "rejected", phase="eval"),
            job(2, phase="eval"),
        ]
    )
    assert failures_by_reason(records) == {
        "fit": {"random": 2, "energy": 1, "lost": 0, "rejected": 0},
        "eval": {"random": 0, "energy": 0, "lost": 1, "rejected": 1},
    }


def test_availability_counts_rounds_per_device_and_ignores_unknown_ids() -> None:
    availability = availability_table([[0, 1], [1, 2], [1, 9]])
    np.testing.assert_array_equal(availability_counts(availability, np.arange(4)), [1, 3, 1, 0])


def test_label_matrix_aligns_the_label_counts_with_the_devices() -> None:
    population = population_table(3, label_counts=[[1, 2], [3, 0], [0, 5]], device=[2, 0, 1])
    np.testing.assert_array_equal(label_matrix(population, np.arange(4)), [[3, 0], [0, 5], [1, 2], [0, 0]])


def test_device_stats_of_a_repetition() -> None:
    records = records_table(
        [
            job(0, 0, energy=5.0),
            job(0, 1, energy=7.0),
            failed(1, "energy", 0, energy=100.0),  # a failed job spent nothing
            job(1, 0, "eval", energy=2.0),
            job(0, 0, "fit", repetition=1, energy=50.0),  # another repetition: left out
        ]
    )
    data = DeviceRecords(
        records,
        availability_table([[0, 1], [0]]),
        population_table(3, ips=[1.0, 2.0, 3.0], data_size=[10, 20, 30]),
        num_devices=3,
    )
    stats = device_stats(data, 0)
    np.testing.assert_array_equal(stats.devices, [0, 1, 2])
    np.testing.assert_array_equal(stats.rounds_available, [2, 1, 0])
    np.testing.assert_array_equal(stats.fit_selected, [2, 1, 0])
    np.testing.assert_array_equal(stats.eval_selected, [0, 1, 0])
    np.testing.assert_array_equal(stats.failed, [0, 1, 0])
    np.testing.assert_allclose(stats.energy, [12.0, 2.0, 0.0])
    np.testing.assert_allclose(stats.ips, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(stats.data_size, [10, 20, 30])


def test_devices_fall_back_to_the_spec_without_a_population() -> None:
    data = DeviceRecords(
        records_table([job(0)]), AVAILABILITY_SCHEMA.empty_table(), POPULATION_SCHEMA.empty_table(), num_devices=4
    )
    np.testing.assert_array_equal(data.devices(0), [0, 1, 2, 3])
    assert data.repetitions == [0]
    assert data.num_rounds == 1


SELECTIONS = [job(0, 0), job(1, 0), job(0, 1), job(3, 3), job(2, 2, "eval")]


def test_selection_matrix_unbinned_is_the_selections() -> None:
    matrix = selection_matrix(records_table(SELECTIONS), np.arange(4), 4)
    assert not matrix.binned
    assert "every device and round" in matrix.describe()
    expected = np.zeros((4, 4))
    expected[0, 0] = expected[1, 0] = expected[0, 1] = expected[3, 3] = 1
    np.testing.assert_array_equal(matrix.fraction, expected)


def test_selection_matrix_bins_to_the_fraction_of_device_rounds_selected() -> None:
    matrix = selection_matrix(records_table(SELECTIONS), np.arange(4), 4, max_devices=2, max_rounds=2)
    assert (matrix.device_bin, matrix.round_bin) == (2, 2)
    # Devices 0-1 x rounds 0-1: 3 of 4 device-rounds selected; devices 2-3 x rounds 2-3: 1 of 4 (eval is left out).
    np.testing.assert_allclose(matrix.fraction, [[0.75, 0.0], [0.0, 0.25]])
    assert matrix.describe().startswith("devices in bins of 2 and rounds in bins of 2")


def test_selection_matrix_with_uneven_bins_divides_by_the_bin_size() -> None:
    # 5 devices at most 2 bins: bins of 3 and 2 devices; 3 rounds at most 2 bins: bins of 2 and 1 rounds.
    records = records_table([job(4, 2), job(3, 2), job(0, 0)])
    matrix = selection_matrix(records, np.arange(5), 3, max_devices=2, max_rounds=2)
    np.testing.assert_array_equal(matrix.device_edges, [0, 3, 5])
    np.testing.assert_array_equal(matrix.round_edges, [0, 2, 3])
    np.testing.assert_allclose(matrix.fraction, [[1 / 6, 0.0], [0.0, 2 / 2]])


def test_selection_matrix_rows_in_a_given_order() -> None:
    matrix = selection_matrix(records_table(SELECTIONS), np.arange(4), 4, order=np.array([3, 2, 1, 0]))
    np.testing.assert_array_equal(matrix.fraction[0], [0, 0, 0, 1])  # device 3 first
    np.testing.assert_array_equal(matrix.fraction[3], [1, 1, 0, 0])  # device 0 last


TIMED = [
    # Round 0, fit: device 1 is the slowest completed job (1 + 3 + 3 = 7 s); device 2 failed and does not count.
    job(0, 0, computation_time=2.0, download_time=1.0, upload_time=1.0),
    job(1, 0, computation_time=1.0, download_time=3.0, upload_time=3.0),
    failed(2, "random", 0, computation_time=10.0),
    # Round 0, eval: 0.5 + 1 + 0 = 1.5 s.
    job(0, 0, "eval", computation_time=0.5, download_time=1.0, upload_time=0.0),
    # Round 1: every fit job failed (0 s); eval 1 + 1 = 2 s.
    failed(0, "energy", 1),
    job(1, 1, "eval", computation_time=1.0, download_time=1.0, upload_time=0.0),
]


def test_round_time_is_the_slowest_completed_job_of_each_phase_split_into_parts() -> None:
    times = round_times(records_table(TIMED))
    np.testing.assert_array_equal(times.round, [0, 1])
    np.testing.assert_allclose(times.fit.computation, [1.0, 0.0])
    np.testing.assert_allclose(times.fit.download, [3.0, 0.0])
    np.testing.assert_allclose(times.fit.upload, [3.0, 0.0])
    np.testing.assert_allclose(times.eval.time, [1.5, 2.0])
    np.testing.assert_allclose(times.time, [8.5, 2.0])
    np.testing.assert_allclose(times.communication, [7.0, 1.0])
    assert times.communication_share() == pytest.approx(8.0 / 10.5)


def test_round_consumption_sums_the_completed_jobs() -> None:
    used = round_consumption(records_table(TIMED))
    np.testing.assert_array_equal(used.round, [0, 1])
    np.testing.assert_allclose(used.energy, [30.0, 10.0])  # 10 mWh per completed job
    np.testing.assert_allclose(used.computation, [3.5, 1.0])
    np.testing.assert_allclose(used.communication, [9.0, 1.0])
    np.testing.assert_allclose(used.local_iterations, [6, 2])
    fit = round_consumption(records_table(TIMED), "fit")
    np.testing.assert_allclose(fit.energy, [20.0, 0.0])


def test_device_times_total_each_device_completed_jobs() -> None:
    totals = device_times(records_table(TIMED), np.arange(3))
    np.testing.assert_allclose(totals.computation, [2.5, 2.0, 0.0])
    np.testing.assert_allclose(totals.communication, [3.0, 7.0, 0.0])


def test_mean_by_round_averages_over_the_repetitions_that_ran_it() -> None:
    np.testing.assert_allclose(mean_by_round(np.array([0, 1, 0]), np.array([2.0, 5.0, 4.0])), [3.0, 5.0])
    assert np.isnan(mean_by_round(np.array([0]), np.array([1.0]), 2)[1])


def test_configured_vs_executed_work() -> None:
    records = records_table(
        [
            job(0, epochs=1, epochs_configured=2),
            job(1, epochs=2, epochs_configured=2, batch_size=16),
            job(2, 0, epochs=4, epochs_configured=2, num_examples=32),
            job(3, phase="eval", epochs=9),
        ]
    )
    work = configured_vs_executed(records)
    np.testing.assert_array_equal(work["epochs"].configured, [2, 2, 2])
    np.testing.assert_array_equal(work["epochs"].executed, [1, 2, 4])
    assert work["epochs"].changed == pytest.approx(2 / 3)
    assert work["epochs"].mean_ratio == pytest.approx((0.5 + 1 + 2) / 3)
    assert work["batch_size"].changed == pytest.approx(1 / 3)
    assert work["num_examples"].changed == pytest.approx(1 / 3)
    assert configured_vs_executed(records, "eval")["epochs"].changed == 1.0


def test_load_device_records_reads_what_was_written_and_none_without_them(tmp_path: Path) -> None:
    records = records_table([job(0, 0), job(1, 1, repetition=1)])
    availability = availability_table([[0, 1], [1]])
    population = population_table(2)
    write_run(tmp_path / "with", (records, availability, population))
    write_run(tmp_path / "without", None)
    with_records, without = load_runs([tmp_path / "with", tmp_path / "without"])
    data = load_device_records(with_records)
    assert data is not None
    assert data.records.schema.equals(RECORDS_SCHEMA, check_metadata=False)
    assert data.records.num_rows == 2 and data.availability.num_rows == 2
    assert data.repetitions == [0, 1]
    assert load_device_records(without) is None
    assert missing_note(without).startswith(f"{without.label}: no device records (")
    assert "device analyses skipped" in missing_note(without)


def test_device_summary_averages_over_repetitions(tmp_path: Path) -> None:
    # Repetition 0: devices 0, 1 each selected once (Jain 1, Gini 0), one random fit failure, rounds 7 s and 3 s.
    # Repetition 1: device 0 twice, device 1 never (Jain 0.5, Gini 0.5), no failure, rounds 4 s and 4 s.
    rows = [
        job(0, 0, computation_time=5.0, download_time=1.0, upload_time=1.0, energy=10.0),
        failed(1, "random", 1, computation_time=1.0, download_time=1.0, upload_time=1.0),
        job(0, 0, repetition=1, energy=20.0),
        job(0, 1, repetition=1, energy=20.0),
        job(1, 1, "eval", computation_time=1.0, download_time=2.0, upload_time=0.0, energy=1.0),
    ]
    populations = pa.concat_tables([population_table(2, repetition=0), population_table(2, repetition=1)])
    data = DeviceRecords(records_table(rows), AVAILABILITY_SCHEMA.empty_table(), populations, num_devices=2)
    run = Run(tmp_path / "results.json", "r", {"spec": {}, "rounds": []})
    summary = device_summary(DeviceRun(run, data))
    assert summary.repetitions == 2
    assert summary.jain.mean == pytest.approx(0.75)
    assert summary.gini.mean == pytest.approx(0.25)
    assert summary.never_selected.mean == 0.5
    assert summary.never_selected_ids == [[], [1]]
    assert summary.failures["fit"]["random"].mean == 0.5
    assert summary.failed_jobs.mean == 0.5
    # Round times: repetition 0: 7 s and 3 s (eval, round 1); repetition 1: 4 s and 4 s.
    assert summary.round_time.mean == pytest.approx((5.0 + 4.0) / 2)
    # Communication: repetition 0: (2 + 2) / 10; repetition 1: 4 / 8.
    assert summary.communication_share.mean == pytest.approx((0.4 + 0.5) / 2)
    assert summary.energy.mean == pytest.approx((11.0 + 40.0) / 2)


def test_comparison_rows_put_n_a_in_the_device_columns_of_a_run_without_records(tmp_path: Path) -> None:
    tables = (records_table([job(0, 0), failed(1, "lost", 0)]), availability_table([[0, 1]]), population_table(3))
    write_run(tmp_path / "a", tables, accuracies=[[0.5, 0.625]], num_devices=3)
    write_run(tmp_path / "b", None)
    run_a, run_b = load_runs([tmp_path / "a", tmp_path / "b"])
    data = load_device_records(run_a)
    assert data is not None
    rows = comparison_rows([summarise(run_a), summarise(run_b)], [device_summary(DeviceRun(run_a, data)), None])
    headers = [header for header, _ in COMPARISON_COLUMNS]
    row_a, row_b = (dict(zip(headers, row, strict=True)) for row in rows)
    assert row_a["final test acc"] == "0.6250"
    assert row_a["devices"] == "3"
    # Counts 1, 1, 0 (device 2 never selected): Jain 2^2 / (3 * 2); Gini 4 / (2 * 3^2 * 2/3) = 1/3.
    assert row_a["Jain"] == "0.667"
    assert row_a["Gini"] == "0.333"
    assert row_a["never selected"] == "1"
    assert row_a["failed jobs"] == "1"
    assert row_a["mean round time (s)"] == "4.0"
    assert row_a["communication share"] == "50.0 %"
    assert row_a["energy (mWh)"] == "10"
    assert row_b["final test acc"] == "0.6000" and row_b["Jain"] == "n/a"
    (cells,) = comparison_rows([summarise(run_a)], [device_summary(DeviceRun(run_a, data))], FAILURE_COLUMNS)
    failures = dict(zip([header for header, _ in FAILURE_COLUMNS], cells, strict=True))
    assert len(failures) == 1 + 4 * 2  # run, then every reason x phase
    assert failures["lost (fit)"] == "1" and failures["random (fit)"] == "0" and failures["lost (eval)"] == "0"


def test_a_records_folder_without_any_part_counts_as_no_records(tmp_path: Path) -> None:
    write_run(tmp_path / "started", None)
    (tmp_path / "started" / "devices" / "records").mkdir(parents=True)
    (run,) = load_runs([tmp_path / "started"])
    assert load_device_records(run) is None
    assert "empty: no round recorded yet" in missing_note(run)


def test_a_run_that_failed_before_its_first_round_is_noted_as_such(tmp_path: Path) -> None:
    path = write_document(tmp_path / "failed" / "results.json", results_document([], status="failed"))
    (run,) = load_runs([path])
    assert load_device_records(run) is None
    assert missing_note(run) == (
        "failed (fedavg): no device records (the run failed before its first round); device analyses skipped"
    )
    running = Run(path, "r", results_document([], status="running"))
    assert "(the run has recorded no round yet)" in missing_note(running)
