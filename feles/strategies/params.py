"""Validation of a strategy's free-form parameters against the keys it knows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class StrategyParamsError(ValueError):
    """A strategy parameter that is unknown or out of range; the message names it."""


def take_params(owner: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` overridden by `params`; unknown keys are an error naming the owner and the key."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise StrategyParamsError(f"{owner}: unknown parameter(s) {', '.join(unknown)} (allowed: {allowed})")
    return {**defaults, **params}
