"""Regression tasks: the diabetes dataset, the regression model, MSE training, mae/mse metrics named as such,
stop conditions in the metric's direction, and the spec fields that make no sense on a regression dataset."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from feles.algorithms import ClientAlgorithm, LocalTask, build_client
from feles.analysis.device_plots import device_plot
from feles.analysis.device_records import DeviceRun, load_device_records
from feles.analysis.loading import Run, load_runs
from feles.analysis.summary import summarise
from feles.analysis.tables import csv_table, markdown_table
from feles.cli import app
from feles.config import AlgorithmsSection, PhaseParams, parse_spec
from feles.data import DataRequest, load_dataset, partition_devices, task_errors
from feles.data.diabetes import held_out_indices
from feles.evaluation import Evaluation, combine, evaluate, loss_function, metric_reached, regression_loss
from feles.models import build_model
from feles.orchestrator.jobs import JobQueue
from feles.orchestrator.loop import RunParts, SimulationLoop, stop_reason
from feles.orchestrator.metrics import OrchestratorCollector
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.outcomes import PhaseOutcome
from feles.orchestrator.records import phase_rows
from feles.orchestrator.results import RepetitionSummary, ResultsDocument, RoundRecord
from feles.orchestrator.state import OrchestratorState, Progress
from feles.plugin_checks import plugin_errors
from feles.protocol import Phase, SimulationPhase
from feles.records import Table, part_path, read_table, write_part
from tests.unit.device_records_documents import synthetic_tables, write_run
from tests.unit.test_loop_failures import FailingRunner
from tests.unit.test_records import plan_of, result

SIZES = np.full(8, 40, dtype=np.int64)


def diabetes(params: dict[str, Any] | None = None, seed: int = 0, repetition: int = 0) -> Any:
    return load_dataset("diabetes", DataRequest(seed, repetition, SIZES, None, params or {}))


# --- evaluation and training loss ----------------------------------------------------------------------


class Constant(nn.Module):
    """Predicts `value` for every example, as (n, 1)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x), 1), self.value)


def test_mae_and_mse_of_a_constant_prediction() -> None:
    x, y = torch.zeros(4, 3), torch.tensor([1.0, 2.0, 4.0, 7.0])
    mae = evaluate(Constant(3.0), x, y, batch_size=3, metric="mae")
    mse = evaluate(Constant(3.0), x, y, batch_size=3, metric="mse")
    # errors 2, 1, 1, 4: mae 2, mse (4 + 1 + 1 + 16) / 4; the loss is the mean squared error either way
    assert mae.metric == pytest.approx(2.0) and mae.loss == pytest.approx(5.5)
    assert mse.metric == pytest.approx(5.5) and mse.loss == pytest.approx(5.5) and mse.num_examples == 4


def test_sharded_mae_equals_the_whole_split() -> None:
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(101, 5, generator=generator), torch.randn(101, generator=generator) * 50
    torch.manual_seed(1)
    model = nn.Linear(5, 1)
    whole = evaluate(model, x, y, metric="mae")
    shards = [evaluate(model, x[a:b], y[a:b], metric="mae") for a, b in ((0, 30), (30, 60), (60, 101))]
    combined = combine(shards, "mae")
    assert combined.metric == pytest.approx(whole.metric, rel=1e-6)
    assert combined.loss == pytest.approx(whole.loss, rel=1e-6)


def test_combine_weights_errors_by_examples_without_rounding() -> None:
    # An accuracy is rounded back to whole counts; an error must not be.
    combined = combine([Evaluation(1.0, 0.3, 10), Evaluation(4.0, 12.7, 30)], "mae")
    assert combined.metric == pytest.approx((0.3 * 10 + 12.7 * 30) / 40)


def test_the_training_loss_follows_the_task() -> None:
    assert loss_function("accuracy") is nn.functional.cross_entropy
    assert loss_function("mae") is regression_loss and loss_function("mse") is regression_loss
    # (n, 1) outputs against (n,) targets: no broadcasting to (n, n)
    loss = regression_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 5.0]))
    assert loss.item() == pytest.approx((1 + 4) / 2)


def test_local_training_on_a_regression_target_reduces_the_squared_error() -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(64, 3, generator=generator)
    y = x @ torch.tensor([2.0, -1.0, 0.5]) + 3.0
    torch.manual_seed(2)
    model = nn.Linear(3, 1)
    before = evaluate(model, x, y, metric="mse").metric
    task = LocalTask(
        model=model,
        x=x,
        y=y,
        epochs=20,
        batch_size=16,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        generator=torch.Generator().manual_seed(0),
        global_weights={k: v.clone() for k, v in model.state_dict().items()},
        loss=regression_loss,
    )
    outcome = ClientAlgorithm({}).train(task)
    after = evaluate(model, x, y, metric="mse").metric
    assert after < before / 100 and math.isfinite(outcome.loss)


@pytest.mark.parametrize(
    ("metric", "value", "target", "reached"),
    [
        ("accuracy", 0.9, 0.9, True),
        ("accuracy", 0.89, 0.9, False),
        ("mae", 40.0, 45.0, True),
        ("mae", 50.0, 45.0, False),
        ("mse", 10.0, 10.0, True),
        ("mae", math.nan, 45.0, False),
    ],
)
def test_a_metric_is_reached_in_its_direction(metric: str, value: float, target: float, reached: bool) -> None:
    assert metric_reached(metric, value, target) is reached


# --- the diabetes dataset and the regression model ----------------------------------------------------------


def test_diabetes_is_split_once_and_standardised_with_the_train_statistics() -> None:
    data = diabetes()
    assert data.train.x.shape == (354, 10) and data.test.x.shape == (88, 10) and data.input_shape == (10,)
    assert data.train.y.dtype == torch.float32 and data.train.y.shape == (354,) and data.num_classes == 1
    assert torch.allclose(data.train.x.mean(dim=0), torch.zeros(10), atol=1e-5)
    assert torch.allclose(data.train.x.std(dim=0, unbiased=False), torch.ones(10), atol=1e-4)
    # The test split is standardised with the train statistics, so its own are not exactly 0 and 1.
    assert not torch.allclose(data.test.x.mean(dim=0), torch.zeros(10), atol=1e-3)
    # The target stays in its own units: the disease progression one year later, 25 to 346.
    targets = torch.cat([data.train.y, data.test.y])
    assert targets.min().item() == 25.0 and targets.max().item() == 346.0
    # The same test patients for every run seed and repetition.
    other = diabetes(seed=9, repetition=3)
    assert torch.equal(other.test.y, data.test.y) and torch.equal(other.test.x, data.test.x)


def test_diabetes_test_fraction() -> None:
    assert diabetes({"test_fraction": 0.5}).test.x.shape == (221, 10)
    assert len(held_out_indices(442, 0.2)) == 88 and len(np.unique(held_out_indices(442, 0.2))) == 88
    with pytest.raises(ValueError, match=r"dataset_params\.test_fraction of dataset 'diabetes'"):
        diabetes({"test_fraction": 1.5})


def test_regression_mlp_is_the_original_boston_housing_architecture() -> None:
    model = build_model("regression_mlp", (10,), 1)
    assert model(torch.zeros(5, 10)).shape == (5, 1)
    # Dense(64, relu), Dense(64, relu), Dense(1): (10 * 64 + 64) + (64 * 64 + 64) + (64 + 1)
    assert sum(p.numel() for p in model.parameters()) == 704 + 4160 + 65


def test_devices_get_the_float_targets_and_no_label_counts() -> None:
    data = diabetes()
    partitions = partition_devices(data, SIZES, 0.0, 0.0, seed=3, repetition=0)
    for device in range(len(SIZES)):
        labels = partitions.labels[device]
        assert labels.dtype == torch.float32
        assert torch.equal(labels, data.train.y[torch.from_numpy(partitions.indices[device])])
    assert partitions.label_counts(data.num_classes).shape == (8, 0)


def test_label_skew_and_mislabelling_refuse_a_regression_dataset() -> None:
    with pytest.raises(ValueError, match=r"non_iid_partitions and data\.mislabelling_percentage must be 0"):
        partition_devices(diabetes(), SIZES, 0.5, 0.0, seed=3, repetition=0)
    with pytest.raises(ValueError, match="regression dataset"):
        partition_devices(diabetes(), SIZES, 0.0, 0.1, seed=3, repetition=0)


# --- the spec must fit the dataset's task ----------------------------------------------------------------


def spec_of(**simulation: Any) -> Any:
    data = simulation.pop("data", {})
    return parse_spec({"simulation": simulation, "data": data})


@pytest.mark.parametrize(
    ("simulation", "field", "message"),
    [
        ({"dataset": "diabetes"}, "simulation.metric", "accuracy does not measure regression (dataset 'diabetes')"),
        ({"dataset": "digits", "metric": "mae"}, "simulation.metric", "mae does not measure classification"),
        (
            {"dataset": "diabetes", "metric": "mae", "data": {"non_iid_partitions": 1.0}},
            "data.non_iid_partitions",
            "label skew needs classes",
        ),
        (
            {"dataset": "diabetes", "metric": "mse", "data": {"mislabelling_percentage": 0.1}},
            "data.mislabelling_percentage",
            "mislabelling needs classes",
        ),
    ],
)
def test_settings_that_do_not_fit_the_task_are_errors_naming_the_field(
    simulation: dict[str, Any], field: str, message: str
) -> None:
    errors = dict(plugin_errors(spec_of(**simulation)))
    assert set(errors) == {field} and message in errors[field]


def test_fitting_settings_have_no_task_error() -> None:
    assert plugin_errors(spec_of(dataset="diabetes", metric="mae")) == []
    assert task_errors("digits", "classification", spec_of(dataset="digits")) == []


def test_validate_names_the_metric_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("simulation: {dataset: diabetes, metric: accuracy}\n")
    outcome = CliRunner().invoke(app, ["validate", str(path)])
    assert outcome.exit_code == 1
    assert "simulation.metric" in outcome.output and "Traceback" not in outcome.output
    path.write_text("simulation: {dataset: diabetes, metric: mae}\n")
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0


# --- stop conditions ---------------------------------------------------------------------------------


def record(test_metric: float, eval_metric: float | None, test_loss: float = 9.0, eval_loss: float | None = 9.0):
    return RoundRecord(0, 0, 1, 10, 5, 0, 5, 0, 1.0, eval_loss, eval_metric, test_loss, test_metric, 1.0, 1.0, 1.0, 0.1)


def stop_spec(measure: str, **conditions: Any) -> Any:
    dataset = "digits" if measure == "accuracy" else "diabetes"
    return parse_spec({"simulation": {"dataset": dataset, "metric": measure, "stop_conds": conditions}})


def test_an_error_stops_at_or_below_its_target() -> None:
    spec = stop_spec("mae", metric=45.0)
    assert stop_reason(spec, record(45.0, None)) == "TargetMaeReached"
    assert stop_reason(spec, record(46.0, 10.0)) is None  # the test split is watched by default
    assert stop_reason(stop_spec("mse", metric=100.0), record(99.0, None)) == "TargetMseReached"


def test_an_accuracy_stops_at_or_above_its_target() -> None:
    spec = stop_spec("accuracy", metric=0.8)
    assert stop_reason(spec, record(0.8, None)) == "TargetAccuracyReached"
    assert stop_reason(spec, record(0.79, 0.95)) is None


def test_target_eval_watches_the_federated_evaluation() -> None:
    spec = stop_spec("mae", metric=45.0, target="eval")
    assert stop_reason(spec, record(10.0, 50.0)) is None
    assert stop_reason(spec, record(90.0, 44.0)) == "TargetMaeReached"
    assert stop_reason(spec, record(10.0, None)) is None  # no eval device completed: nothing to watch
    losses = stop_spec("mae", loss=2.0, target="eval")
    assert stop_reason(losses, record(90.0, 44.0, test_loss=1.0, eval_loss=3.0)) is None
    assert stop_reason(losses, record(90.0, 44.0, test_loss=5.0, eval_loss=2.0)) == "TargetLossReached"


# --- the metric's name in what a user reads ------------------------------------------------------------------


def regression_results(tmp_path: Path) -> ResultsDocument:
    spec = parse_spec({"simulation": {"dataset": "diabetes", "metric": "mae", "output_folder": str(tmp_path)}})
    document = ResultsDocument(spec, "run")
    document.rounds += [record(60.0, 62.0), record(50.0, 51.0)]
    document.repetitions.append(RepetitionSummary(0, 2, "RoundsCompleted", 50.0, 9.0, 1.0, 1.0))
    return document


def test_results_name_the_metric_and_never_call_an_error_accuracy(tmp_path: Path) -> None:
    document = regression_results(tmp_path)
    written = document.to_dict()
    assert written["metric"] == "mae"
    assert written["rounds"][1]["test_mae"] == 50.0 and written["rounds"][1]["eval_mae"] == 51.0
    assert written["repetitions"][0]["final_test_mae"] == 50.0
    assert "accuracy" not in str(written["rounds"]) + str(written["repetitions"]) + document.to_csv()
    assert document.to_csv().splitlines()[0].split(",")[10:13] == ["eval_mae", "test_loss", "test_mae"]
    restored = ResultsDocument(document.spec, "run")
    restored.restore(written)
    assert restored.rounds == document.rounds and restored.repetitions == document.repetitions


def test_device_records_name_the_eval_column_after_the_metric(tmp_path: Path) -> None:
    outcome = PhaseOutcome(plan_of(Phase.EVAL), {4: result(4, 0.5, 37.5)}, frozenset({7}))
    table = phase_rows(outcome, PhaseParams(), np.arange(10) * 100, "mae")
    assert "accuracy" not in table.column_names and table.to_pydict()["mae"] == [None, 37.5, None, None, None]
    write_part(part_path(tmp_path, Table.RECORDS, 1, 3), table)
    assert read_table(tmp_path, Table.RECORDS).to_pydict()["mae"] == [None, 37.5, None, None, None]


def test_analysis_reads_the_metric_and_its_direction(tmp_path: Path) -> None:
    document = regression_results(tmp_path).to_dict()
    document["spec"]["simulation"]["stop_conds"]["metric"] = 55.0
    summary = summarise(Run(tmp_path / "results.json", "mae run", document))
    assert summary.metric == "mae"
    assert summary.final_metric.mean == 50.0 and summary.best_metric.mean == 50.0  # the lowest error is best
    assert summary.rounds_to_target.mean == 2  # 60 > 55, then 50 <= 55
    assert markdown_table([summary]).startswith("| run | reps | rounds | final test mae | best test mae |")
    assert "accuracy" not in csv_table([summary])


def test_the_label_distribution_of_a_regression_run_says_it_has_no_classes(tmp_path: Path) -> None:
    records, availability, population = synthetic_tables(10, 3, seed=1)
    empty = pa.array([[] for _ in range(population.num_rows)], type=pa.list_(pa.int64()))
    population = population.set_column(population.schema.get_field_index("label_counts"), "label_counts", empty)
    write_run(tmp_path / "r", (records, availability, population), [[50.0, 40.0, 30.0]], num_devices=10)
    (run,) = load_runs([tmp_path])
    data = load_device_records(run)
    assert data is not None
    figure = device_plot("label_distribution", [DeviceRun(run, data, "C0")])
    assert "no classes: a regression target" in [text.get_text() for text in figure.axes[0].texts]


def test_a_run_whose_metric_does_not_fit_the_dataset_fails_at_its_start(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "simulation": {"dataset": "diabetes", "num_rounds": 1, "output_folder": str(tmp_path)},
            "devices": {"num": 10},
            "data": {"num_examples_mean": 20},
        }
    )
    progress = Progress()
    results = ResultsDocument(spec, "r")
    parts = RunParts(spec, "0" * 32, "regression_mlp", FailingRunner(), ModelStore(), progress, results)
    SimulationLoop(parts).run()
    assert progress.phase is SimulationPhase.FAILED
    assert progress.message.startswith("ValueError: simulation.metric: accuracy does not measure regression")


@pytest.mark.parametrize("algorithm", ["fedavg", "fedprox", "fednova", "scaffold", "feddyn"])
def test_every_algorithms_client_trains_on_the_squared_error(algorithm: str) -> None:
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(40, 3, generator=generator)
    y = x @ torch.tensor([1.0, 2.0, -1.0]) + 150.0  # a target far from the initial outputs, as diabetes's is
    torch.manual_seed(4)
    model = nn.Linear(3, 1)
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    params = {"alpha": 0.01} if algorithm == "feddyn" else {}
    client = build_client(AlgorithmsSection(federated_algorithm=algorithm, algorithm_params=params))
    before = evaluate(model, x, y, metric="mae").metric
    task = LocalTask(
        model=model,
        x=x,
        y=y,
        epochs=20,
        batch_size=8,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        generator=torch.Generator().manual_seed(0),
        global_weights=weights,
        loss=regression_loss,
    )
    outcome = client.train(task)
    assert math.isfinite(outcome.loss) and evaluate(model, x, y, metric="mae").metric < before / 2


def test_status_and_prometheus_name_the_metric_of_a_regression_run() -> None:
    spec = parse_spec({"simulation": {"dataset": "diabetes", "metric": "mse"}})
    state = OrchestratorState(spec=spec, queue=JobQueue(10.0), model_name="regression_mlp")
    state.progress.metric_value, state.progress.loss = 812.5, 812.5
    status = state.snapshot()
    assert (status.metric, status.metric_value, status.accuracy) == ("mse", 812.5, None)
    gauges = {metric.name: metric for metric in OrchestratorCollector(state).collect()}
    assert gauges["feles_test_mse"].samples[0].value == 812.5 and "feles_test_accuracy" not in gauges
