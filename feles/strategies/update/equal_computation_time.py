"""`equal_computation_time`: local work sized so that every device computes for about the same time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from feles.plugin_params import choice, number, take_params
from feles.strategies.estimates import planned_examples
from feles.strategies.update.base import UPDATE_OPTIMIZERS, LocalWork, UpdateContext, UpdateOptimizer

DEFAULTS: dict[str, Any] = {"computation_time": 0.15, "vary": "epochs"}
OWNER = "update equal_computation_time"


@UPDATE_OPTIMIZERS.register("equal_computation_time")
class EqualComputationTimeUpdate(UpdateOptimizer):
    """Target iterations I_i = computation_time * ips_i; `vary` picks which of E, B, N absorbs them.

    epochs: E_i = floor(I_i / ceil(N/B)); batch_size: B_i = ceil(N / floor(I_i / E));
    num_examples: N_i = floor(I_i / E) * B. Each stays >= 1 (and N, B <= the device's data), so a device
    too slow for even one step computes a little longer than the target. The default target, 0.15 s, is the
    original FELES's; its E = int(0.15 * ips * B / N) could be 0, a job that trains nothing.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(OWNER, params, DEFAULTS))
        self.target = number(OWNER, "computation_time", self.params["computation_time"], positive=True)
        self.vary = choice(OWNER, "vary", self.params["vary"], ("epochs", "batch_size", "num_examples"))

    def plan(self, context: UpdateContext) -> LocalWork:
        selected = context.selected
        n = len(selected)
        phase = context.params
        sizes = context.devices.data_sizes[selected].astype(np.int64)
        iterations = np.floor(self.target * context.devices.ips[selected] + 1e-9).astype(np.int64)
        epochs = np.full(n, phase.epochs, np.int64)
        batch = np.full(n, phase.batch_size, np.int64)
        examples = planned_examples(phase, sizes)
        if self.vary == "epochs":
            steps_per_epoch = -(-examples // batch)
            epochs = np.maximum(1, iterations // steps_per_epoch)
        elif self.vary == "batch_size":
            steps_per_epoch = np.maximum(1, iterations // epochs)
            batch = np.clip(-(-examples // steps_per_epoch), 1, np.maximum(examples, 1))
        else:
            steps_per_epoch = np.maximum(1, iterations // epochs)
            examples = np.clip(steps_per_epoch * batch, 1, sizes)
        return LocalWork(devices=selected, epochs=epochs, batch_size=batch, num_examples=examples.astype(np.int64))
