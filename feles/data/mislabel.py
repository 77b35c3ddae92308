"""Label noise: a fixed fraction of labels replaced by a different, uniformly drawn class."""

from __future__ import annotations

import numpy as np


def mislabel(labels: np.ndarray, fraction: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of `labels` in which round(fraction * n) random positions hold another, uniform class."""
    if not 0 <= fraction < 1:
        raise ValueError(f"mislabelling fraction must be in [0, 1), got {fraction!r}")
    noisy = np.array(labels, copy=True)
    count = round(fraction * len(noisy))
    if count == 0:
        return noisy
    if num_classes < 2:
        raise ValueError(f"mislabelling needs at least 2 classes, got {num_classes}")
    positions = rng.choice(len(noisy), size=count, replace=False)
    # A shift in 1..num_classes-1 modulo num_classes is uniform over exactly the other classes.
    shifts = rng.integers(1, num_classes, size=count)
    noisy[positions] = (noisy[positions] + shifts) % num_classes
    return noisy
