"""Tiny dataset files in the exact formats of the official downloads, for tests that must not touch the internet."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from feles.data.cifar import CIFAR10, CIFAR100, CifarLayout
from feles.data.emnist import member_names
from feles.data.idx import write_idx
from feles.data.mnist import FILES


def mnist_images(count: int) -> np.ndarray:
    """`count` distinct 28x28 uint8 images: image i is (i + row * 28 + column) mod 256."""
    grid = np.arange(28 * 28).reshape(28, 28)
    return ((grid[None] + np.arange(count)[:, None, None]) % 256).astype(np.uint8)


def write_mnist(directory: Path, train_labels: list[int], test_labels: list[int], gz: bool = True) -> dict[str, Path]:
    """The four MNIST-layout IDX files; returns part -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {
        "train_images": mnist_images(len(train_labels)),
        "train_labels": np.array(train_labels, dtype=np.uint8),
        "test_images": mnist_images(len(test_labels)),
        "test_labels": np.array(test_labels, dtype=np.uint8),
    }
    paths = {part: directory / f"{FILES[part]}{suffix}" for part in FILES}
    for part, path in paths.items():
        write_idx(path, arrays[part])
    return paths


def upright_emnist_image() -> np.ndarray:
    """A 28x28 image that is not symmetric: a bright top row, one bright pixel at row 5, column 20."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[0, :] = 255
    image[5, 20] = 200
    return image


def write_emnist_zip(path: Path, splits: dict[str, tuple[list[int], list[int]]]) -> Path:
    """NIST's gzip.zip layout: gzip/emnist-<split>-... .gz members, images stored transposed (as EMNIST does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = upright_emnist_image().T
    with zipfile.ZipFile(path, "w") as bundle:
        for split, (train, test) in splits.items():
            labels = {"train": train, "test": test}
            for part, name in member_names(split).items():
                which, kind = part.split("_")
                count = len(labels[which])
                images = np.repeat(stored[None], count, axis=0)
                array = images if kind == "images" else np.array(labels[which], np.uint8)
                scratch = path.parent / name
                write_idx(scratch, array)
                bundle.write(scratch, f"gzip/{name}")
                scratch.unlink()
    return path


def cifar_records(labels: list[tuple[int, ...]]) -> bytes:
    """Binary CIFAR records: the label bytes, then 3,072 pixels where channel c of record i is 10 * i + c."""
    out = bytearray()
    for index, label in enumerate(labels):
        out += bytes(label)
        for channel in range(3):
            out += bytes([(10 * index + channel) % 256]) * 1024
    return bytes(out)


def write_cifar_archive(path: Path, layout: CifarLayout, per_file: list[tuple[int, ...]]) -> Path:
    """The official .tar.gz layout (top folder, .bin files); every train and test file holds `per_file` records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as bundle:
        for name in (*layout.train, *layout.test):
            data = cifar_records(per_file)
            info = tarfile.TarInfo(f"{layout.folder}/{name}")
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return path


def write_cifar10(directory: Path, labels: list[int]) -> Path:
    return write_cifar_archive(directory / CIFAR10.archive, CIFAR10, [(label,) for label in labels])


def write_cifar100(directory: Path, labels: list[tuple[int, int]]) -> Path:
    """labels: (coarse, fine) per record."""
    return write_cifar_archive(directory / CIFAR100.archive, CIFAR100, labels)
