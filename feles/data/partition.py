"""Partitioning of a labelled train set into devices of given sizes: IID or Dirichlet label skew."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Partitioner(ABC):
    """Splits train indices into devices; device i gets exactly sizes[i] indices (int64)."""

    @abstractmethod
    def split(self, labels: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]: ...


class IidPartitioner(Partitioner):
    """Uniformly random examples: devices are disjoint while the data suffices."""

    def split(self, labels: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        labels, sizes = _check(labels, sizes)
        stream = _pool_stream(np.arange(len(labels), dtype=np.int64), int(sizes.sum()), rng)
        return np.split(stream, np.cumsum(sizes)[:-1])


class DirichletPartitioner(Partitioner):
    """Label skew of Hsu, Qi, Brown 2019: device class shares q_i ~ Dir(alpha * prior)."""

    def __init__(self, alpha: float) -> None:
        if not alpha > 0:
            raise ValueError(f"Dirichlet alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def split(self, labels: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        labels, sizes = _check(labels, sizes)
        classes, class_sizes = np.unique(labels, return_counts=True)
        counts = self.class_counts(class_sizes / len(labels), sizes, rng)
        flat = np.empty(int(sizes.sum()), dtype=np.int64)
        # Device slices of `flat` hold their examples grouped by class; class c fills its part of each slice.
        device_starts = np.cumsum(sizes) - sizes
        class_starts = device_starts[:, None] + np.cumsum(counts, axis=1) - counts
        for column, label in enumerate(classes):
            pool = np.flatnonzero(labels == label).astype(np.int64)
            stream = _pool_stream(pool, int(counts[:, column].sum()), rng)
            flat[_run_positions(class_starts[:, column], counts[:, column])] = stream
        return np.split(_shuffle_within_devices(flat, sizes, rng), np.cumsum(sizes)[:-1])

    def class_counts(self, prior: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per device (rows) and class (columns) example counts: Multinomial(sizes[i], q_i)."""
        shares = rng.gamma(self.alpha * prior, size=(len(sizes), len(prior)))
        totals = shares.sum(axis=1)
        # For tiny alpha every gamma draw may underflow to 0; Dir(alpha * p) then tends to a single class
        # drawn with probability p, which is what those rows get.
        empty = totals == 0
        if empty.any():
            picked = rng.choice(len(prior), size=int(empty.sum()), p=prior)
            shares[empty] = np.eye(len(prior))[picked]
            totals[empty] = 1.0
        return rng.multinomial(sizes, shares / totals[:, None])


def partitioner_for(alpha: float) -> Partitioner:
    """IID for alpha == 0 (the original FELES convention), Dirichlet label skew for alpha > 0."""
    if alpha == 0:
        return IidPartitioner()
    return DirichletPartitioner(alpha)


def _check(labels: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    sizes = np.asarray(sizes, dtype=np.int64)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if sizes.ndim != 1 or len(sizes) == 0 or (sizes < 0).any():
        raise ValueError("sizes must be a non-empty 1-D array of non-negative counts")
    return labels, sizes


def _pool_stream(pool: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """`length` draws without replacement from `pool`, refilled with a fresh shuffle whenever it runs out."""
    refills = -(-length // len(pool))
    if refills == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([rng.permutation(pool) for _ in range(refills)])[:length]


def _run_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(starts[i], starts[i] + lengths[i]) over i, without a Python loop."""
    total = int(lengths.sum())
    run_offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - run_offsets, lengths) + np.arange(total, dtype=np.int64)


def _shuffle_within_devices(flat: np.ndarray, sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Devices may use only their first examples, which must then not be all of one class.
    device_of = np.repeat(np.arange(len(sizes)), sizes)
    return flat[np.lexsort((rng.random(len(flat)), device_of))]
