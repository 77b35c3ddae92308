"""Building an algorithm's halves from the spec's `algorithms` section: name lookup and parameter validation."""

from __future__ import annotations

from typing import Any

from feles.algorithms.aggregation import AGGREGATIONS, default_aggregation
from feles.algorithms.base import ALGORITHMS, ClientAlgorithm, FederatedAlgorithm, ServerAlgorithm, ServerSetup
from feles.config import AlgorithmsSection
from feles.plugin_params import PluginParamsError, take_params


def resolve_algorithm(name: str) -> type[FederatedAlgorithm]:
    """The algorithm registered as `name` (or imported from `pkg.mod:Class`)."""
    return ALGORITHMS.get(name)


def algorithm_params(config: AlgorithmsSection) -> dict[str, Any]:
    """`algorithm_params` over the defaults of the algorithm and its aggregation; unknown keys are errors."""
    algorithm = resolve_algorithm(config.federated_algorithm)
    aggregation_name = config.fit.aggregation or default_aggregation(algorithm)
    aggregation = AGGREGATIONS.get(aggregation_name)
    if algorithm.param_defaults is None:
        return {**aggregation.param_defaults, **config.algorithm_params}
    owner = f"algorithms.algorithm_params of {config.federated_algorithm!r} with aggregation {aggregation_name!r}"
    defaults = {**aggregation.param_defaults, **algorithm.param_defaults}
    values = take_params(owner, config.algorithm_params, defaults)
    validate = getattr(algorithm, "validate", None)
    if validate is not None:
        try:
            validate(values)
        except ValueError as error:
            raise PluginParamsError(f"{owner}: {error}") from None
    return values


def build_server(config: AlgorithmsSection, num_devices: int | None = None) -> ServerAlgorithm:
    """The orchestrator half the spec's `algorithms` section asks for; SCAFFOLD and FedDyn need `num_devices`."""
    algorithm = resolve_algorithm(config.federated_algorithm)
    return algorithm.server(algorithm_params(config), ServerSetup(config, num_devices))


def build_client(config: AlgorithmsSection) -> ClientAlgorithm:
    """The worker half the spec's `algorithms` section asks for."""
    return resolve_algorithm(config.federated_algorithm).client(algorithm_params(config))
