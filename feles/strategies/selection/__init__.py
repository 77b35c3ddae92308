"""Selection strategies: which available devices take part in a round."""

from feles.strategies.selection import random as _random  # noqa: F401  (registers "random")
from feles.strategies.selection.base import SELECTORS, DeviceView, SelectionContext, Selector, selection_size

__all__ = ["SELECTORS", "DeviceView", "SelectionContext", "Selector", "selection_size"]
