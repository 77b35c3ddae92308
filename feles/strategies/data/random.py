"""`random`: a uniform sample, without replacement, of the device's examples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import take_params
from feles.strategies.data.base import LOCAL_DATA_OPTIMIZERS, LocalDataOptimizer


@LOCAL_DATA_OPTIMIZERS.register("random")
class RandomLocalData(LocalDataOptimizer):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params("data random", params, {}))

    def choose(self, num_available: int, num_examples: int, rng: np.random.Generator) -> np.ndarray:
        count = min(num_examples, num_available)
        return np.sort(rng.choice(num_available, size=count, replace=False))

    def takes_all(self, num_available: int, num_examples: int) -> bool:
        return num_examples >= num_available  # a sorted sample of every position is all of them in order
