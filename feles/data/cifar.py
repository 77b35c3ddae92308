"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) read from their official binary versions, never from pickles.

Each record of a `.bin` file is its label byte(s) then 3,072 pixel bytes: 1,024 red, 1,024 green, 1,024 blue,
each a 32x32 image row by row. CIFAR-10 has one label byte; CIFAR-100 two, the coarse (20 superclasses) then
the fine (100 classes) label. The dataset reads the `.tar.gz` archive as downloaded, or its files extracted
into the folder (or into the archive's own subfolder).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from feles.data.dataset import (
    DATASETS,
    DataRequest,
    FederatedDataset,
    FileDatasetSource,
    choice_rule,
    read_params,
)
from feles.data.image_files import check_labels, files_unavailable, image_split
from feles.data.location import search_dirs

INPUT_SHAPE = (3, 32, 32)
PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarLayout:
    """The files of one CIFAR binary release."""

    archive: str
    folder: str  # the archive's top folder
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_bytes: int
    mean: tuple[float, float, float]  # per channel, of the train pixels scaled to [0, 1]
    std: tuple[float, float, float]


# Means and (population) standard deviations per channel of the 50,000 train images, as commonly published.
CIFAR10 = CifarLayout(
    archive="cifar-10-binary.tar.gz",
    folder="cifar-10-batches-bin",
    train=tuple(f"data_batch_{index}.bin" for index in range(1, 6)),
    test=("test_batch.bin",),
    label_bytes=1,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
)
CIFAR100 = CifarLayout(
    archive="cifar-100-binary.tar.gz",
    folder="cifar-100-binary",
    train=("train.bin",),
    test=("test.bin",),
    label_bytes=2,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
)
CIFAR100_LABELS = {"fine": (1, 100), "coarse": (0, 20)}  # labels -> (byte of the record, number of classes)


def parse_records(raw: bytes, label_bytes: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels uint8 (n, 3, 32, 32), labels uint8 (n, label_bytes)) of a CIFAR binary file's bytes."""
    record = label_bytes + PIXELS
    if len(raw) % record:
        raise ValueError(f"{source}: {len(raw)} bytes is not a whole number of {record}-byte CIFAR records")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, *INPUT_SHAPE), rows[:, :label_bytes]


def read_files(directory: Path, layout: CifarLayout) -> dict[str, bytes]:
    """file name -> bytes of every train and test file, from the archive or the extracted files."""
    wanted = [*layout.train, *layout.test]
    archive = directory / layout.archive
    if archive.is_file():
        return _read_archive(archive, wanted)
    folder = _extracted_folder(directory, layout)
    if folder is None:
        raise ValueError(f"{directory}: neither {layout.archive} nor all of {', '.join(wanted)}")
    return {name: (folder / name).read_bytes() for name in wanted}


def _read_archive(archive: Path, wanted: list[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        # One pass over the stream: a gzip stream cannot seek back cheaply.
        with tarfile.open(archive, "r:gz") as bundle:
            for member in bundle:
                name = Path(member.name).name
                if member.isfile() and name in wanted and name not in found:
                    handle = bundle.extractfile(member)
                    if handle is not None:
                        found[name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"{archive}: not a readable .tar.gz archive ({error})") from error
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ValueError(f"{archive}: the archive holds no {missing[0]}")
    return found


def _extracted_folder(directory: Path, layout: CifarLayout) -> Path | None:
    for folder in (directory, directory / layout.folder):
        if all((folder / name).is_file() for name in (*layout.train, *layout.test)):
            return folder
    return None


def _locate(name: str, layout: CifarLayout, data_dir: Path | None) -> Path:
    searched = search_dirs(name, data_dir)
    for directory in searched:
        if (directory / layout.archive).is_file() or _extracted_folder(directory, layout) is not None:
            return directory
    needed = f"{layout.archive} or its .bin files extracted"
    raise files_unavailable(name, f"the archive {layout.archive}", searched, data_dir, needed)


def _load(name: str, layout: CifarLayout, directory: Path, label_byte: int, num_classes: int) -> FederatedDataset:
    files = read_files(directory, layout)

    def part(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        records = [parse_records(files[file], layout.label_bytes, f"{directory}/{file}") for file in names]
        pixels = np.concatenate([pixels for pixels, _ in records])
        labels = np.concatenate([labels[:, label_byte] for _, labels in records])
        check_labels(labels, len(pixels), num_classes, f"{name} {', '.join(names)}")
        return pixels, labels

    train, test = part(layout.train), part(layout.test)
    return FederatedDataset(
        train=image_split(*train, layout.mean, layout.std),
        test=image_split(*test, layout.mean, layout.std),
        num_classes=num_classes,
        input_shape=INPUT_SHAPE,
    )


@DATASETS.register("cifar10")
class Cifar10(FileDatasetSource):
    """50,000 train and 10,000 test 32x32 colour images in 10 classes."""

    default_model: ClassVar[str] = "cnn"

    def load(self, request: DataRequest) -> FederatedDataset:
        read_params("cifar10", request.params, {})
        return _load("cifar10", CIFAR10, self.locate(request.data_dir), label_byte=0, num_classes=10)

    def locate(self, data_dir: Path | None) -> Path:
        return _locate("cifar10", CIFAR10, data_dir)


@DATASETS.register("cifar100")
class Cifar100(FileDatasetSource):
    """50,000 train and 10,000 test 32x32 colour images; 100 fine classes, or the 20 coarse ones (labels)."""

    default_model: ClassVar[str] = "cnn"

    def load(self, request: DataRequest) -> FederatedDataset:
        labels = read_params("cifar100", request.params, {"labels": choice_rule("fine", CIFAR100_LABELS)})["labels"]
        label_byte, num_classes = CIFAR100_LABELS[labels]
        return _load("cifar100", CIFAR100, self.locate(request.data_dir), label_byte, num_classes)

    def locate(self, data_dir: Path | None) -> Path:
        return _locate("cifar100", CIFAR100, data_dir)
