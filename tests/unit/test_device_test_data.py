"""Each device evaluates on its own test partition: drawn from the test split with its train data's label mix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feles.algorithms import build_client
from feles.config import SimulationSpec, parse_spec
from feles.data import FederatedDataset, Split, devices_data, partition_devices
from feles.protocol import Job, Phase
from feles.strategies.data.random import RandomLocalData
from feles.worker.state import WorkerState
from feles.worker.trainer import device_examples

TRAIN_LABELS = np.repeat(np.arange(10), 500)  # 5,000 train examples, 500 per class
TEST_LABELS = np.repeat(np.arange(10), 100)  # 1,000 test examples, 100 per class


def dataset(
    natural: list[np.ndarray] | None = None,
    natural_test: list[np.ndarray] | None = None,
    test_labels: torch.Tensor | None = None,
) -> FederatedDataset:
    train = Split(x=torch.zeros(len(TRAIN_LABELS), 2), y=torch.from_numpy(TRAIN_LABELS))
    y = torch.from_numpy(TEST_LABELS) if test_labels is None else test_labels
    test = Split(x=torch.arange(len(y), dtype=torch.float32)[:, None].repeat(1, 2), y=y)
    return FederatedDataset(train, test, 10, (2,), natural_partitions=natural, natural_test_partitions=natural_test)


def class_counts(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=10)


def test_a_non_iid_device_evaluates_on_test_examples_of_its_own_label_mix() -> None:
    sizes = np.array([60, 90, 30, 45])
    parts = partition_devices(dataset(), sizes, 0.1, 0.0, seed=1, repetition=0)
    for device, size in enumerate(sizes.tolist()):
        test = parts.test_indices[device]
        assert len(test) == size == len(np.unique(test))  # distinct test examples, as many as it trains on
        assert ((test >= 0) & (test < len(TEST_LABELS))).all()
        # Exactly the class counts of its train data: Dirichlet(0.1) devices hold one or two classes.
        train_counts = class_counts(TRAIN_LABELS[parts.indices[device]])
        np.testing.assert_array_equal(class_counts(TEST_LABELS[test]), train_counts)
    assert (class_counts(TEST_LABELS[parts.test_indices[0]]) > 0).sum() < 10


def test_mislabelling_leaves_the_test_labels_and_the_mix_of_the_true_labels() -> None:
    parts = partition_devices(dataset(), np.full(3, 80), 0.5, 0.25, seed=2, repetition=0)
    for device in range(3):
        train_counts = class_counts(TRAIN_LABELS[parts.indices[device]])
        np.testing.assert_array_equal(class_counts(TEST_LABELS[parts.test_indices[device]]), train_counts)


def test_test_partitions_are_deterministic_and_independent_of_access_order() -> None:
    sizes = np.full(50, 40)
    first = partition_devices(dataset(), sizes, 0.5, 0.0, seed=3, repetition=0)
    again = partition_devices(dataset(), sizes, 0.5, 0.0, seed=3, repetition=0)
    backwards = [again.test_indices[d] for d in reversed(range(50))][::-1]
    for device in range(50):
        np.testing.assert_array_equal(first.test_indices[device], backwards[device])
    other = partition_devices(dataset(), sizes, 0.5, 0.0, seed=3, repetition=1)
    assert not all(np.array_equal(a, b) for a, b in zip(first.test_indices, other.test_indices, strict=True))


def test_a_class_with_too_few_test_examples_is_drawn_again() -> None:
    # One device with 500 examples of one class; the test split has 100 of it: each is used 5 times.
    natural_free = partition_devices(dataset(), np.array([500]), 0.001, 0.0, seed=0, repetition=0)
    test = natural_free.test_indices[0]
    assert len(test) == 500
    labels = TEST_LABELS[test]
    for label in np.unique(labels).tolist():
        assert (np.bincount(test[labels == label]) <= 5).all()


def test_a_device_federated_by_nature_evaluates_on_its_own_test_block() -> None:
    natural = [np.arange(0, 40), np.arange(40, 60)]
    natural_test = [np.arange(0, 10), np.arange(10, 15)]
    parts = partition_devices(dataset(natural, natural_test), np.array([40, 20]), 0.0, 0.0, seed=0, repetition=0)
    assert len(parts.test_indices[0]) == 40 and set(parts.test_indices[0].tolist()) == set(range(10))
    assert len(parts.test_indices[1]) == 20 and set(parts.test_indices[1].tolist()) == set(range(10, 15))


def test_labels_that_are_not_classes_are_drawn_uniformly() -> None:
    values = torch.linspace(0, 1, len(TEST_LABELS))
    parts = partition_devices(dataset(test_labels=values), np.array([30, 70]), 0.0, 0.0, seed=0, repetition=0)
    assert [len(parts.test_indices[d]) for d in range(2)] == [30, 70]
    assert len(np.unique(parts.test_indices[1])) == 70


def worker(spec: SimulationSpec) -> WorkerState:
    return WorkerState(
        worker_id="w",
        run_id="r",
        spec=spec,
        model_name="logreg",
        data_dir=None,
        client=build_client(spec.algorithms),
        local_data={Phase.FIT: RandomLocalData({}), Phase.EVAL: RandomLocalData({})},
    )


def job(phase: Phase, device: int, num_examples: int) -> Job:
    fields = {"id": "j", "run_id": "r", "repetition": 0, "round": 0, "model_version": 0, "epochs": 1}
    return Job(**fields, phase=phase, device=device, batch_size=8, num_examples=num_examples, seed=5, lease_seconds=9)


def test_an_eval_job_evaluates_on_the_devices_test_examples_and_a_fit_job_trains_on_its_train_examples() -> None:
    spec = parse_spec(
        {
            "simulation": {"dataset": "digits", "model": "logreg", "seed": 4},
            "devices": {"num": 10},
            "data": {"num_examples_mean": 30, "non_iid_partitions": 0.5},
        }
    )
    state = worker(spec)
    data = state.repetition_data(0)
    x, y = device_examples(state, job(Phase.EVAL, 3, 30))
    test_rows = data.partitions.test_indices[3]
    assert len(y) == 30
    # Every example is a row of the test split among the device's test partition, with its clean label.
    expected = {tuple(row) for row in data.dataset.test.x[torch.from_numpy(test_rows)].flatten(1).tolist()}
    assert {tuple(row) for row in x.flatten(1).tolist()} <= expected
    assert sorted(y.tolist()) == sorted(data.dataset.test.y[torch.from_numpy(test_rows)].tolist())
    x, y = device_examples(state, job(Phase.FIT, 3, 30))
    train_rows = {
        tuple(row) for row in data.dataset.train.x[torch.from_numpy(data.partitions.indices[3])].flatten(1).tolist()
    }
    assert {tuple(row) for row in x.flatten(1).tolist()} <= train_rows


def test_a_devices_test_partition_is_drawn_once_and_the_same_after_the_cache_is_emptied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devices_data, "CACHED_TEST_PARTITIONS", 2)  # every third device empties the cache
    sizes = np.array([60, 90, 30, 45])
    first = partition_devices(dataset(), sizes, 0.1, 0.0, seed=1, repetition=0).test_indices
    again = partition_devices(dataset(), sizes, 0.1, 0.0, seed=1, repetition=0).test_indices
    drawn = [first[device] for device in (0, 1, 2, 3, 0, 1)]
    assert drawn[4] is not drawn[0]  # drawn again after the cache was emptied ...
    for device, indices in zip((0, 1, 2, 3, 0, 1), drawn, strict=True):
        assert np.array_equal(indices, again[device])  # ... to the same examples
        assert not indices.flags.writeable  # callers share it
    assert first[3] is first[3]


def test_split_rows_are_what_indexing_gives() -> None:
    split = Split(x=torch.arange(40, dtype=torch.uint8).reshape(10, 2, 2), y=torch.arange(10))
    index = torch.tensor([7, 2, 2, 9])
    assert torch.equal(split.inputs(index), split.x[index])
    assert torch.equal(split.inputs(slice(2, 5)), split.x[2:5])
    assert torch.equal(split.inputs(torch.tensor([True, False] * 5)), split.x[::2])
