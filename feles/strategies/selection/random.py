"""`random`: a uniform sample of the available devices (McMahan et al. 2017)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import take_params
from feles.strategies.selection.base import SELECTORS, SelectionContext, Selector


@SELECTORS.register("random")
class RandomSelector(Selector):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params("selection random", params, {}))

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        count = context.size
        chosen = context.rng.choice(context.available, size=count, replace=False)
        return np.sort(chosen)
