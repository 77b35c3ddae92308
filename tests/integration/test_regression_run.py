"""A regression simulation through `feles run`'s orchestrator and worker processes, and FedAvg with the FedNova
aggregation (which the original FELES could not run)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from feles.local import LocalRun, LocalRunOptions
from feles.records import Table, read_table
from tests.integration.conftest import write_spec

pytestmark = pytest.mark.integration

#: Diabetes on 8 devices of about 40 patients, RMSprop at its default learning rate (0.001, Keras's).
DIABETES_SPEC = {
    "simulation": {"dataset": "diabetes", "metric": "mae", "num_rounds": 3, "seed": 3, "test_shard_size": 50},
    "algorithms": {
        "optimizer": "rmsprop",
        "fit": {"params": {"k": 0.5, "epochs": 5, "batch_size": 16}},
        "eval": {"params": {"k": 0.5, "batch_size": 64}},
    },
    "devices": {"num": 8, "p_available": 1.0, "p_fail": 0.0},
    "data": {"num_examples_mean": 40, "num_examples_var": 5},
}


def test_a_diabetes_run_reports_its_mae_as_mae(tmp_path: Path) -> None:
    spec = {**DIABETES_SPEC, "simulation": {**DIABETES_SPEC["simulation"], "output_folder": str(tmp_path / "out")}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    outcome = LocalRun(LocalRunOptions(path, workers=2)).run()
    assert outcome.status.phase.value == "Succeeded", f"{outcome.status.message}; logs in {outcome.log_dir}"
    assert outcome.status.metric == "mae" and outcome.status.accuracy is None

    text = outcome.results_path.read_text()
    document = json.loads(text)
    assert document["metric"] == "mae"
    assert "accuracy" not in json.dumps(document["rounds"]) + json.dumps(document["repetitions"])
    rounds = document["rounds"]
    maes = [row["test_mae"] for row in rounds]
    assert len(maes) == 3 and all(math.isfinite(value) for value in maes)
    # Targets range 25..346 (mean about 150): the untrained model is off by about the mean, and training helps.
    assert 100 < maes[0] < 200 and maes[-1] < maes[0]
    assert all(row["eval_mae"] is not None and row["eval_mae"] > 0 for row in rounds)
    # The loss is the squared error, of the order of mae squared.
    assert all(row["test_loss"] >= row["test_mae"] ** 2 for row in rounds)
    assert document["repetitions"][0]["final_test_mae"] == maes[-1]
    assert outcome.status.metric_value == pytest.approx(maes[-1])

    with outcome.results_path.with_suffix(".csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert "test_mae" in table[0] and not any("accuracy" in column for column in table[0])
    records = read_table(outcome.results_path.parent, Table.RECORDS).to_pydict()
    assert "mae" in records and "accuracy" not in records
    evaluated = [value for value, phase in zip(records["mae"], records["phase"], strict=True) if phase == "eval"]
    assert evaluated and all(value > 0 for value in evaluated)
    population = read_table(outcome.results_path.parent, Table.POPULATION).to_pydict()
    assert all(counts == [] for counts in population["label_counts"])  # no classes to count


def test_fedavg_with_the_fednova_aggregation_runs(tmp_path: Path) -> None:
    overrides = {"algorithms": {"federated_algorithm": "fedavg", "fit": {"aggregation": "fednova"}}}
    outcome = LocalRun(LocalRunOptions(write_spec(tmp_path, overrides), workers=1)).run()
    assert outcome.status.phase.value == "Succeeded", f"{outcome.status.message}; logs in {outcome.log_dir}"
    rounds = json.loads(outcome.results_path.read_text())["rounds"]
    assert len(rounds) == 4 and rounds[-1]["test_accuracy"] > 0.3
