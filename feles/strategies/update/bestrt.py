"""`bestrt`: epochs proportional to the device's speed, so that slow devices do not stretch the round."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import take_params
from feles.strategies.estimates import planned_examples
from feles.strategies.update.base import UPDATE_OPTIMIZERS, LocalWork, UpdateContext, UpdateOptimizer


@UPDATE_OPTIMIZERS.register("bestrt")
class BestRoundTimeUpdate(UpdateOptimizer):
    """E_i = max(1, floor(E * ips_i / max ips of the selected devices)); B and N from the phase's params.

    The reference is the fastest selected device, so no device runs more than E epochs. The original FELES
    meant the same but planned before selecting, so its reference was device -1 (the last one) and devices
    faster than that one got more than E epochs.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params("update bestrt", params, {}))

    def plan(self, context: UpdateContext) -> LocalWork:
        selected = context.selected
        n = len(selected)
        ips = context.devices.ips[selected]
        fastest = float(ips.max()) if n else 1.0
        # The fastest device gets the configured maximum; the others as many epochs as fit in its time.
        epochs = np.maximum(1, np.floor(context.params.epochs * ips / fastest + 1e-9)).astype(np.int64)
        return LocalWork(
            devices=selected,
            epochs=epochs,
            batch_size=np.full(n, context.params.batch_size, dtype=np.int64),
            num_examples=planned_examples(context.params, context.devices.data_sizes[selected]),
        )
