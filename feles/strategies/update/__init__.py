"""Global update optimizers: how much local work (E, B, N) each selected device does."""

# Importing the modules registers the built-ins.
from feles.strategies.update import bestrt, equal_computation_time, static, uniform  # noqa: F401
from feles.strategies.update.base import UPDATE_OPTIMIZERS, LocalWork, UpdateContext, UpdateOptimizer

__all__ = ["UPDATE_OPTIMIZERS", "LocalWork", "UpdateContext", "UpdateOptimizer"]
