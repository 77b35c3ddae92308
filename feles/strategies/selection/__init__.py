"""Selection strategies: which available devices take part in a round."""

# Importing the modules registers the built-ins.
from feles.strategies.selection import (  # noqa: F401
    best,
    best_round_time,
    best_time_expected,
    budgeted_fairness_rotation,
    budgeted_time_rotation,
    dynamic_sampling,
    limited_consumption,
    limited_time,
    loss_and_fairness,
    random,
    ucb_cs,
)
from feles.strategies.selection.base import SELECTORS, DeviceView, SelectionContext, Selector, selection_size

__all__ = ["SELECTORS", "DeviceView", "SelectionContext", "Selector", "selection_size"]
