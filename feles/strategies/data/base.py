"""The local data interface, run by the worker for each job."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.registry import Registry


class LocalDataOptimizer(ABC):
    """A local data strategy; `params` are the phase's `data_params`."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    @abstractmethod
    def choose(self, num_available: int, num_examples: int, rng: np.random.Generator) -> np.ndarray:
        """Positions (0..num_available-1) of the device's examples used by the job."""

    def takes_all(self, num_available: int, num_examples: int) -> bool:
        """True when `choose` returns every position in order (0..num_available-1) whatever its generator; the
        worker then builds none. False unless a strategy knows it."""
        return False


LOCAL_DATA_OPTIMIZERS: Registry[type[LocalDataOptimizer]] = Registry("local data strategy", base=LocalDataOptimizer)
