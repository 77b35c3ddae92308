"""The live page's data: incremental answers, the selection matrix's bins, fairness."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from feles.config import SimulationSpec
from feles.local import page_is_open, page_saw_the_end
from feles.orchestrator.api import create_app
from feles.orchestrator.metrics import OrchestratorMetrics
from feles.orchestrator.results import ResultsDocument, RoundRecord
from feles.orchestrator.server import build_state
from feles.orchestrator.web import (
    DeviceRecordsData,
    MatrixShape,
    SelectionHistory,
    bin_size,
    histogram,
    jain_index,
    live_data,
    per_bin,
    selection_round,
)
from feles.protocol import SimulationPhase, SimulationStatus
from tests.live_records import records_table, write_round


def _record(round_: int, repetition: int = 0, loss: float = 0.5) -> RoundRecord:
    return RoundRecord(
        repetition=repetition,
        round=round_,
        model_version=round_ + 1,
        devices_available=18,
        fit_selected=6,
        fit_failed=1,
        eval_selected=4,
        eval_failed=0,
        train_loss=0.7,
        eval_loss=None,
        eval_metric=None,
        test_loss=loss,
        test_metric=0.8,
        round_time=3.5,
        simulated_time=3.5 * (round_ + 1),
        energy=2000.0,
        wall_time=0.1,
    )


def _results(rounds: int) -> ResultsDocument:
    spec = SimulationSpec.model_validate({"simulation": {"dataset": "digits", "num_rounds": 10}})
    results = ResultsDocument(spec, "run-1")
    results.rounds = [_record(index) for index in range(rounds)]
    return results


STATUS = SimulationStatus(phase=SimulationPhase.RUNNING, repetition=0, repetitions=1, round=3, rounds=10)
NO_RECORDS = SelectionHistory(MatrixShape.of(100, 10)).data(0, available=False)


def test_first_poll_carries_every_round_and_the_spec() -> None:
    answer = live_data(STATUS, _results(3), 0, NO_RECORDS, jobs_done=2)
    assert (answer.since, answer.total, [r["round"] for r in answer.rounds]) == (0, 3, [0, 1, 2])
    assert answer.spec is not None and answer.spec["simulation"]["dataset"] == "digits"
    assert answer.jobs_done == 2 and answer.run_id == "run-1"


def test_a_later_poll_carries_only_the_new_rounds_and_no_spec() -> None:
    answer = live_data(STATUS, _results(5), 3, NO_RECORDS)
    assert (answer.since, answer.total, [r["round"] for r in answer.rounds]) == (3, 5, [3, 4])
    assert answer.spec is None
    assert live_data(STATUS, _results(5), 5, NO_RECORDS).rounds == []


def test_a_page_ahead_of_the_server_starts_over() -> None:
    # A fresh run behind the same address holds fewer rounds than the page: everything again, from 0.
    answer = live_data(STATUS, _results(2), 7, NO_RECORDS)
    assert (answer.since, answer.total, len(answer.rounds)) == (0, 2, 2)
    assert answer.spec is not None


def test_a_diverged_loss_is_null_in_json() -> None:
    results = _results(1)
    results.rounds = [_record(0, loss=math.nan)]
    document = json.loads(live_data(STATUS, results, 0, NO_RECORDS).model_dump_json())
    assert document["rounds"][0]["test_loss"] is None


def test_matrix_shape_bins_devices_and_rounds_beyond_the_limits() -> None:
    small = MatrixShape.of(20, 30)
    assert (small.device_bin, small.rows, small.round_bin, small.columns) == (1, 20, 1, 30)
    large = MatrixShape.of(100_000, 1_000)
    assert (large.device_bin, large.rows, large.round_bin, large.columns) == (1000, 100, 5, 200)
    # 250 devices in bins of 3: 84 rows, the last one holding a single device.
    odd = MatrixShape.of(250, 201)
    assert (odd.device_bin, odd.rows, odd.round_bin, odd.columns) == (3, 84, 2, 101)
    assert bin_size(0, 10) == 1


def test_per_bin_counts_items_per_bin() -> None:
    assert per_bin(np.array([0, 1, 2, 5, 9]), 3, 4) == [3, 1, 0, 1]
    assert per_bin(np.array([], dtype=np.int64), 3, 2) == [0, 0]


def test_jain_index_is_one_when_equal_and_one_over_n_when_one_has_all() -> None:
    assert jain_index(np.array([2, 2, 2, 2])) == pytest.approx(1.0)
    assert jain_index(np.array([4, 0, 0, 0])) == pytest.approx(0.25)
    assert jain_index(np.array([1, 1, 0, 0])) == pytest.approx(0.5)
    assert jain_index(np.zeros(5, dtype=np.int64)) is None


def test_histogram_groups_selection_counts_into_bars() -> None:
    assert histogram(np.array([0, 0, 1, 3])).model_dump() == {"width": 1, "counts": [2, 1, 0, 1]}
    wide = histogram(np.array([0, 59, 60, 119]), most=30)
    assert wide.width == 4 and len(wide.counts) == 30 and sum(wide.counts) == 4


def test_a_round_fills_its_column_and_the_counts_of_its_repetition() -> None:
    shape = MatrixShape.of(250, 400)  # 3 devices a row, 2 rounds a column
    counts = np.zeros(250, dtype=np.int64)
    table = records_table(0, 7, fit=[0, 1, 4, 249], failed=[4], evaluated=[2, 3])
    selection = selection_round(table, 0, 7, shape, counts)
    assert selection.column == 3
    assert selection.selected[:3] == [2, 1, 0] and selection.selected[-1] == 1 and sum(selection.selected) == 4
    assert selection.failed[1] == 1 and sum(selection.failed) == 1
    assert counts[[0, 1, 4, 249]].tolist() == [1, 1, 1, 1] and counts.sum() == 4  # eval rows do not count
    assert selection.jain == pytest.approx(16 / (250 * 4))


def test_history_reads_each_part_once_and_answers_incrementally(tmp_path: Path) -> None:
    history = SelectionHistory(MatrixShape.of(10, 4))
    assert history.update(tmp_path) is False
    assert history.data(0, False).histogram is None
    write_round(tmp_path, 0, 0, [0, 1])
    write_round(tmp_path, 0, 1, [0, 2], failed=[2])
    assert history.update(tmp_path) is True
    first: DeviceRecordsData = history.data(0, True)
    assert (first.since, first.total, [r.round for r in first.rounds]) == (0, 2, [0, 1])
    assert first.histogram is not None and first.histogram.counts == [7, 2, 1]
    assert first.rounds[1].jain == pytest.approx(16 / (10 * 6))

    write_round(tmp_path, 0, 2, [3])
    history.update(tmp_path)
    history.update(tmp_path)  # nothing new: no part read twice
    later = history.data(2, True)
    assert (later.since, later.total, [r.round for r in later.rounds]) == (2, 3, [2])
    assert history.data(9, True).since == 0  # a page ahead of the server starts over


def test_each_repetition_counts_its_own_selections(tmp_path: Path) -> None:
    history = SelectionHistory(MatrixShape.of(4, 2))
    write_round(tmp_path, 0, 0, [0, 1, 2, 3])
    write_round(tmp_path, 1, 0, [0])
    history.update(tmp_path)
    rounds = history.data(0, True).rounds
    assert [(r.repetition, r.jain) for r in rounds] == [(0, pytest.approx(1.0)), (1, pytest.approx(0.25))]
    assert history.data(0, True).histogram.counts == [3, 1]  # the latest repetition's


def test_an_open_api_serves_the_data_without_a_token(tmp_path: Path) -> None:
    spec = SimulationSpec.model_validate(
        {"simulation": {"dataset": "digits", "num_rounds": 4, "output_folder": str(tmp_path)}, "devices": {"num": 20}}
    )
    metrics = OrchestratorMetrics()
    state = build_state(spec, 60.0, metrics)
    state.results.rounds = [_record(0), _record(1)]
    write_round(tmp_path, 0, 0, [1, 2])
    with TestClient(create_app(state, None, metrics=metrics)) as client:
        answer = client.get("/v1/ui/data", params={"since": 1})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        data = answer.json()
        assert [r["round"] for r in data["rounds"]] == [1] and data["jobs_done"] == 0
        assert data["devices"]["total"] == 1 and data["devices"]["rounds"][0]["selected"][1] == 1
        assert client.get("/ui/", follow_redirects=False).headers["location"].endswith("/ui")
        assert "frame-ancestors 'none'" in client.get("/ui").headers["content-security-policy"]


def test_an_unreadable_part_is_skipped_once(tmp_path: Path) -> None:
    history = SelectionHistory(MatrixShape.of(10, 4))
    write_round(tmp_path, 0, 0, [1])
    broken = write_round(tmp_path, 0, 1, [2])
    broken.write_bytes(b"not parquet")
    write_round(tmp_path, 0, 2, [3])
    assert history.update(tmp_path) is True
    assert [r.round for r in history.data(0, True).rounds] == [0, 2]
    assert history.update(tmp_path) is True and history.data(0, True).total == 2


def test_a_polls_rounds_are_the_results_rows_named_after_the_metric() -> None:
    results = _results(2)
    answer = live_data(STATUS, results, 0, NO_RECORDS)
    assert answer.rounds == results.to_dict()["rounds"]
    assert answer.rounds[0]["test_accuracy"] == 0.8 and "test_metric" not in answer.rounds[0]


def test_status_says_when_the_live_page_last_polled() -> None:
    spec = SimulationSpec.model_validate({"simulation": {"dataset": "digits", "num_rounds": 2}})
    metrics = OrchestratorMetrics()
    state = build_state(spec, 60.0, metrics)
    with TestClient(create_app(state, None, metrics=metrics)) as client:
        assert client.get("/v1/status").json()["page_polled_at"] is None  # feles run then exits at once
        before = time.time()
        assert client.get("/v1/ui/data").status_code == 200
        polled = client.get("/v1/status").json()["page_polled_at"]
        assert before <= polled <= time.time()


def test_status_says_whether_the_page_was_sent_the_end_only_once_the_run_is_over() -> None:
    spec = SimulationSpec.model_validate({"simulation": {"dataset": "digits", "num_rounds": 2}})
    metrics = OrchestratorMetrics()
    state = build_state(spec, 60.0, metrics)
    with TestClient(create_app(state, None, metrics=metrics)) as client:
        assert client.get("/v1/ui/data").json()["status"]["phase"] == "Pending"
        assert client.get("/v1/status").json()["page_saw_end"] is False  # a poll before the end: feles run waits
        state.progress.finished_at, state.progress.phase = time.time(), SimulationPhase.SUCCEEDED
        assert client.get("/v1/status").json()["page_saw_end"] is False  # over, but the page has not been told
        assert client.get("/v1/ui/data").json()["status"]["phase"] == "Succeeded"
        assert client.get("/v1/status").json()["page_saw_end"] is True


def test_feles_run_waits_only_for_an_open_page_and_only_until_it_saw_the_end() -> None:
    def status(polled: float | None, saw_end: bool = False) -> SimulationStatus:
        return STATUS.model_copy(update={"page_polled_at": polled, "finished_at": 100.0, "page_saw_end": saw_end})

    assert not page_is_open(status(None), now=100.5)  # no page: nothing to wait for
    assert not page_is_open(status(90.0), now=100.5)  # a page closed long ago
    assert page_is_open(status(99.5), now=100.5)
    # Polled after the end is not enough: the answer may not have gone out before the orchestrator stopped.
    assert not page_saw_the_end(status(100.2))
    assert page_saw_the_end(status(100.2, saw_end=True))
