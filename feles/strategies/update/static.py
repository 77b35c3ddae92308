"""`static`: the phase's epochs, batch size and examples for every device (capped by its data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import take_params
from feles.strategies.update.base import UPDATE_OPTIMIZERS, LocalWork, UpdateContext, UpdateOptimizer


@UPDATE_OPTIMIZERS.register("static")
class StaticUpdate(UpdateOptimizer):
    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params("update static", params, {}))

    def plan(self, context: UpdateContext) -> LocalWork:
        n = len(context.selected)
        sizes = context.devices.data_sizes[context.selected]
        wanted = context.params.num_examples
        examples = sizes if wanted is None else np.minimum(sizes, wanted)
        return LocalWork(
            devices=context.selected,
            epochs=np.full(n, context.params.epochs, dtype=np.int64),
            batch_size=np.full(n, context.params.batch_size, dtype=np.int64),
            num_examples=examples.astype(np.int64),
        )
