"""EMNIST (Cohen et al. 2017): NIST's handwritten digits and letters in MNIST's 28x28 IDX format.

NIST ships every split in one archive, `gzip.zip`, holding `gzip/emnist-<split>-{train,test}-{images,labels}-
idx{3,1}-ubyte.gz`; the dataset reads the archive as it is, or those files extracted into the folder (or its
`gzip/` subfolder). EMNIST stores each image transposed relative to MNIST; loading turns it upright.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from feles.data.dataset import (
    DATASETS,
    DataRequest,
    FederatedDataset,
    FileDatasetSource,
    Split,
    choice_rule,
    read_params,
)
from feles.data.idx import read_idx, read_idx_from
from feles.data.image_files import check_labels, files_unavailable, image_split
from feles.data.location import search_dirs

ARCHIVE = "gzip.zip"
#: split -> number of classes. `letters` labels are 1..26 in the files, shifted here to 0..25.
SPLITS = {"byclass": 62, "bymerge": 47, "balanced": 47, "letters": 26, "digits": 10, "mnist": 10}
# byclass is what the original FELES loaded (TensorFlow Datasets' default EMNIST config, 62 classes).
PARAM_RULES = {"split": choice_rule("byclass", SPLITS)}
# Train pixels' mean and standard deviation of the byclass split as published; the other splits' differ by
# less than 0.002, so one pair serves them all.
MEAN = 0.1736
STD = 0.3316
INPUT_SHAPE = (1, 28, 28)


def member_names(split: str) -> dict[str, str]:
    """part -> file name of the split's four IDX .gz files."""
    return {
        f"{part}_{kind}": f"emnist-{split}-{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
        for part in ("train", "test")
        for kind in ("images", "labels")
    }


@DATASETS.register("emnist")
class Emnist(FileDatasetSource):
    """One EMNIST split (dataset_params.split, default byclass) with its official train/test division."""

    default_model: ClassVar[str] = "cnn"

    def load(self, request: DataRequest) -> FederatedDataset:
        split = read_params("emnist", request.params, PARAM_RULES)["split"]
        arrays = read_split(self.locate(request.data_dir), split)
        num_classes = SPLITS[split]
        return FederatedDataset(
            train=_split(arrays["train_images"], arrays["train_labels"], split, num_classes, "train"),
            test=_split(arrays["test_images"], arrays["test_labels"], split, num_classes, "test"),
            num_classes=num_classes,
            input_shape=INPUT_SHAPE,
        )

    def locate(self, data_dir: Path | None) -> Path:
        searched = search_dirs("emnist", data_dir)
        for directory in searched:
            extracted = any(any(folder.glob("emnist-*-ubyte*")) for folder in (directory, directory / "gzip"))
            if (directory / ARCHIVE).is_file() or extracted:
                return directory
        needed = f"NIST's {ARCHIVE} or the emnist-<split>-*-ubyte.gz files extracted from it"
        raise files_unavailable("emnist", f"the archive {ARCHIVE}", searched, data_dir, needed)


def read_split(directory: Path, split: str) -> dict[str, np.ndarray]:
    """The split's four arrays as stored (images transposed), from the archive or the extracted files."""
    names = member_names(split)
    archive = directory / ARCHIVE
    if archive.is_file():
        return _read_archive(archive, names)
    folder = _extracted_folder(directory, split)
    if folder is None:
        raise files_unavailable("emnist", f"split {split!r} ({names['train_images']})", [directory], directory, ARCHIVE)
    return {part: read_idx(_extracted_file(folder, name)) for part, name in names.items()}


def _read_archive(archive: Path, names: dict[str, str]) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(archive) as bundle:
            by_name = {Path(info.filename).name: info for info in bundle.infolist()}
            missing = [name for name in names.values() if name not in by_name]
            if missing:
                raise ValueError(f"{archive}: the archive holds no {missing[0]}")
            arrays = {}
            for part, name in names.items():
                with bundle.open(by_name[name]) as member:
                    arrays[part] = read_idx_from(member, f"{archive}:{name}", gzipped=name.endswith(".gz"))
            return arrays
    except zipfile.BadZipFile as error:
        raise ValueError(f"{archive}: not a readable zip archive ({error})") from error


def _extracted_file(folder: Path, name: str) -> Path:
    gz = folder / name
    return gz if gz.is_file() else folder / name.removesuffix(".gz")


def _extracted_folder(directory: Path, split: str) -> Path | None:
    """The folder (directory or directory/gzip) holding every extracted file of the split, or None."""
    for folder in (directory, directory / "gzip"):
        if all(_extracted_file(folder, name).is_file() for name in member_names(split).values()):
            return folder
    return None


def _split(images: np.ndarray, labels: np.ndarray, split: str, num_classes: int, part: str) -> Split:
    source = f"EMNIST {split} {part}"
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != INPUT_SHAPE[1:]:
        raise ValueError(f"{source}: expected uint8 images of shape (n, 28, 28), got {images.dtype} {images.shape}")
    labels = labels.astype(np.int64) - (1 if split == "letters" else 0)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{source}: letters labels must be 1..26, found 0")
    check_labels(labels, images.shape[0], num_classes, source)
    # Stored column by column: transposing each image makes row 0 the top row, as in MNIST.
    upright = images.transpose(0, 2, 1)[:, None]
    return image_split(upright, labels, (MEAN,), (STD,))
