"""Sweeps: the grid (product, zipped axes, seeds), cell names, every cell's validation, the sweep's folder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from feles.config import SimulationSpec
from feles.plugin_checks import plugin_errors
from feles.sweep import (
    MANIFEST,
    SweepError,
    expand,
    labels_of,
    load_sweep,
    manifest,
    parse_sweep,
    path_problem,
    read_sweep_folder,
    set_path,
    shorten,
    sweep_objective,
    sweep_runs,
    value_text,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
BASE = {"simulation": {"dataset": "digits", "num_rounds": 3}, "devices": {"num": 20}}
SELECTION = {
    "path": "algorithms.fit.selection",
    "values": ["random", "best_round_time", "dynamic_sampling"],
    "name": "sel",
}
ALPHA = {"path": "data.non_iid_partitions", "values": [0.1, 1.0], "name": "alpha"}


def sweep(**fields: Any) -> Any:
    return parse_sweep({"base": BASE, **fields})


def test_the_grid_is_the_product_of_the_axes_the_last_varying_fastest() -> None:
    cells = expand(sweep(axes=[SELECTION, ALPHA]))
    assert [cell.name for cell in cells] == [
        "sel-random-alpha-0p1",
        "sel-random-alpha-1",
        "sel-best-round-time-alpha-0p1",
        "sel-best-round-time-alpha-1",
        "sel-dynamic-sampling-alpha-0p1",
        "sel-dynamic-sampling-alpha-1",
    ]
    assert cells[3].values == {"algorithms.fit.selection": "best_round_time", "data.non_iid_partitions": 1.0}
    assert cells[3].spec.algorithms.fit.selection == "best_round_time"
    assert cells[3].spec.data.non_iid_partitions == 1.0
    # The base's own values stay, and its other fields keep their defaults.
    assert cells[3].spec.simulation.num_rounds == 3 and cells[3].spec.algorithms.eval.selection == "random"


def test_zipped_fields_vary_together() -> None:
    zipped = {
        "zip": [
            {"path": "algorithms.learning_rate", "values": [0.1, 0.01]},
            {"path": "algorithms.momentum", "values": [0.9, 0.0]},
        ]
    }
    cells = expand(sweep(axes=[ALPHA, zipped]))
    assert len(cells) == 4
    assert [(cell.spec.algorithms.learning_rate, cell.spec.algorithms.momentum) for cell in cells] == [
        (0.1, 0.9),
        (0.01, 0.0),
        (0.1, 0.9),
        (0.01, 0.0),
    ]
    assert cells[0].name == "alpha-0p1-learning-rate-0p1-momentum-0p9"
    named = expand(sweep(axes=[{**zipped, "name": "opt"}]))
    assert [cell.name for cell in named] == ["opt-0p1-0p9", "opt-0p01-0"]


def test_zipped_fields_need_as_many_values() -> None:
    with pytest.raises(SweepError) as raised:
        sweep(axes=[{"zip": [{"path": "algorithms.momentum", "values": [0.1]}, {"path": "x", "values": [1, 2]}]}])
    assert raised.value.errors[0][0] == "axes.0"
    assert "as many values" in raised.value.errors[0][1]


def test_seeds_are_the_last_axis() -> None:
    cells = expand(sweep(axes=[ALPHA], seeds=[1, 2, 3]))
    assert [cell.name for cell in cells][:3] == ["alpha-0p1-seed-1", "alpha-0p1-seed-2", "alpha-0p1-seed-3"]
    assert [cell.spec.simulation.seed for cell in cells] == [1, 2, 3, 1, 2, 3]
    assert labels_of(sweep(axes=[ALPHA], seeds=[1])) == {"data.non_iid_partitions": "alpha", "simulation.seed": "seed"}


def test_no_axis_is_one_cell_named_base() -> None:
    [cell] = expand(sweep())
    assert (cell.name, cell.values) == ("base", {})
    assert cell.spec == SimulationSpec.model_validate(BASE)


def test_a_mapping_value_merges_into_a_section() -> None:
    axis = {"path": "algorithms.fit.params", "values": [{"epochs": 3}, {"epochs": 1, "batch_size": 8}], "name": "p"}
    cells = expand(sweep(axes=[axis]))
    assert [(c.spec.algorithms.fit.params.epochs, c.spec.algorithms.fit.params.batch_size) for c in cells] == [
        (3, 32),
        (1, 8),
    ]
    assert all(re.match(r"^p-h[0-9a-f]{6}$", cell.name) for cell in cells)


def test_set_path_copies() -> None:
    document = {"a": {"b": 1, "c": 2}}
    assert set_path(document, "a.b", 5) == {"a": {"b": 5, "c": 2}}
    assert set_path(document, "x.y", 1) == {"a": {"b": 1, "c": 2}, "x": {"y": 1}}
    assert document == {"a": {"b": 1, "c": 2}}


# --- Names ---


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0p1"),
        (1.0, "1"),
        (-2, "m2"),
        (1e-5, "1em05"),
        (True, "true"),
        (None, "none"),
        ("best_round_time", "best-round-time"),
        ("my.pkg:Selector", "my-pkg-selector"),
        ("__", "h"),
    ],
)
def test_value_text_is_dns_safe(value: Any, text: str) -> None:
    assert value_text(value).startswith(text)
    assert DNS_LABEL.match(value_text(value))


def test_names_are_deterministic_unique_dns_labels_within_the_length() -> None:
    long_values = [f"my_package.selection_module:Strategy{index}" for index in range(5)]
    axes = [{"path": "algorithms.fit.selection", "values": long_values}, ALPHA]
    first = [cell.name for cell in expand(sweep(axes=axes, seeds=[1, 2]))]
    assert first == [cell.name for cell in expand(sweep(axes=axes, seeds=[1, 2]))]
    assert len(set(first)) == len(first) == 20
    assert all(len(name) <= 63 and DNS_LABEL.match(name) for name in first)
    assert first[0].startswith("selection-my-package-selection-module-strategy0")
    short = [cell.name for cell in expand(sweep(axes=axes, seeds=[1, 2]), max_length=20)]
    assert len(set(short)) == 20 and all(len(name) <= 20 and DNS_LABEL.match(name) for name in short)


def test_a_name_is_only_shortened_when_too_long() -> None:
    assert shorten("sel-random", 20, "key") == "sel-random"
    shortened = shorten("sel-random-alpha-0p1-seed-1", 20, "key")
    assert len(shortened) <= 20 and shortened.startswith("sel-random-")
    assert shortened != shorten("sel-random-alpha-0p1-seed-1", 20, "other key")


def test_values_that_read_the_same_still_get_distinct_names() -> None:
    axis = {"path": "algorithms.fit.selection_params.tag", "values": ["a_b", "a-b", "a.b"], "name": "sel"}
    names = [cell.name for cell in expand(sweep(axes=[axis]), check=None)]
    assert len(set(names)) == 3 and all(name.startswith("sel-a-b-") for name in names)


# --- Validation ---


def test_every_cell_is_checked_and_errors_name_the_cell_and_the_field() -> None:
    axes = [
        {"path": "algorithms.fit.selection", "values": ["random", "no_such_strategy"], "name": "sel"},
        {"path": "data.non_iid_partitions", "values": [-1, 1.0], "name": "alpha"},
    ]
    with pytest.raises(SweepError) as raised:
        expand(sweep(axes=axes), check=plugin_errors, source="grid.yaml")
    errors = raised.value.errors
    wheres = [where for where, _ in errors]
    assert wheres == [
        "cell sel-random-alpha-m1: data.non_iid_partitions",
        "cell sel-no-such-strategy-alpha-m1: data.non_iid_partitions",
        "cell sel-no-such-strategy-alpha-1: algorithms.fit.selection",
    ]
    assert "greater than or equal to 0" in errors[0][1]
    assert "unknown selection strategy 'no_such_strategy'" in errors[2][1]
    assert str(raised.value).startswith("grid.yaml: 3 error(s)")


def test_cross_field_rules_are_checked_per_cell() -> None:
    with pytest.raises(SweepError) as raised:
        expand(sweep(axes=[{"path": "network.speed_var", "values": [1000, 100_000], "name": "v"}]))
    assert raised.value.errors == [
        (
            "cell v-100000: network.speed_var",
            "must be smaller than network.speed_mean (100000.0) so that every draw is positive",
        ),
    ]


@pytest.mark.parametrize(
    ("axes", "seeds", "where", "message"),
    [
        ([{"path": "algorithms.fit.selecton", "values": [1]}], None, "axes[0].path", "has no field 'selecton'"),
        ([{"path": "devices.num.x", "values": [1]}], None, "axes[0].path", "devices.num is a value"),
        ([{"path": "simulation.output_folder", "values": ["a"]}], None, "axes[0].path", "cannot vary"),
        ([ALPHA, {**ALPHA, "name": "b"}], None, "axes[1].path", "already varies in axes[0].path"),
        ([{"path": "simulation.seed", "values": [1]}], [1, 2], "seeds", "give seeds once"),
        ([ALPHA, {"path": "algorithms.momentum", "values": [0.1], "name": "alpha"}], None, "axes", "named 'alpha'"),
        ([{"path": "devices.num", "values": list(range(1, 40))}] * 1, list(range(30)), "axes", "at most 1000"),
    ],
)
def test_axis_problems(axes: list[dict[str, Any]], seeds: list[int] | None, where: str, message: str) -> None:
    with pytest.raises(SweepError) as raised:
        expand(sweep(axes=axes, seeds=seeds))
    assert any(found == where and message in text for found, text in raised.value.errors), raised.value.errors


def test_a_value_or_seed_given_twice_is_refused_naming_the_axis_and_the_value() -> None:
    # Given twice, a value adds no cell: it counted the same cells twice in the comparison's mean and std.
    axes = [{**SELECTION, "values": ["random", "best_round_time", "random"]}]
    with pytest.raises(SweepError) as raised:
        expand(sweep(axes=axes, seeds=[1, 2, 2, 2]), source="grid.yaml")
    once = "give each value once: a repeat adds no cell, it only counts the same cells again"
    assert raised.value.errors == [
        ("axes[0].values", f'"random" is given 2 times in axis sel (values[0], values[2]): {once}'),
        ("seeds", f"2 is given 3 times (seeds[1], seeds[2], seeds[3]): {once}"),
    ]
    assert str(raised.value).startswith("grid.yaml: 2 error(s)")


@pytest.mark.parametrize(
    ("axis", "where", "message"),
    [
        # Equal as YAML values: a mapping in another key order, a whole number written as a float.
        (
            {
                "path": "algorithms.fit.params",
                "values": [{"epochs": 1, "batch_size": 8}, {"batch_size": 8, "epochs": 1}],
            },
            "axes[0].values",
            '{"epochs": 1, "batch_size": 8} is given 2 times in axis params (values[0], values[1])',
        ),
        (
            {"path": "devices.num", "values": [10, 10.0]},
            "axes[0].values",
            "10 is given 2 times in axis num (values[0], values[1])",
        ),
        (
            {
                "zip": [
                    {"path": "algorithms.learning_rate", "values": [0.1, 0.01, 0.1]},
                    {"path": "algorithms.momentum", "values": [0.9, 0.0, 0.9]},
                ],
                "name": "opt",
            },
            "axes[0].zip",
            "(algorithms.learning_rate=0.1, algorithms.momentum=0.9) is given 2 times in axis opt "
            "(values[0], values[2])",
        ),
    ],
)
def test_equal_values_repeat(axis: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(SweepError) as raised:
        expand(sweep(axes=[axis]))
    assert [(found, text.partition(": give")[0]) for found, text in raised.value.errors] == [(where, message)]


def test_a_zipped_field_may_repeat_a_value_in_distinct_combinations() -> None:
    zipped = {
        "zip": [
            {"path": "algorithms.learning_rate", "values": [0.1, 0.1]},
            {"path": "algorithms.momentum", "values": [0.9, 0.0]},
        ],
        "name": "opt",
    }
    assert [cell.name for cell in expand(sweep(axes=[zipped], seeds=[1]))] == ["opt-0p1-0p9-seed-1", "opt-0p1-0-seed-1"]
    # Values that only read the same in cell names (1 and "1", true and 1) are distinct values.
    axis = {"path": "algorithms.fit.selection_params.tag", "values": [1, "1", True]}
    assert len(expand(sweep(axes=[axis]))) == 3


def test_free_form_maps_accept_any_key() -> None:
    assert path_problem("algorithms.algorithm_params.mu") is None
    assert path_problem("algorithms.fit.selection_params.anything.deeper") is None
    assert path_problem("algorithms.fit") is None  # a whole section: mappings merge into it


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"axes": [{"path": "data.non_iid_partitions"}]}, "axes.0"),
        ({"axes": [{"path": "a", "values": [1], "zip": [{"path": "b", "values": [1]}]}]}, "axes.0"),
        ({"axes": [{"path": "a", "values": []}]}, "axes.0.values"),
        ({"axes": [{"path": "a", "values": [1], "name": "Alpha"}]}, "axes.0.name"),
        ({"parallelism": 0}, "parallelism"),
        ({"seeds": [-1]}, "seeds.0"),
        ({"best": {"metric": "f1"}}, "best.metric"),
        ({"base": {"devices": {"num": 0}}}, "base.devices.num"),
        ({"axis": []}, "axis"),
    ],
)
def test_the_schema_names_the_field(document: dict[str, Any], where: str) -> None:
    with pytest.raises(SweepError) as raised:
        parse_sweep(document, "s.yaml")
    assert [found for found, _ in raised.value.errors] == [where]


REGRESSION = {"simulation": {"dataset": "diabetes", "metric": "mae", "num_rounds": 3}, "devices": {"num": 20}}


def regression_sweep(**fields: Any) -> Any:
    return parse_sweep({"base": REGRESSION, **fields})


@pytest.mark.parametrize(
    ("base", "best", "metric", "mode"),
    [
        (BASE, {}, "accuracy", "max"),
        (BASE, {"metric": "accuracy"}, "accuracy", "max"),
        (BASE, {"metric": "loss"}, "loss", "min"),
        (BASE, {"metric": "accuracy", "mode": "min"}, "accuracy", "min"),
        (REGRESSION, {}, "mae", "min"),
        (REGRESSION, {"metric": "metric"}, "mae", "min"),
        (REGRESSION, {"metric": "mae"}, "mae", "min"),
        (REGRESSION, {"metric": "loss"}, "loss", "min"),
        (REGRESSION, {"metric": "mae", "mode": "max"}, "mae", "max"),
    ],
)
def test_the_objective_follows_the_metric_and_its_direction(
    base: dict[str, Any], best: dict[str, Any], metric: str, mode: str
) -> None:
    spec = parse_sweep({"base": base, "best": best})
    objective = sweep_objective(spec, expand(spec))
    assert (objective.metric, objective.mode) == (metric, mode)
    assert objective.higher_is_better is (mode == "max")


def test_a_regression_sweep_ranks_by_its_error_by_default_and_writes_it_in_sweep_json(tmp_path: Path) -> None:
    spec = regression_sweep(seeds=[1, 2])
    (tmp_path / MANIFEST).write_text(json.dumps(manifest(spec, expand(spec))))
    objective = read_sweep_folder(tmp_path).objective
    assert objective is not None and (objective.metric, objective.higher_is_better) == ("mae", False)


@pytest.mark.parametrize(
    ("base", "best", "message"),
    [
        (BASE, {"metric": "mae"}, "mae does not apply: cell base measures accuracy (simulation.metric)"),
        (REGRESSION, {"metric": "accuracy"}, "accuracy does not apply: cell base measures mae (simulation.metric)"),
        (REGRESSION, {"metric": "mse"}, "mse does not apply: cell base measures mae"),
    ],
)
def test_best_metric_must_be_the_cells_metric(base: dict[str, Any], best: dict[str, Any], message: str) -> None:
    with pytest.raises(SweepError) as raised:
        expand(parse_sweep({"base": base, "best": best}), source="s.yaml")
    ((where, text),) = raised.value.errors
    assert where == "best.metric" and text.startswith(message)
    assert "or loss" in text and "best.metric" in str(raised.value)


def test_cells_of_different_metrics_need_a_common_objective() -> None:
    metric_axis = {"path": "simulation.metric", "values": ["mae", "mse"]}
    with pytest.raises(SweepError) as raised:
        expand(regression_sweep(axes=[metric_axis]))
    ((where, text),) = raised.value.errors
    assert where == "best.metric" and text.startswith("the cells measure different metrics (mae, mse")
    mixed = regression_sweep(axes=[metric_axis], best={"metric": "mse"})
    with pytest.raises(SweepError, match=r"mse does not apply: cell metric-mae measures mae"):
        expand(mixed)
    by_loss = regression_sweep(axes=[metric_axis], best={"metric": "loss"})
    assert sweep_objective(by_loss, expand(by_loss)).metric == "loss"


def test_load_sweep_reads_the_base_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("simulation: {dataset: digits, num_rounds: 4}\n")
    (tmp_path / "by-name.yaml").write_text("base: base.yaml\nseeds: [1]\n")
    (tmp_path / "by-import.yaml").write_text("base: {import: base.yaml, simulation: {num_rounds: 2}}\n")
    assert load_sweep(tmp_path / "by-name.yaml").base.simulation.num_rounds == 4
    loaded = load_sweep(tmp_path / "by-import.yaml").base.simulation
    assert (loaded.dataset, loaded.num_rounds) == ("digits", 2)


# --- The sweep's folder ---


def test_sweep_runs_lists_the_cells_with_their_values_and_folders(tmp_path: Path) -> None:
    spec = sweep(axes=[ALPHA], seeds=[1, 2])
    (tmp_path / MANIFEST).write_text(json.dumps(manifest(spec, expand(spec))))
    cells = sweep_runs(tmp_path)
    assert [cell.name for cell in cells] == ["alpha-0p1-seed-1", "alpha-0p1-seed-2", "alpha-1-seed-1", "alpha-1-seed-2"]
    assert cells[2].values == {"data.non_iid_partitions": 1.0, "simulation.seed": 1}
    assert cells[2].path == tmp_path / "alpha-1-seed-1" and cells[2].results == cells[2].path / "results.json"
    assert read_sweep_folder(tmp_path).labels == {"data.non_iid_partitions": "alpha", "simulation.seed": "seed"}
    with pytest.raises(ValueError, match="not a sweep folder"):
        sweep_runs(tmp_path / "nothing")


ROOT = Path(__file__).resolve().parents[2]


def test_the_example_and_the_docs_grid_are_valid_sweeps() -> None:
    example = load_sweep(ROOT / "examples" / "sweep.yaml")
    cells = expand(example, check=plugin_errors)
    assert len(cells) == 18 and example.parallelism == 2
    assert example.base.simulation.output_folder == "output/sweep"
    text = (ROOT / "docs" / "sweeps.md").read_text()
    documented = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    cells = expand(parse_sweep(documented), check=plugin_errors)
    assert len(cells) == 36 and cells[0].name == "sel-random-alpha-0p1-opt-0p1-0p9-seed-1"


def test_a_simulation_spec_given_as_a_sweep_says_so_first() -> None:
    with pytest.raises(SweepError) as refused:
        parse_sweep(BASE)
    where, message = refused.value.errors[0]
    assert where == "<root>"
    assert message.startswith("this is a simulation spec, not a sweep: a sweep file holds base:")
    assert [where for where, _ in refused.value.errors[1:]] == ["simulation", "devices"]  # unknown keys, as before


def test_a_sweep_file_with_a_mistake_gets_no_such_hint() -> None:
    with pytest.raises(SweepError) as refused:
        parse_sweep({"base": BASE, "axes": [SELECTION], "parallelism": 0})
    assert [where for where, _ in refused.value.errors] == ["parallelism"]


@pytest.mark.parametrize("fields", [{"parallelism": True}, {"seeds": [1, True]}])
def test_a_boolean_is_no_count_or_seed(fields: dict[str, Any]) -> None:
    # Lax parsing read `parallelism: true` as 1 and a seed `true` as seed 1.
    with pytest.raises(SweepError, match="Input should be a number, not a boolean"):
        sweep(**fields)
