"""Device records of real runs: they agree with results.json, do not depend on the workers, survive restarts."""

from __future__ import annotations

import io
import json
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from feles.local import LocalRun, LocalRunOptions
from feles.records import Table, read_table
from tests.integration.conftest import AUTH, Processes, comparable_rounds, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration

#: Random failures, and energy budgets that some jobs exceed: every way to fail before starting occurs.
FAILING = {
    "simulation": {"num_rounds": 3, "repetitions": 2},
    "devices": {"p_fail": 0.2},
    "energy": {"avail_mean": 400.0, "avail_var": 300.0},
}


def run_local(folder: Path, overrides: dict[str, Any], workers: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    outcome = LocalRun(LocalRunOptions(write_spec(folder, overrides), workers=workers)).run()
    assert outcome.status.phase.value == "Succeeded", f"{outcome.status.message}; logs in {outcome.log_dir}"
    return outcome.results_path.parent


def tables(output: Path) -> dict[str, dict[str, list]]:
    return {table.value: read_table(output, table).to_pydict() for table in Table}


def phase_time(rows: dict[str, np.ndarray], phase: str) -> float:
    mask = (rows["phase"] == phase) & ~rows["failed"]
    times = rows["computation_time"][mask] + rows["upload_time"][mask] + rows["download_time"][mask]
    return float(times.max()) if times.size else 0.0


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a 2-worker run of FAILING."""
    return run_local(tmp_path_factory.mktemp("records"), FAILING, workers=2)


def test_records_agree_with_the_round_totals_of_results_json(failing_run: Path) -> None:
    output = failing_run
    records = read_table(output, Table.RECORDS).to_pandas()
    availability = read_table(output, Table.AVAILABILITY).to_pandas()
    rounds = json.loads((output / "results.json").read_text())["rounds"]
    assert len(records.groupby(["repetition", "round"])) == len(rounds) == 6
    assert set(records["failure"].dropna()) == {"random", "energy"}, "the spec should make both kinds of failure"
    for row in rounds:
        these = records[(records["repetition"] == row["repetition"]) & (records["round"] == row["round"])]
        arrays = {column: these[column].to_numpy() for column in these.columns}
        for phase in ("fit", "eval"):
            phase_rows = these[these["phase"] == phase]
            assert len(phase_rows) == row[f"{phase}_selected"]
            assert int(phase_rows["failed"].sum()) == row[f"{phase}_failed"]
        completed = these[~these["failed"]]
        assert completed["energy"].sum() == pytest.approx(row["energy"], rel=1e-12)
        assert phase_time(arrays, "fit") + phase_time(arrays, "eval") == pytest.approx(row["round_time"], rel=1e-12)
        fit = completed[completed["phase"] == "fit"]
        if len(fit):
            weighted = (fit["loss"] * fit["num_examples"]).sum() / fit["num_examples"].sum()
            assert weighted == pytest.approx(row["train_loss"], rel=1e-9)
        available = availability[(availability["repetition"] == row["repetition"])]
        available = available[available["round"] == row["round"]]["available_devices"].iloc[0]
        assert len(available) == row["devices_available"]
        assert set(these["device"]) <= set(available)
    population = read_table(output, Table.POPULATION).to_pandas()
    assert len(population) == 2 * 20
    assert [sum(counts) for counts in population["label_counts"]] == population["data_size"].tolist()
    # Each device's own network mean and spread, within the spec's ranges (speed 100,000 +- 70,000).
    assert population["net_speed_mean"].nunique() == len(population)
    assert population["net_speed_mean"].between(30_000, 170_000).all()
    assert population["net_speed_var"].between(0.01 * 70_000, 0.99 * 70_000).all()


def test_records_are_the_same_with_1_2_and_4_workers(tmp_path: Path, failing_run: Path) -> None:
    outputs = {workers: run_local(tmp_path / f"w{workers}", FAILING, workers) for workers in (1, 4)}
    outputs[2] = failing_run
    reference = tables(outputs[1])
    assert reference["records"]["device"], "no records were written"
    for workers in (2, 4):
        assert tables(outputs[workers]) == reference, f"records differ with {workers} workers"


def test_a_killed_and_restarted_orchestrator_records_every_round_exactly_once(
    tmp_path: Path, processes: Processes
) -> None:
    # A CNN and 10 local epochs make rounds last about a second: the kill lands while the run goes on.
    overrides = {
        **FAILING,
        "simulation": {"num_rounds": 5, "model": "cnn"},
        "algorithms": {"fit": {"params": {"epochs": 10}}},
    }
    reference = tables(run_local(tmp_path / "reference", overrides, workers=1))

    spec = write_spec(tmp_path, overrides)
    port = free_port()
    first = processes.orchestrator(spec, port)
    processes.worker(port)
    killed_at = wait_for_status(port, lambda status: status["round"] >= 2 or status["phase"] != "Running")
    assert killed_at["phase"] == "Running", "the run ended before the orchestrator could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait()
    processes.orchestrator(spec, port)
    wait_for_status(port, lambda status: status["phase"] == "Succeeded")
    assert "resuming run" in processes.log("orchestrator")

    output = tmp_path / "out"
    records = read_table(output, Table.RECORDS).to_pandas()
    rounds = records[["repetition", "round"]].drop_duplicates()
    assert len(rounds) == 5 and len(records) == len(reference["records"]["device"])
    assert tables(output) == reference
    assert comparable_rounds(output / "results.json") == comparable_rounds(tmp_path / "reference/out/results.json")

    served = httpx.get(
        f"http://127.0.0.1:{port}/v1/results/devices", params={"repetition": 0, "round": 4}, headers=AUTH
    )
    assert served.status_code == 200 and served.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(served.content)).to_pydict()
    assert set(table["round"]) == {4} and set(table["repetition"]) == {0}
    as_json = httpx.get(
        f"http://127.0.0.1:{port}/v1/results/devices",
        params={"table": "availability", "format": "json"},
        headers=AUTH,
    ).json()
    assert [(row["repetition"], row["round"]) for row in as_json] == sorted(
        zip(reference["availability"]["repetition"], reference["availability"]["round"], strict=True)
    )
    unauthorised = httpx.get(f"http://127.0.0.1:{port}/v1/results/devices")
    assert unauthorised.status_code == 401
    # A misspelt parameter would otherwise serve every row: it is refused, named.
    typo = httpx.get(f"http://127.0.0.1:{port}/v1/results/devices", params={"rount": 4}, headers=AUTH)
    assert typo.status_code == 422 and typo.json()["detail"][0]["loc"] == ["query", "rount"]


def _doc_blocks(language: str) -> list[str]:
    """The code blocks of docs/analyzer.md's "Querying the records" section in `language`."""
    text = (Path(__file__).parents[2] / "docs" / "analyzer.md").read_text()
    section = text.split("## Querying the records", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_the_documented_pandas_and_duckdb_queries_run_on_real_records(
    failing_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = read_table(failing_run, Table.RECORDS).to_pydict()
    monkeypatch.chdir(failing_run.parents[1])
    [pandas_example] = _doc_blocks("python")
    namespace: dict[str, Any] = {}
    exec(pandas_example.replace("output/quickstart", str(failing_run.relative_to(failing_run.parents[1]))), namespace)
    completed = [not failed for failed in records["failed"]]
    spent = sum(energy for energy, done in zip(records["energy"], completed, strict=True) if done)
    assert namespace["energy"].sum() == pytest.approx(spent)
    fit_rows = sum(phase == "fit" for phase in records["phase"])
    assert namespace["participation"].sum() == fit_rows and len(namespace["participation"]) == 2 * 20

    import duckdb

    monkeypatch.chdir(failing_run / "devices")
    selections, by_phase = (duckdb.sql(query).fetchall() for query in _doc_blocks("sql")[0].split(";")[:2])
    assert sum(count for _, _, count in selections) == fit_rows and len(selections) == 2 * 20
    assert sum(energy for _, energy, _ in by_phase) == pytest.approx(spent)
    assert sum(failed for _, _, failed in by_phase) == sum(records["failed"])


def test_identical_repetitions_record_one_population_and_the_originals_energy_model(tmp_path: Path) -> None:
    overrides = {
        "simulation": {"num_rounds": 2, "repetitions": 2, "identical_repetitions": True},
        "devices": {"p_fail": 0.2, "energy_failures": False},
        "energy": {"avail_mean": 400.0, "avail_var": 300.0},
    }
    output = run_local(tmp_path, overrides, workers=2)
    population = read_table(output, Table.POPULATION).to_pandas()
    first, second = (population[population["repetition"] == r].drop(columns="repetition") for r in (0, 1))
    assert first.reset_index(drop=True).equals(second.reset_index(drop=True))
    records = read_table(output, Table.RECORDS).to_pandas()
    # Energy never fails a job (budgets as in FAILING, which make energy failures): budgets may be overdrawn.
    assert set(records["failure"].dropna()) == {"random"}
    assert (records["energy_left"] < 0).any()
    availability = read_table(output, Table.AVAILABILITY).to_pandas()
    by_repetition = [list(availability[availability["repetition"] == r]["available_devices"].iloc[0]) for r in (0, 1)]
    assert by_repetition[0] != by_repetition[1]  # round-level draws still differ per repetition
