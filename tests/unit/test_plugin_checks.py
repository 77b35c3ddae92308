"""feles.plugin_checks: a spec's plug-in names and parameters checked before a run, with field paths."""

from __future__ import annotations

from typing import Any

from feles.config import SimulationSpec
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
                    "fit": {"selection": "best_ips", "selection_params": {"x": 1}, "update": "fastest"},
                    "eval": {"data": "random", "data_params": {"shuffle": True}},
                }
            )
        )
    )
    assert set(errors) == {
        "algorithms.algorithm_params",
        "algorithms.fit.selection_params",
        "algorithms.fit.update",
        "algorithms.eval.data_params",
    }
    assert "unknown parameter(s) muu (allowed: mu)" in errors["algorithms.algorithm_params"]
    assert "unknown update strategy 'fastest'" in errors["algorithms.fit.update"]


def test_unknown_algorithm_and_aggregation() -> None:
    errors = dict(plugin_errors(spec({"federated_algorithm": "fedsgd", "fit": {"aggregation": "median"}})))
    assert "unknown federated algorithm 'fedsgd'" in errors["algorithms.federated_algorithm"]
    assert "unknown aggregation strategy 'median'" in errors["algorithms.fit.aggregation"]


def test_server_construction_problems() -> None:
    errors = dict(plugin_errors(spec({"federated_algorithm": "fednova", "optimizer": "adam"})))
    assert "optimizer 'adam'" in errors["algorithms"]
    errors = dict(plugin_errors(spec({"federated_algorithm": "feddyn", "algorithm_params": {"num_devices": 5}})))
    assert "differs from devices.num = 20" in errors["algorithms"]
