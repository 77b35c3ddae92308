"""Pluggable strategies: device selection, global update optimizers (E, B, N) and local data choice."""

from feles.strategies.data import LOCAL_DATA_OPTIMIZERS, LocalDataOptimizer
from feles.strategies.selection import SELECTORS, DeviceView, SelectionContext, Selector
from feles.strategies.update import UPDATE_OPTIMIZERS, LocalWork, UpdateContext, UpdateOptimizer

__all__ = [
    "LOCAL_DATA_OPTIMIZERS",
    "SELECTORS",
    "UPDATE_OPTIMIZERS",
    "DeviceView",
    "LocalDataOptimizer",
    "LocalWork",
    "SelectionContext",
    "Selector",
    "UpdateContext",
    "UpdateOptimizer",
]
