"""Compressed dataset arrays unpacked once and memory-mapped by every later process (feles/data/unpacked.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from feles.data.idx import read_idx, write_idx
from feles.data.unpacked import MIN_BYTES, unpacked_array, unpacked_path


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FELES_UNPACKED_CACHE", raising=False)
    return tmp_path / "cache"


def _images(tmp_path: Path, count: int = 1400) -> tuple[Path, np.ndarray]:
    images = np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)  # 1.1 MB: shared
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, images)
    return path, images


def test_the_first_read_writes_the_copy_and_every_read_maps_it_read_only(tmp_path: Path, cache_home: Path) -> None:
    path, images = _images(tmp_path)
    reads: list[Path] = []

    def counting_read(source: Path) -> np.ndarray:
        reads.append(source)
        return read_idx(source)

    first, second = unpacked_array(path, counting_read), unpacked_array(path, counting_read)
    assert reads == [path]  # decompressed once
    assert unpacked_path(path).parent == cache_home / "feles" / "unpacked" and unpacked_path(path).exists()
    for array in (first, second):
        assert isinstance(array, np.memmap) and not array.flags.writeable
        assert np.array_equal(array, images)


def test_a_changed_source_file_is_read_again(tmp_path: Path, cache_home: Path) -> None:
    path, _ = _images(tmp_path)
    unpacked_array(path, read_idx)
    _, other = _images(tmp_path, count=1500)
    os.utime(path, ns=(1, 1))  # a new size and modification time: another copy
    assert np.array_equal(unpacked_array(path, read_idx), other)


def test_small_arrays_and_unwritable_folders_stay_private(tmp_path: Path, cache_home: Path) -> None:
    path, images = _images(tmp_path, count=MIN_BYTES // 784 - 1)
    assert not isinstance(unpacked_array(path, read_idx), np.memmap)
    assert not (cache_home / "feles" / "unpacked").exists()
    big, images = _images(tmp_path / "..", count=1400)
    cache_home.mkdir(parents=True, exist_ok=True)
    (cache_home / "feles").write_text("a file where the folder should be")
    array = unpacked_array(big, read_idx)
    assert np.array_equal(array, images) and not isinstance(array, np.memmap)


def test_the_cache_can_be_turned_off(tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FELES_UNPACKED_CACHE", "off")
    path, _ = _images(tmp_path)
    assert not isinstance(unpacked_array(path, read_idx), np.memmap)
    assert not unpacked_path(path).exists()


def test_processes_loading_fashion_mnist_share_one_copy_of_the_images(tmp_path: Path, cache_home: Path) -> None:
    """Two processes load the dataset: the second maps the first's copy and gets the same pixels."""
    folder = tmp_path / "fashion"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for stem, count in (("train", 1400), ("t10k", 1400)):
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, count, dtype=np.uint8))
    script = (
        "import sys, hashlib, numpy as np; from feles.data import load_dataset, DataRequest; "
        f"d = load_dataset('fashion_mnist', DataRequest(0, 0, np.full(10, 100), {str(folder)!r}, {{}})); "
        "x = d.train.x.numpy(); mapped = any('unpacked' in line for line in open('/proc/self/maps')); "
        "print(hashlib.sha256(x.tobytes()).hexdigest(), mapped)"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    runs = [subprocess.run([sys.executable, "-W", "error", "-c", script], env=env, capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]  # fmt: skip
    assert runs[0] == runs[1] and runs[0][1] == "True"  # the same pixels, both mapped from the copy
    assert len(list((cache_home / "feles" / "unpacked").glob("*.npy"))) == 2  # train and test images
