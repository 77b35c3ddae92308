"""What a training pass over an example costs a worker against an inference pass, learnt from its batches.

The batch rule shares a phase's work out in inference passes over one example (batching.py), a fit job's
examples counting `training_pass_cost` passes each. A constant guess (TRAINING_PASS_COST, 3) left one of two
workers idle for ~20 ms at the end of every round of issue #13's light workload (`mlp_small`, a round of 100
ms to 130 ms): a fit job there costs its worker 4.4 inference passes of training an example, and the encoding,
posting and checking of a model-sized result on top (about 5.6 in all); the CNN's training pass costs 2.2.

Each batch a worker answers gives its wall time, from the lease to the arrival of its results, and the
training and inference passes it held. Least squares fits seconds = a x training + b x inference over the
batches, older ones weighing less (`decay` a batch), and a / b is the cost. Batches that all hold the same
mix of work (one worker taking a whole phase every round) cannot tell a from b: the estimate then stays
where it was. Only the sharing of work depends on it, never a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feles.orchestrator.batching import TRAINING_PASS_COST

#: Below this, 1 - cos^2 of the angle between the batches' training and inference columns, the batches held
#: too nearly the same mix of work to tell the two costs apart.
MIN_SPREAD = 0.05
#: The estimate stays within these bounds, whatever a burst of noise says.
LOWEST_COST, HIGHEST_COST = 0.5, 50.0


@dataclass
class PassCostEstimate:
    """The cost of a training pass in inference passes; `value` until batches of different mixes are seen."""

    value: float = TRAINING_PASS_COST
    #: The weight each batch's predecessors keep when it is added (an effective window of ~10 batches).
    decay: float = 0.9
    # Weighted sums of training x training, training x inference, inference x inference, training x seconds and
    # inference x seconds over the batches seen.
    _sums: list[float] = field(default_factory=lambda: [0.0] * 5, repr=False)

    def observe(self, training_passes: int, inference_passes: int, seconds: float) -> None:
        """Add one batch: the passes of its fit jobs (epochs x examples) and of its other jobs, and its wall time."""
        if seconds <= 0 or training_passes + inference_passes <= 0:
            return
        t, i = float(training_passes), float(inference_passes)
        terms = (t * t, t * i, i * i, t * seconds, i * seconds)
        self._sums = [self.decay * total + term for total, term in zip(self._sums, terms, strict=True)]
        tt, ti, ii, ts, is_ = self._sums
        determinant = tt * ii - ti * ti
        if determinant <= MIN_SPREAD * tt * ii:
            return
        training = (ts * ii - is_ * ti) / determinant
        inference = (is_ * tt - ts * ti) / determinant
        if training > 0 and inference > 0:
            self.value = min(HIGHEST_COST, max(LOWEST_COST, training / inference))
