"""MNIST, EMNIST, CIFAR-10 and CIFAR-100 read from tiny files in their official formats, and where they are found."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from feles.data import DataRequest, DatasetParamsError, DatasetUnavailableError, default_model_for, load_dataset
from feles.data.cifar import CIFAR10, CIFAR100
from feles.data.fashion_mnist import FashionMnist
from feles.data.location import cache_dir, fetch_dir
from feles.models import build_model
from tests.unit.dataset_files import (
    mnist_images,
    upright_emnist_image,
    write_cifar10,
    write_cifar100,
    write_emnist_zip,
    write_mnist,
)


def request(data_dir: Path | None, **params: object) -> DataRequest:
    return DataRequest(0, 0, np.array([2, 2], dtype=np.int64), data_dir, params)


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees an empty cache of its own and no FELES_DATA_DIR."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FELES_DATA_DIR", raising=False)
    return tmp_path / "cache"


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_mnist_reads_its_four_idx_files(tmp_path: Path, gz: bool) -> None:
    write_mnist(tmp_path, [3, 1, 4], [1, 5], gz=gz)
    data = load_dataset("mnist", request(tmp_path))
    assert data.train.x.shape == (3, 1, 28, 28) and data.test.x.shape == (2, 1, 28, 28)
    assert data.train.x.dtype == torch.uint8  # stored as pixels, standardised per batch by inputs()
    assert data.train.y.tolist() == [3, 1, 4] and data.test.y.tolist() == [1, 5]
    assert data.num_classes == 10 and data.input_shape == (1, 28, 28)
    expected = (mnist_images(3).astype(np.float32) / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(data.train.inputs()[:, 0].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_mnist_is_found_in_its_cache_folder_without_a_data_dir(empty_cache: Path) -> None:
    write_mnist(empty_cache / "feles" / "datasets" / "mnist", [7], [2])
    assert load_dataset("mnist", request(None)).train.y.tolist() == [7]


def test_missing_mnist_names_the_fetch_command(empty_cache: Path) -> None:
    with pytest.raises(DatasetUnavailableError) as error:
        load_dataset("mnist", request(None))
    message = str(error.value)
    assert "`feles data fetch mnist`" in message
    assert str(empty_cache / "feles" / "datasets" / "mnist") in message
    assert "train-images-idx3-ubyte.gz" in message


def test_a_missing_dataset_in_a_given_folder_names_the_fetch_command_for_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match=rf"`feles data fetch cifar10 --dir {tmp_path}`"):
        load_dataset("cifar10", request(tmp_path))


def test_fashion_mnist_looks_in_the_cache_before_debians_folder(empty_cache: Path) -> None:
    write_mnist(empty_cache / "feles" / "datasets" / "fashion_mnist", [9, 9], [0])
    data = load_dataset("fashion_mnist", request(None))
    assert data.train.y.tolist() == [9, 9]
    assert data.train.inputs()[0, 0, 0, 0].item() == pytest.approx((0 - 0.2860) / 0.3530)


def test_fashion_mnist_missing_everywhere_keeps_the_apt_hint(
    tmp_path: Path, empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-debian"
    monkeypatch.setattr(FashionMnist, "fallback_dirs", (missing,))
    with pytest.raises(DatasetUnavailableError) as error:
        load_dataset("fashion_mnist", request(None))
    message = str(error.value)
    assert "`feles data fetch fashion_mnist`" in message and "apt-get install dataset-fashion-mnist" in message
    assert str(missing) in message and str(empty_cache) in message


def test_emnist_reads_the_nist_zip_and_turns_images_upright(tmp_path: Path) -> None:
    write_emnist_zip(tmp_path / "gzip.zip", {"byclass": ([0, 61, 35], [10, 2]), "letters": ([1, 26], [13])})
    data = load_dataset("emnist", request(tmp_path))
    assert data.num_classes == 62 and data.input_shape == (1, 28, 28)
    assert data.train.x.shape == (3, 1, 28, 28) and data.test.x.shape == (2, 1, 28, 28)
    assert data.train.y.tolist() == [0, 61, 35] and data.test.y.tolist() == [10, 2]
    image = data.train.inputs()[0, 0].numpy() * 0.3316 + 0.1736  # back to [0, 1]
    np.testing.assert_allclose(image, upright_emnist_image() / 255, atol=1e-5)
    assert image[0].min() > 0.99 and image[:, 0].max() > 0.99 and image[1:, 0].max() < 0.01  # top row lit, not column


def test_emnist_letters_split_shifts_labels_to_zero(tmp_path: Path) -> None:
    write_emnist_zip(tmp_path / "gzip.zip", {"letters": ([1, 26], [13])})
    data = load_dataset("emnist", request(tmp_path, split="letters"))
    assert data.num_classes == 26
    assert data.train.y.tolist() == [0, 25] and data.test.y.tolist() == [12]


def test_emnist_reads_the_extracted_files_too(tmp_path: Path) -> None:
    import zipfile

    archive = write_emnist_zip(tmp_path / "download" / "gzip.zip", {"digits": ([4, 2], [9])})
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(tmp_path / "extracted")
    data = load_dataset("emnist", request(tmp_path / "extracted", split="digits"))
    assert data.num_classes == 10 and data.train.y.tolist() == [4, 2]
    assert data.train.x[0, 0, 5, 20] > data.train.x[0, 0, 20, 5]  # upright here as well


def test_emnist_refuses_an_unknown_split_and_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(DatasetParamsError, match=r"dataset_params.split of dataset 'emnist' must be one of byclass"):
        load_dataset("emnist", request(tmp_path, split="kanji"))


def test_emnist_split_missing_from_the_archive_is_named(tmp_path: Path) -> None:
    write_emnist_zip(tmp_path / "gzip.zip", {"digits": ([4], [9])})
    with pytest.raises(ValueError, match=r"emnist-balanced-train-images-idx3-ubyte\.gz"):
        load_dataset("emnist", request(tmp_path, split="balanced"))


def test_cifar10_reads_the_binary_archive(tmp_path: Path) -> None:
    write_cifar10(tmp_path, [3, 9])
    data = load_dataset("cifar10", request(tmp_path))
    assert data.train.x.shape == (10, 3, 32, 32) and data.test.x.shape == (2, 3, 32, 32)  # five train batches
    assert data.train.y.tolist() == [3, 9] * 5 and data.test.y.tolist() == [3, 9]
    assert data.num_classes == 10 and data.input_shape == (3, 32, 32)
    # Record 1, channel 2 (blue) holds the byte 12 everywhere, standardised with the blue channel's constants.
    assert data.test.inputs()[1, 2].unique().tolist() == pytest.approx([(12 / 255 - CIFAR10.mean[2]) / CIFAR10.std[2]])
    assert data.test.inputs()[0, 0].unique().tolist() == pytest.approx([(0 / 255 - CIFAR10.mean[0]) / CIFAR10.std[0]])


def test_cifar10_reads_extracted_batches(tmp_path: Path) -> None:
    archive = write_cifar10(tmp_path / "download", [5])
    with tarfile.open(archive) as bundle:
        bundle.extractall(tmp_path / "extracted", filter="data")
    data = load_dataset("cifar10", request(tmp_path / "extracted"))
    assert data.train.y.tolist() == [5] * 5


@pytest.mark.parametrize(("labels", "expected", "classes"), [("fine", [99, 7], 100), ("coarse", [19, 2], 20)])
def test_cifar100_fine_or_coarse_labels(tmp_path: Path, labels: str, expected: list[int], classes: int) -> None:
    write_cifar100(tmp_path, [(19, 99), (2, 7)])
    data = load_dataset("cifar100", request(tmp_path, labels=labels))
    assert data.num_classes == classes
    assert data.train.y.tolist() == expected and data.test.y.tolist() == expected
    assert data.train.x.shape == (2, 3, 32, 32)
    expected_value = (11 / 255 - CIFAR100.mean[1]) / CIFAR100.std[1]
    assert data.train.inputs()[1, 1].unique().tolist() == pytest.approx([expected_value])


def test_cifar100_default_is_fine_and_bad_labels_param_is_named(tmp_path: Path) -> None:
    write_cifar100(tmp_path, [(1, 42)])
    assert load_dataset("cifar100", request(tmp_path)).num_classes == 100
    with pytest.raises(DatasetParamsError, match=r"dataset_params.labels of dataset 'cifar100' must be one of fine"):
        load_dataset("cifar100", request(tmp_path, labels="medium"))


def test_a_truncated_cifar_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / CIFAR10.folder
    folder.mkdir()
    for name in (*CIFAR10.train, *CIFAR10.test):
        (folder / name).write_bytes(b"\x01" * 3000)
    with pytest.raises(ValueError, match=r"data_batch_1.bin: 3000 bytes is not a whole number of 3073-byte"):
        load_dataset("cifar10", request(tmp_path))


@pytest.mark.parametrize("name", ["mnist", "emnist", "cifar10", "cifar100"])
def test_image_datasets_train_the_cnn_by_default(name: str) -> None:
    assert default_model_for(name) == "cnn"


def test_the_cnn_takes_colour_32x32_images_and_keeps_its_28x28_size() -> None:
    colour = build_model("cnn", (3, 32, 32), 100)
    assert colour(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    grey = build_model("cnn", (1, 28, 28), 10)
    assert sum(p.numel() for p in grey.parameters()) == 215_370  # the original FELES docs' count for this CNN


def test_fetch_writes_to_feles_data_dir_when_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert fetch_dir("cifar10", None) == cache_dir("cifar10")
    assert fetch_dir("cifar10", tmp_path / "here") == tmp_path / "here"
    monkeypatch.setenv("FELES_DATA_DIR", str(tmp_path / "shared"))
    assert fetch_dir("cifar10", None) == tmp_path / "shared"


def test_cache_dir_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir("mnist") == tmp_path / "feles" / "datasets" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # invalid per the XDG spec: ignored
    assert cache_dir("mnist") == Path("~/.cache/feles/datasets/mnist").expanduser()
