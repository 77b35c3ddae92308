"""Built-in datasets, parameter checks, plug-ins by import path, and where data directories come from."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from feles.data import (
    DATASETS,
    DataRequest,
    DatasetParamsError,
    DatasetSource,
    DatasetUnavailableError,
    FederatedDataset,
    Split,
    default_model_for,
    load_dataset,
    resolve_data_dir,
)
from feles.data.fashion_mnist import FILES
from feles.data.idx import write_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def request(
    sizes: list[int] | None = None,
    seed: int = 0,
    repetition: int = 0,
    data_dir: Path | None = None,
    **params: object,
) -> DataRequest:
    return DataRequest(seed, repetition, np.array(sizes or [10, 10], dtype=np.int64), data_dir, params)


@pytest.fixture(scope="module")
def fashion() -> FederatedDataset:
    return load_dataset("fashion_mnist", request())


def test_fashion_mnist_loads_the_real_dataset(fashion: FederatedDataset) -> None:
    assert fashion.train.x.shape == (60_000, 1, 28, 28)
    assert fashion.train.x.dtype == torch.uint8  # stored as pixels, standardised per batch
    assert fashion.train.inputs(slice(0, 5)).dtype == torch.float32
    assert fashion.test.x.shape == (10_000, 1, 28, 28)
    assert fashion.train.y.dtype == torch.int64
    assert fashion.train.y.shape == (60_000,)
    assert fashion.num_classes == 10
    assert fashion.input_shape == (1, 28, 28)
    # Fashion-MNIST is balanced: 6,000 train and 1,000 test images per class.
    assert fashion.train.y.bincount().tolist() == [6_000] * 10
    assert fashion.test.y.bincount().tolist() == [1_000] * 10
    # Normalised with the train set's mean 0.2860 and std 0.3530.
    inputs = fashion.train.inputs()
    assert abs(inputs.mean().item()) < 0.01
    assert abs(inputs.std().item() - 1.0) < 0.01
    assert fashion.natural_partitions is None


def write_fake_fashion(directory: Path, gz: bool) -> None:
    suffix = ".gz" if gz else ""
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    for part in ("train", "test"):
        write_idx(directory / f"{FILES[f'{part}_images']}{suffix}", images)
        write_idx(directory / f"{FILES[f'{part}_labels']}{suffix}", np.array([0, 9, 4], dtype=np.uint8))


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_fashion_mnist_reads_any_directory_holding_the_files(tmp_path: Path, gz: bool) -> None:
    write_fake_fashion(tmp_path, gz)
    data = load_dataset("fashion_mnist", request(data_dir=tmp_path))
    assert data.train.x.shape == (3, 1, 28, 28)
    assert data.test.y.tolist() == [0, 9, 4]
    assert data.train.inputs()[0, 0, 0, 0].item() == pytest.approx((0 - 0.2860) / 0.3530)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetUnavailableError) as error:
        load_dataset("fashion_mnist", request(data_dir=missing))
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte.gz" in message
    assert str(missing) in message
    assert "--data-dir" in message
    assert "FELES_DATA_DIR" in message
    assert "simulation.data_dir" in message


def test_missing_single_fashion_mnist_file_is_named(tmp_path: Path) -> None:
    write_fake_fashion(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetUnavailableError, match=r"t10k-labels-idx1-ubyte\.gz not found"):
        load_dataset("fashion_mnist", request(data_dir=tmp_path))


def test_digits_has_a_fixed_stratified_test_split() -> None:
    first = load_dataset("digits", request(seed=1))
    other_seed = load_dataset("digits", request(seed=99, repetition=3))
    assert first.train.x.shape == (1_438, 1, 8, 8)
    assert first.test.x.shape == (359, 1, 8, 8)
    assert first.train.x.min().item() >= 0.0
    assert first.train.x.max().item() <= 1.0
    assert first.input_shape == (1, 8, 8)
    assert first.num_classes == 10
    assert torch.equal(first.test.x, other_seed.test.x)
    assert torch.equal(first.test.y, other_seed.test.y)
    # Every class holds 20% (rounded) of its 174..183 images out: 35 to 37 each.
    assert set(first.test.y.bincount().tolist()) <= {35, 36, 37}


def test_digits_test_fraction_is_a_parameter() -> None:
    data = load_dataset("digits", request(test_fraction=0.5))
    assert abs(len(data.test.y) - 1_797 / 2) < 10
    assert len(data.train.y) + len(data.test.y) == 1_797


def test_synthetic_shapes_and_natural_partitions() -> None:
    sizes = [5, 40, 0, 17]
    data = load_dataset("synthetic", request(sizes))
    assert data.input_shape == (60,)
    assert data.num_classes == 10
    assert data.train.x.shape == (62, 60)
    assert data.train.x.dtype == torch.float32
    # 20% held out per device, at least one: 1 + 8 + 1 + 3.
    assert data.test.x.shape == (13, 60)
    assert data.natural_partitions is not None
    assert [len(p) for p in data.natural_partitions] == sizes
    assert np.array_equal(np.concatenate(data.natural_partitions), np.arange(62))


def test_synthetic_is_deterministic_per_seed_and_repetition() -> None:
    first = load_dataset("synthetic", request([20, 20], seed=5))
    again = load_dataset("synthetic", request([20, 20], seed=5))
    other_seed = load_dataset("synthetic", request([20, 20], seed=6))
    other_repetition = load_dataset("synthetic", request([20, 20], seed=5, repetition=1))
    assert torch.equal(first.train.x, again.train.x)
    assert torch.equal(first.test.y, again.test.y)
    assert not torch.equal(first.train.x, other_seed.train.x)
    assert not torch.equal(first.train.x, other_repetition.train.x)


def test_synthetic_devices_differ_in_label_distribution() -> None:
    data = load_dataset("synthetic", request([200] * 20, alpha=1.0, beta=1.0))
    assert data.natural_partitions is not None
    labels = data.train.y.numpy()
    shares = np.stack([np.bincount(labels[p], minlength=10) / 200 for p in data.natural_partitions])
    pooled = shares.mean(axis=0)
    # Mean total-variation distance of a device's labels to the pooled ones; IID devices of 200 give ~0.1.
    distance = 0.5 * np.abs(shares - pooled).sum(axis=1).mean()
    assert distance > 0.3
    assert len(set(shares.argmax(axis=1).tolist())) >= 3


def test_synthetic_parameters_shape_the_data() -> None:
    data = load_dataset("synthetic", request([30], dimension=5, num_classes=3, alpha=0, beta=0.5))
    assert data.input_shape == (5,)
    assert data.train.x.shape == (30, 5)
    assert data.num_classes == 3
    assert data.train.y.max().item() <= 2


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("fashion_mnist", {"test_fraction": 0.1}, "test_fraction"),
        ("digits", {"shuffle": True}, "shuffle"),
        ("digits", {"test_fraction": 1.5}, "test_fraction"),
        ("synthetic", {"alhpa": 1.0}, "alhpa"),
        ("synthetic", {"beta": -1}, "beta"),
        ("synthetic", {"dimension": 2.5}, "dimension"),
        ("synthetic", {"alpha": True}, "alpha"),
    ],
)
def test_bad_dataset_params_name_the_key(name: str, params: dict[str, object], key: str) -> None:
    with pytest.raises(DatasetParamsError, match=key):
        load_dataset(name, request(**params))


def test_unknown_param_error_lists_the_allowed_keys() -> None:
    with pytest.raises(DatasetParamsError, match=r"'alhpa'.*allowed: alpha, beta, dimension, num_classes"):
        load_dataset("synthetic", request(alhpa=1.0))


def test_default_models() -> None:
    assert default_model_for("fashion_mnist") == "cnn"
    assert default_model_for("digits") == "mlp"
    assert default_model_for("synthetic") == "logreg"
    assert {"fashion_mnist", "digits", "synthetic"} <= set(DATASETS.names())


class CountingDataset(DatasetSource):
    """A user's dataset plugged in by import path: labels count the examples."""

    default_model: ClassVar[str] = "logreg"

    def load(self, request: DataRequest) -> FederatedDataset:
        n = int(request.data_sizes.sum())
        split = Split(x=torch.zeros(n, 3), y=torch.arange(n) % 2)
        return FederatedDataset(split, split, num_classes=2, input_shape=(3,))


def test_a_dataset_plugs_in_by_import_path() -> None:
    path = f"{__name__}:CountingDataset"
    assert load_dataset(path, request([4, 6])).train.y.shape == (10,)
    assert default_model_for(path) == "logreg"


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FELES_DATA_DIR", raising=False)
    assert resolve_data_dir(None, None) is None
    assert resolve_data_dir(None, "/spec") == Path("/spec")
    monkeypatch.setenv("FELES_DATA_DIR", "/env")
    assert resolve_data_dir(None, "/spec") == Path("/env")
    assert resolve_data_dir("/cli", "/spec") == Path("/cli")
    assert resolve_data_dir(Path("/cli"), None) == Path("/cli")
    monkeypatch.setenv("FELES_DATA_DIR", "")
    assert resolve_data_dir(None, "/spec") == Path("/spec")
