"""Global update optimizers: how much local work (E, B, N) each selected device does."""

from feles.strategies.update import static as _static  # noqa: F401  (registers "static")
from feles.strategies.update.base import UPDATE_OPTIMIZERS, LocalWork, UpdateContext, UpdateOptimizer

__all__ = ["UPDATE_OPTIMIZERS", "LocalWork", "UpdateContext", "UpdateOptimizer"]
