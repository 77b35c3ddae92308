"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): MNIST's layout and sizes, 10 classes of clothes."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from feles.data.dataset import DATASETS
from feles.data.mnist import FILES, IdxImageDataset

__all__ = ["DEFAULT_DIR", "FILES", "FashionMnist"]

# Where Debian's package dataset-fashion-mnist installs the files; looked in after the cache folder.
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
MEAN = 0.2860
STD = 0.3530


@DATASETS.register("fashion_mnist")
class FashionMnist(IdxImageDataset):
    """60,000 train and 10,000 test 28x28 grey images of clothes in 10 classes."""

    name: ClassVar[str] = "fashion_mnist"
    mean: ClassVar[float] = MEAN
    std: ClassVar[float] = STD
    fallback_dirs: ClassVar[tuple[Path, ...]] = (DEFAULT_DIR,)
    install_hint: ClassVar[str] = (
        f"or install Debian's package with `apt-get install dataset-fashion-mnist` (files land in {DEFAULT_DIR})"
    )
