"""MNIST (LeCun et al. 1998) and datasets in its layout: four IDX files, gzipped or not, in one folder."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from feles.data.dataset import (
    DATASETS,
    DataRequest,
    FederatedDataset,
    FileDatasetSource,
    Split,
    read_params,
)
from feles.data.idx import read_idx
from feles.data.image_files import check_labels, files_unavailable, image_split
from feles.data.location import search_dirs
from feles.data.unpacked import unpacked_array

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
NUM_CLASSES = 10
INPUT_SHAPE = (1, 28, 28)


class IdxImageDataset(FileDatasetSource):
    """60,000 train and 10,000 test 28x28 grey images in 10 classes, from the four files of FILES."""

    name: ClassVar[str]
    mean: ClassVar[float]  # of the train images' pixels scaled to [0, 1]
    std: ClassVar[float]
    fallback_dirs: ClassVar[tuple[Path, ...]] = ()
    install_hint: ClassVar[str] = ""
    default_model: ClassVar[str] = "cnn"

    def load(self, request: DataRequest) -> FederatedDataset:
        read_params(self.name, request.params, {})
        directory = self.locate(request.data_dir)
        paths = {part: find_idx_file(directory, stem) for part, stem in FILES.items()}
        train = self._split(paths["train_images"], paths["train_labels"])
        test = self._split(paths["test_images"], paths["test_labels"])
        return FederatedDataset(train=train, test=test, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE)

    def locate(self, data_dir: Path | None) -> Path:
        searched = search_dirs(self.name, data_dir, self.fallback_dirs)
        for directory in searched:
            if all(find_idx_file(directory, stem) for stem in FILES.values()):
                return directory
        missing = next(stem for stem in FILES.values() if not find_idx_file(searched[0], stem))
        needed = "the four IDX .gz files: " + ", ".join(f"{stem}.gz" for stem in FILES.values())
        raise files_unavailable(self.name, f"file {missing}.gz", searched, data_dir, needed, self.install_hint)

    def _split(self, images_path: Path, labels_path: Path) -> Split:
        images = unpacked_array(images_path, read_idx) if images_path.suffix == ".gz" else read_idx(images_path)
        labels = read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != INPUT_SHAPE[1:]:
            found = f"{images.dtype} {images.shape}"
            raise ValueError(f"{images_path}: expected uint8 images of shape (n, 28, 28), got {found}")
        check_labels(labels, images.shape[0], NUM_CLASSES, str(labels_path))
        return image_split(images[:, None], labels, (self.mean,), (self.std,))


def find_idx_file(directory: Path, stem: str) -> Path | None:
    """`stem.gz` or `stem` in `directory`, or None."""
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


@DATASETS.register("mnist")
class Mnist(IdxImageDataset):
    """Handwritten digits 0-9."""

    name: ClassVar[str] = "mnist"
    # The train images' mean and standard deviation, the values torchvision's examples use.
    mean: ClassVar[float] = 0.1307
    std: ClassVar[float] = 0.3081
