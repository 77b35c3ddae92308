"""Early checks of a spec's plug-ins: names that resolve and parameters they accept, as (field path, message)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from feles.algorithms import AGGREGATIONS, algorithm_params, build_server, resolve_algorithm
from feles.config import SimulationSpec
from feles.registry import UnknownPluginError
from feles.strategies import LOCAL_DATA_OPTIMIZERS, SELECTORS, UPDATE_OPTIMIZERS


def _attempt(errors: list[tuple[str, str]], path: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except (UnknownPluginError, ValueError, TypeError) as error:
        errors.append((path, str(error)))
        return None


def plugin_errors(spec: SimulationSpec) -> list[tuple[str, str]]:
    """Problems the schema cannot see: unknown algorithm, aggregation or strategy names and bad parameters.

    Builds each plug-in the orchestrator and workers would build (no data, no model), so `feles validate`
    and the orchestrator's start can report them with their field paths instead of failing mid-run.
    """
    errors: list[tuple[str, str]] = []
    config = spec.algorithms
    algorithm = _attempt(
        errors, "algorithms.federated_algorithm", lambda: resolve_algorithm(config.federated_algorithm)
    )
    aggregation = config.fit.aggregation
    known_aggregation = aggregation is None or _attempt(
        errors, "algorithms.fit.aggregation", lambda: AGGREGATIONS.get(aggregation)
    )
    params_ok = (
        algorithm is not None
        and known_aggregation
        and _attempt(errors, "algorithms.algorithm_params", lambda: algorithm_params(config)) is not None
    )
    if params_ok:
        _attempt(errors, "algorithms", lambda: build_server(config, num_devices=spec.devices.num))
    for phase in ("fit", "eval"):
        section = getattr(config, phase)
        for kind, registry, name, params in (
            ("selection", SELECTORS, section.selection, section.selection_params),
            ("update", UPDATE_OPTIMIZERS, section.update, section.update_params),
            ("data", LOCAL_DATA_OPTIMIZERS, section.data, section.data_params),
        ):
            plugin = _attempt(
                errors, f"algorithms.{phase}.{kind}", lambda registry=registry, name=name: registry.get(name)
            )
            if plugin is not None:
                _attempt(
                    errors, f"algorithms.{phase}.{kind}_params", lambda plugin=plugin, params=params: plugin(params)
                )
    return errors
