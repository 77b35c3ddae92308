"""Partitioning into devices: exact sizes, disjointness, label skew by alpha, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feles.data import (
    DirichletPartitioner,
    FederatedDataset,
    IidPartitioner,
    Partitioner,
    Split,
    partition_devices,
    partitioner_for,
)
from feles.seeding import numpy_rng

LABELS = np.repeat(np.arange(10), 500)  # 5,000 balanced examples, 10 classes
PARTITIONERS = [IidPartitioner(), DirichletPartitioner(0.5)]


def rng(seed: int = 0) -> np.random.Generator:
    return numpy_rng(seed, "partition-test")


def max_class_share(parts: list[np.ndarray], labels: np.ndarray) -> float:
    """Mean over devices of the largest class's share of the device's examples."""
    return float(np.mean([np.bincount(labels[p], minlength=10).max() / len(p) for p in parts]))


@pytest.mark.parametrize("partitioner", PARTITIONERS, ids=["iid", "dirichlet"])
def test_every_device_gets_exactly_its_size(partitioner: Partitioner) -> None:
    sizes = np.array([0, 1, 7, 250, 3_000, 9_000])  # total 12,258: more than the 5,000 examples
    parts = partitioner.split(LABELS, sizes, rng())
    assert [len(p) for p in parts] == sizes.tolist()
    assert all(p.dtype == np.int64 for p in parts)
    assert all(((p >= 0) & (p < len(LABELS))).all() for p in parts)


@pytest.mark.parametrize("partitioner", PARTITIONERS, ids=["iid", "dirichlet"])
def test_devices_are_disjoint_while_the_data_suffices(partitioner: Partitioner) -> None:
    # 400 examples in all: even under full skew no class (500 examples) can run out.
    parts = partitioner.split(LABELS, np.full(20, 20), rng())
    used = np.concatenate(parts)
    assert len(np.unique(used)) == len(used) == 400


def test_iid_uses_the_whole_dataset_before_repeating_an_example() -> None:
    parts = IidPartitioner().split(LABELS, np.full(125, 100), rng())  # 12,500 = 2.5 passes
    uses = np.bincount(np.concatenate(parts), minlength=len(LABELS))
    assert set(np.unique(uses)) == {2, 3}
    assert (uses == 3).sum() == 2_500


def test_iid_devices_follow_the_global_label_distribution() -> None:
    parts = IidPartitioner().split(LABELS, np.full(200, 50), rng())
    assert max_class_share(parts, LABELS) < 0.25


def test_label_skew_grows_as_alpha_shrinks() -> None:
    sizes = np.full(200, 50)
    share = {
        alpha: max_class_share(DirichletPartitioner(alpha).split(LABELS, sizes, rng()), LABELS)
        for alpha in (0.1, 1.0, 100.0)
    }
    # Measured: about 0.95, 0.67 and 0.19; 0.1 is the share of a perfectly balanced device.
    assert share[0.1] > 0.85
    assert 0.5 < share[1.0] < 0.8
    assert share[100.0] < 0.25


def test_dirichlet_follows_the_class_prior_overall() -> None:
    labels = np.repeat(np.arange(3), [7_000, 2_000, 1_000])
    parts = DirichletPartitioner(1.0).split(labels, np.full(2_000, 5), rng())
    shares = np.bincount(labels[np.concatenate(parts)], minlength=3) / 10_000
    np.testing.assert_allclose(shares, [0.7, 0.2, 0.1], atol=0.05)


def test_tiny_alpha_gives_single_class_devices_without_nan() -> None:
    parts = DirichletPartitioner(1e-6).split(LABELS, np.full(100, 30), rng())
    assert max_class_share(parts, LABELS) == 1.0


def test_dirichlet_shuffles_classes_within_a_device() -> None:
    # A device that trains on its first examples only must not see one class only.
    parts = DirichletPartitioner(100.0).split(LABELS, np.full(10, 200), rng())
    assert all(len(np.unique(LABELS[p[:20]])) >= 4 for p in parts)


@pytest.mark.parametrize("partitioner", PARTITIONERS, ids=["iid", "dirichlet"])
def test_same_seed_same_partition_different_seed_different(partitioner: Partitioner) -> None:
    sizes = np.full(50, 30)
    first = partitioner.split(LABELS, sizes, rng(1))
    again = partitioner.split(LABELS, sizes, rng(1))
    other = partitioner.split(LABELS, sizes, rng(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_handles_a_hundred_thousand_devices() -> None:
    parts = DirichletPartitioner(0.3).split(LABELS, np.full(100_000, 10), rng())
    assert len(parts) == 100_000
    assert {len(p) for p in parts} == {10}


def test_alpha_zero_means_iid_and_negative_alpha_is_rejected() -> None:
    assert isinstance(partitioner_for(0.0), IidPartitioner)
    dirichlet = partitioner_for(0.5)
    assert isinstance(dirichlet, DirichletPartitioner)
    assert dirichlet.alpha == 0.5
    with pytest.raises(ValueError, match="alpha"):
        partitioner_for(-1.0)


def tiny_dataset(natural: list[np.ndarray] | None = None) -> FederatedDataset:
    x = torch.zeros(len(LABELS), 2)
    split = Split(x=x, y=torch.from_numpy(LABELS.astype(np.int64)))
    return FederatedDataset(split, split, num_classes=10, input_shape=(2,), natural_partitions=natural)


def test_partition_devices_is_deterministic_and_depends_on_the_repetition() -> None:
    sizes = np.full(30, 40)
    first = partition_devices(tiny_dataset(), sizes, 0.5, 0.25, seed=3, repetition=0)
    again = partition_devices(tiny_dataset(), sizes, 0.5, 0.25, seed=3, repetition=0)
    other = partition_devices(tiny_dataset(), sizes, 0.5, 0.25, seed=3, repetition=1)
    for device in range(30):
        np.testing.assert_array_equal(first.indices[device], again.indices[device])
        assert torch.equal(first.labels[device], again.labels[device])
    assert not all(np.array_equal(a, b) for a, b in zip(first.indices, other.indices, strict=True))


def test_partition_devices_mislabels_exactly_the_fraction_per_device() -> None:
    parts = partition_devices(tiny_dataset(), np.full(8, 40), 0.0, 0.25, seed=0, repetition=0)
    assert len(parts.labels) == 8
    for indices, labels in zip(parts.indices, parts.labels, strict=True):
        assert labels.dtype == torch.int64
        assert labels.shape == (40,)
        assert int((labels.numpy() != LABELS[indices]).sum()) == 10


def test_partition_devices_without_mislabelling_keeps_the_true_labels() -> None:
    parts = partition_devices(tiny_dataset(), np.full(5, 7), 1.0, 0.0, seed=0, repetition=0)
    for indices, labels in zip(parts.indices, parts.labels, strict=True):
        np.testing.assert_array_equal(labels.numpy(), LABELS[indices])


def test_partition_devices_uses_natural_partitions() -> None:
    natural = [np.arange(0, 10), np.arange(10, 13)]
    parts = partition_devices(tiny_dataset(natural), np.array([10, 3]), 0.5, 0.0, seed=0, repetition=0)
    np.testing.assert_array_equal(parts.indices[1], [10, 11, 12])
    with pytest.raises(ValueError, match="2 devices"):
        partition_devices(tiny_dataset(natural), np.array([1, 1, 1]), 0.5, 0.0, seed=0, repetition=0)
