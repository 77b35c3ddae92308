"""`dynamic_sampling` (Ji et al. 2020): many devices first, then fewer and fewer as the model generalises."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import number, take_params
from feles.strategies.selection.base import SELECTORS, SelectionContext, Selector

DEFAULTS = {"decay": 0.1}


@SELECTORS.register("dynamic_sampling")
class DynamicSamplingSelector(Selector):
    """A uniform sample of max(1, floor(K_0 exp(-decay * round))) devices, K_0 = k of the available devices."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params("selection dynamic_sampling", params, DEFAULTS))
        self.decay = number("selection dynamic_sampling", "decay", self.params["decay"], minimum=0.0)

    def count(self, context: SelectionContext) -> int:
        # Ji et al.'s sampling rate K_t = K_0 / exp(beta t), never below one device.
        decayed = math.floor(context.size * math.exp(-self.decay * context.round) + 1e-9)
        return min(max(1, decayed), len(context.available))

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        chosen = context.rng.choice(context.available, size=self.count(context), replace=False)
        return np.sort(chosen)
