"""Which train examples, with which (possibly noisy) labels, each simulated device holds."""

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


@dataclass(frozen=True)
class DevicePartitions:
    """indices: device -> train indices; labels: device -> int64 labels for them (after mislabelling), or the
    float targets of a regression dataset."""

    indices: list[np.ndarray]
    labels: Sequence[torch.Tensor]

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
    """The devices' data: natural partitions when the dataset has them, else IID/Dirichlet; deterministic.

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
    return DevicePartitions(indices=indices, labels=labels)
