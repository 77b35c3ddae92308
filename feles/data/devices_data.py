"""Which examples each simulated device holds: train examples with (possibly noisy) labels, and test examples.

A device trains on its train partition and evaluates (the eval phase) on its own test partition: as many
test examples as it holds train examples, with the label mix of its train data (the original FELES drew
each device's evaluation examples from the test split too).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import torch

from feles.data.dataset import FederatedDataset
from feles.data.mislabel import mislabel
from feles.data.partition import partitioner_for
from feles.seeding import numpy_rng


class DeviceLabels(Sequence[torch.Tensor]):
    """device -> int64 labels of its examples after mislabelling (float targets for regression), computed on access.

    Lazy because with 100,000 devices a run touches only the few it selects; every access gives equal tensors.
    """

    def __init__(
        self,
        train_labels: np.ndarray,
        indices: list[np.ndarray],
        mislabelling: float,
        num_classes: int,
        seed: int,
        repetition: int,
    ) -> None:
        self._train_labels = train_labels
        self._indices = indices
        self._mislabelling = mislabelling
        self._num_classes = num_classes
        self._seed = seed
        self._repetition = repetition

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, device: int) -> torch.Tensor: ...

    @overload
    def __getitem__(self, device: slice) -> list[torch.Tensor]: ...

    def __getitem__(self, device: int | slice) -> torch.Tensor | list[torch.Tensor]:
        if isinstance(device, slice):
            return [self._labels_of(d) for d in range(len(self))[device]]
        return self._labels_of(range(len(self))[device])

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self._labels_of(d) for d in range(len(self)))

    @property
    def regression(self) -> bool:
        """Whether the labels are a regression dataset's float targets."""
        return bool(np.issubdtype(self._train_labels.dtype, np.floating))

    def counts(self, num_classes: int) -> np.ndarray:
        """(devices, classes): examples of each class per device, vectorised when no label is changed.

        A regression target has no classes: (devices, 0).
        """
        if self.regression:
            return np.zeros((len(self._indices), 0), dtype=np.int64)
        if self._mislabelling > 0:
            return np.stack([np.bincount(labels.numpy(), minlength=num_classes) for labels in self])
        lengths = np.array([len(part) for part in self._indices], dtype=np.int64)
        labels = self._train_labels[np.concatenate(self._indices)] if lengths.sum() else np.zeros(0, np.int64)
        cells = np.repeat(np.arange(len(lengths)), lengths) * num_classes + labels
        return np.bincount(cells, minlength=len(lengths) * num_classes).reshape(len(lengths), num_classes)

    def _labels_of(self, device: int) -> torch.Tensor:
        labels = self._train_labels[self._indices[device]]
        if self.regression:
            return torch.from_numpy(labels)
        if self._mislabelling > 0:
            rng = numpy_rng(self._seed, "mislabel", self._repetition, device)
            labels = mislabel(labels, self._mislabelling, self._num_classes, rng)
        return torch.from_numpy(np.asarray(labels, dtype=np.int64))


#: Devices whose test partition a DeviceTestIndices keeps once drawn (all of them are dropped when it is full).
CACHED_TEST_PARTITIONS = 4096


class DeviceTestIndices(Sequence[np.ndarray]):
    """device -> indices into the test split of its evaluation examples, computed on access (like DeviceLabels).

    Device d gets exactly as many test examples as it has train examples: from its own natural test
    partition when the dataset has one (a device federated by nature keeps its own distribution), else
    from the test examples of each class, as many per class as its train data has (true labels), so a
    non-IID device evaluates on its own label mix. Labels that are not classes (regression) are drawn
    uniformly. A pool with fewer examples than needed is used up and drawn again, reshuffled.
    """

    def __init__(
        self,
        train_labels: np.ndarray,
        test_labels: np.ndarray,
        train_indices: list[np.ndarray],
        natural_test: list[np.ndarray] | None,
        seed: int,
        repetition: int,
    ) -> None:
        self._train_labels = train_labels
        self._train_indices = train_indices
        self._natural_test = natural_test
        self._seed = seed
        self._repetition = repetition
        self._everything = np.arange(len(test_labels), dtype=np.int64)
        self._by_class: dict[int, np.ndarray] | None = None
        # Drawing a device's partition permutes whole class pools (0.17 ms for a device of 600 examples, each
        # time the device evaluates): the last CACHED_TEST_PARTITIONS devices' partitions are kept.
        self._cache: dict[int, np.ndarray] = {}
        if natural_test is None and np.issubdtype(test_labels.dtype, np.integer):
            order = np.argsort(test_labels, kind="stable")
            classes, starts = np.unique(test_labels[order], return_index=True)
            self._by_class = dict(zip(classes.tolist(), np.split(order.astype(np.int64), starts[1:]), strict=True))

    def __len__(self) -> int:
        return len(self._train_indices)

    @overload
    def __getitem__(self, device: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, device: slice) -> list[np.ndarray]: ...

    def __getitem__(self, device: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(device, slice):
            return [self._indices_of(d) for d in range(len(self))[device]]
        return self._indices_of(range(len(self))[device])

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self._indices_of(d) for d in range(len(self)))

    def _indices_of(self, device: int) -> np.ndarray:
        cached = self._cache.get(device)
        if cached is None:
            if len(self._cache) >= CACHED_TEST_PARTITIONS:
                self._cache.clear()
            cached = self._cache[device] = self._draw_indices(device)
            cached.flags.writeable = False  # shared by every caller
        return cached

    def _draw_indices(self, device: int) -> np.ndarray:
        rng = numpy_rng(self._seed, "test-partition", self._repetition, device)
        size = len(self._train_indices[device])
        if self._natural_test is not None:
            return _draw(np.asarray(self._natural_test[device], dtype=np.int64), size, rng)
        if self._by_class is None:
            return _draw(self._everything, size, rng)
        classes, counts = np.unique(self._train_labels[self._train_indices[device]], return_counts=True)
        parts = [
            _draw(self._by_class.get(label, self._everything), count, rng)
            for label, count in zip(classes.tolist(), counts.tolist(), strict=True)
        ]
        return rng.permutation(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _draw(pool: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` draws from `pool` without replacement, starting over (reshuffled) whenever the pool is used up."""
    if count == 0 or len(pool) == 0:
        return np.empty(0, dtype=np.int64)
    rounds = -(-count // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:count]


@dataclass(frozen=True)
class DevicePartitions:
    """indices: device -> train indices; labels: device -> int64 labels for them (after mislabelling), or the
    float targets of a regression dataset; test_indices: device -> indices into the test split of the examples it
    evaluates on (clean labels)."""

    indices: list[np.ndarray]
    labels: Sequence[torch.Tensor]
    test_indices: Sequence[np.ndarray]

    def label_counts(self, num_classes: int) -> np.ndarray:
        """(devices, classes): how many examples of each class every device holds (after mislabelling)."""
        if isinstance(self.labels, DeviceLabels):
            return self.labels.counts(num_classes)
        if self.labels and self.labels[0].is_floating_point():
            return np.zeros((len(self.labels), 0), dtype=np.int64)
        return np.stack([np.bincount(labels.numpy(), minlength=num_classes) for labels in self.labels])


def partition_devices(
    dataset: FederatedDataset,
    sizes: np.ndarray,
    non_iid_alpha: float,
    mislabelling: float,
    seed: int,
    repetition: int,
) -> DevicePartitions:
    """The devices' train and test data: natural partitions when the dataset has them, else IID/Dirichlet
    train partitions and test partitions of the same label mix; deterministic.

    A regression dataset (float targets) has no labels to skew or to swap: only IID, without mislabelling.
    """
    if not 0 <= mislabelling < 1:
        raise ValueError(f"mislabelling fraction must be in [0, 1), got {mislabelling!r}")
    sizes = np.asarray(sizes, dtype=np.int64)
    train_labels = dataset.train.y.numpy()
    regression = dataset.train.y.is_floating_point()
    if regression and (non_iid_alpha > 0 or mislabelling > 0):
        raise ValueError(
            "data.non_iid_partitions and data.mislabelling_percentage must be 0 on a regression dataset "
            f"(got {non_iid_alpha!r} and {mislabelling!r}): its targets have no classes"
        )
    if dataset.natural_partitions is not None:
        if len(dataset.natural_partitions) != len(sizes):
            raise ValueError(
                f"the dataset is partitioned by nature into {len(dataset.natural_partitions)} devices,"
                f" but {len(sizes)} devices were asked for"
            )
        indices = [np.asarray(part, dtype=np.int64) for part in dataset.natural_partitions]
    else:
        rng = numpy_rng(seed, "partition", repetition)
        # IID ignores the labels but their count; a regression target may be (n, 1).
        split_labels = np.zeros(len(train_labels), np.int64) if regression else train_labels
        indices = partitioner_for(non_iid_alpha).split(split_labels, sizes, rng)
    labels = DeviceLabels(train_labels, indices, mislabelling, dataset.num_classes, seed, repetition)
    natural_test = dataset.natural_test_partitions if dataset.natural_partitions is not None else None
    test_indices = DeviceTestIndices(train_labels, dataset.test.y.numpy(), indices, natural_test, seed, repetition)
    return DevicePartitions(indices=indices, labels=labels, test_indices=test_indices)
