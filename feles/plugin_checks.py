"""Early checks of a spec's plug-ins: names that resolve and parameters they accept, as (field path, message).

Trust: a built-in plug-in is FELES's own code, so it is built here to check its parameters. An import path
(`package.module:Name`) is the user's code: it is imported and checked to name a subclass of the right base
class (or a marked factory), and nothing it names is ever called here, so `feles validate` runs no plug-in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from feles.algorithms import AGGREGATIONS, ALGORITHMS, algorithm_params, build_server, resolve_algorithm
from feles.config import SimulationSpec
from feles.data import DATASETS, DatasetSource, task_errors
from feles.models import INITIALIZERS, MODELS
from feles.registry import Registry, UnknownPluginError
from feles.strategies import LOCAL_DATA_OPTIMIZERS, SELECTORS, UPDATE_OPTIMIZERS


def _attempt(errors: list[tuple[str, str]], path: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except (UnknownPluginError, ValueError, TypeError) as error:
        errors.append((path, str(error)))
    except Exception as error:  # a plug-in module that fails to import (OSError, ...) is an error of the spec
        errors.append((path, f"{type(error).__name__}: {error}"))
    return None


def plugin_errors(spec: SimulationSpec) -> list[tuple[str, str]]:
    """Problems the schema cannot see: unknown plug-in names and bad parameters of built-in plug-ins.

    Builds each built-in plug-in the orchestrator and workers would build (no data, no model), so `feles validate`
    and the orchestrator's start can report them with their field paths instead of failing mid-run. Import paths
    are imported and type-checked only (see the module's docstring).
    """
    errors: list[tuple[str, str]] = []
    simulation = spec.simulation
    for path, registry, name in (
        ("simulation.dataset", DATASETS, simulation.dataset),
        ("simulation.model", MODELS, simulation.model),
        ("simulation.initializer", INITIALIZERS, simulation.initializer),
    ):
        if name is not None:
            plugin = _attempt(errors, path, lambda registry=registry, name=name: registry.get(name))
            if registry is DATASETS and isinstance(plugin, type) and issubclass(plugin, DatasetSource):
                errors += task_errors(name, plugin.task, spec)
    config = spec.algorithms
    user_code = _is_user_code(ALGORITHMS, config.federated_algorithm) or (
        config.fit.aggregation is not None and _is_user_code(AGGREGATIONS, config.fit.aggregation)
    )
    algorithm = _attempt(
        errors, "algorithms.federated_algorithm", lambda: resolve_algorithm(config.federated_algorithm)
    )
    aggregation = config.fit.aggregation
    known_aggregation = aggregation is None or _attempt(
        errors, "algorithms.fit.aggregation", lambda: AGGREGATIONS.get(aggregation)
    )
    params_ok = (
        not user_code
        and algorithm is not None
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
            if plugin is not None and not _is_user_code(registry, name):
                _attempt(
                    errors, f"algorithms.{phase}.{kind}_params", lambda plugin=plugin, params=params: plugin(params)
                )
    return errors


def _is_user_code(registry: Registry[Any], name: str) -> bool:
    return registry.is_import_path(name)
