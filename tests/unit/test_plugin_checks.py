"""feles.plugin_checks: a spec's plug-in names and parameters checked before a run, with field paths."""

from __future__ import annotations

from typing import Any

import pytest

from feles.config import SimulationSpec, SpecError, parse_spec
from feles.plugin_checks import plugin_errors


def spec(algorithms: dict[str, Any], devices: int = 20) -> SimulationSpec:
    return SimulationSpec.model_validate({"algorithms": algorithms, "devices": {"num": devices}})


def test_a_valid_spec_has_no_errors() -> None:
    assert plugin_errors(SimulationSpec()) == []
    assert plugin_errors(spec({"federated_algorithm": "scaffold", "fit": {"selection": "loss_and_fairness"}})) == []


def test_errors_name_the_field() -> None:
    errors = dict(
        plugin_errors(
            spec(
                {
                    "federated_algorithm": "fedprox",
                    "algorithm_params": {"muu": 1},
                    "fit": {"selection": "best_ips", "selection_params": {"x": 1}},
                    "eval": {"data": "random", "data_params": {"shuffle": True}},
                }
            )
        )
    )
    assert set(errors) == {
        "algorithms.algorithm_params",
        "algorithms.fit.selection_params",
        "algorithms.eval.data_params",
    }
    assert "unknown parameter(s) muu (allowed: mu)" in errors["algorithms.algorithm_params"]


def test_unknown_algorithm_and_aggregation() -> None:
    # Unknown built-in names are refused by the schema itself (issue 12.8), before any plug-in check.
    with pytest.raises(SpecError) as info:
        parse_spec(
            {"algorithms": {"federated_algorithm": "fedsgd", "fit": {"aggregation": "median", "update": "fastest"}}}
        )
    errors = dict(info.value.errors)
    assert "unknown federated algorithm 'fedsgd'" in errors["algorithms.federated_algorithm"]
    assert "unknown aggregation strategy 'median'" in errors["algorithms.fit.aggregation"]
    assert "unknown update strategy 'fastest'" in errors["algorithms.fit.update"]


def test_server_construction_problems() -> None:
    errors = dict(plugin_errors(spec({"federated_algorithm": "fednova", "optimizer": "adam"})))
    assert "optimizer 'adam'" in errors["algorithms"]
    errors = dict(plugin_errors(spec({"federated_algorithm": "feddyn", "algorithm_params": {"num_devices": 5}})))
    assert "differs from devices.num = 20" in errors["algorithms"]
