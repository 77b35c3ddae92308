"""Local data optimizers: which of its examples a device trains on in a job."""

from feles.strategies.data import random as _random  # noqa: F401  (registers "random")
from feles.strategies.data.base import LOCAL_DATA_OPTIMIZERS, LocalDataOptimizer

__all__ = ["LOCAL_DATA_OPTIMIZERS", "LocalDataOptimizer"]
