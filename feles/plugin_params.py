"""Validation of a plug-in's free-form parameters (strategies' and algorithms') against the keys it knows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class PluginParamsError(ValueError):
    """A plug-in parameter that is unknown or out of range; the message names it."""


#: The name this error had when only strategies used it; tests and plug-ins written against it still catch it.
StrategyParamsError = PluginParamsError


def take_params(owner: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` overridden by `params`; unknown keys are an error naming the owner and the key."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise PluginParamsError(f"{owner}: unknown parameter(s) {', '.join(unknown)} (allowed: {allowed})")
    return {**defaults, **params}


def _is_number(value: object) -> bool:
    # bool is an int subclass, but `decay: true` in YAML is a mistake, not 1.0.
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(owner: str, key: str, value: Any, *, minimum: float | None = None, positive: bool = False) -> float:
    """`value` as a float; PluginParamsError naming owner and key unless it is a number in range."""
    bound = "> 0" if positive else (f">= {minimum}" if minimum is not None else None)
    out_of_range = (positive and _is_number(value) and value <= 0) or (
        minimum is not None and _is_number(value) and value < minimum
    )
    if not _is_number(value) or out_of_range:
        rule = f"a number {bound}" if bound else "a number"
        raise PluginParamsError(f"{owner}: {key} must be {rule}, got {value!r}")
    return float(value)


def optional_number(owner: str, key: str, value: Any, *, positive: bool = False) -> float | None:
    """None, or a number checked like `number` (limits and budgets that may be switched off)."""
    return None if value is None else number(owner, key, value, minimum=0.0, positive=positive)


def integer(owner: str, key: str, value: Any, *, minimum: int) -> int:
    """`value` as an int >= minimum; PluginParamsError naming owner and key otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PluginParamsError(f"{owner}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def optional_integer(owner: str, key: str, value: Any, *, minimum: int) -> int | None:
    return None if value is None else integer(owner, key, value, minimum=minimum)


def boolean(owner: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PluginParamsError(f"{owner}: {key} must be true or false, got {value!r}")
    return value


def choice(owner: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise PluginParamsError(f"{owner}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    return value
