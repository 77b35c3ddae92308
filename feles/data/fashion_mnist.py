"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) read from the four standard IDX files on local disk."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from feles.data.dataset import (
    DATASETS,
    DataRequest,
    DatasetSource,
    DatasetUnavailableError,
    FederatedDataset,
    Split,
    Standardization,
    read_params,
)
from feles.data.idx import read_idx

# Where Debian's package dataset-fashion-mnist installs the files.
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MEAN = 0.2860
STD = 0.3530
STANDARDIZATION = Standardization(255.0, MEAN, STD)
NUM_CLASSES = 10
INPUT_SHAPE = (1, 28, 28)


@DATASETS.register("fashion_mnist")
class FashionMnist(DatasetSource):
    """60,000 train and 10,000 test 28x28 grey images of clothes in 10 classes."""

    default_model: ClassVar[str] = "cnn"

    def load(self, request: DataRequest) -> FederatedDataset:
        read_params("fashion_mnist", request.params, {})
        directory = request.data_dir or DEFAULT_DIR
        paths = {part: find_idx_file(directory, stem) for part, stem in FILES.items()}
        train = _split(paths["train_images"], paths["train_labels"])
        test = _split(paths["test_images"], paths["test_labels"])
        return FederatedDataset(train=train, test=test, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE)


def find_idx_file(directory: Path, stem: str) -> Path:
    """`stem.gz` or `stem` in `directory`; DatasetUnavailableError saying how to get it otherwise."""
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise DatasetUnavailableError(
        f"Fashion-MNIST file {stem}.gz not found in {directory}"
        + ("" if directory.is_dir() else " (the directory does not exist)")
        + ". Install Debian's package with `apt-get install dataset-fashion-mnist` (files land in"
        f" {DEFAULT_DIR}), or point --data-dir, the env var FELES_DATA_DIR or simulation.data_dir at a"
        " folder holding the four IDX .gz files: " + ", ".join(f"{s}.gz" for s in FILES.values())
    )


def _split(images_path: Path, labels_path: Path) -> Split:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != INPUT_SHAPE[1:]:
        found = f"{images.dtype} {images.shape}"
        raise ValueError(f"{images_path}: expected uint8 images of shape (n, 28, 28), got {found}")
    if labels.shape != (images.shape[0],) or (labels.size > 0 and labels.max() >= NUM_CLASSES):
        raise ValueError(f"{labels_path}: expected {images.shape[0]} labels in 0..9, got {labels.shape}")
    # Kept as uint8 pixels and standardised per batch: 47 MB instead of 188 MB in each process.
    x = torch.from_numpy(images).unsqueeze(1)
    return Split(x=x, y=torch.from_numpy(labels.astype(np.int64)), standardize=STANDARDIZATION)
