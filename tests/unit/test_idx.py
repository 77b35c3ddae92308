"""The IDX reader: exact round trips, and errors that name the bad file."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from feles.data.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
        np.array([3, -7, 2_000_000], dtype=np.int32),
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
    ],
    ids=["uint8-images", "int32-vector", "float32-matrix"],
)
def test_round_trip_is_exact(tmp_path: Path, name: str, array: np.ndarray) -> None:
    write_idx(tmp_path / name, array)
    loaded = read_idx(tmp_path / name)
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


def test_reads_the_standard_header_byte_by_byte(tmp_path: Path) -> None:
    # Magic 0x00000801 (unsigned bytes, 1 dimension), 3 items, then the labels: the MNIST label layout.
    (tmp_path / "labels").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 9, 0, 4]))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), [9, 0, 4])


def test_bad_magic_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "not-idx"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match=r"not-idx.*magic"):
        read_idx(path)


def test_unknown_type_code_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "odd-type"
    path.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(ValueError, match=r"odd-type.*0x42"):
        read_idx(path)


def test_truncated_data_names_the_file_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "short-idx1-ubyte"
    write_idx(path, np.arange(100, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"short-idx1-ubyte.*truncated.*108 bytes.*98"):
        read_idx(path)


def test_truncated_header_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "header"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match=r"header.*truncated IDX header"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(200))[:30])
    with pytest.raises(ValueError, match=r"cut\.gz.*gzip"):
        read_idx(path)


def test_a_file_is_read_straight_into_its_array(tmp_path: Path) -> None:
    """The peak memory of a read is the array's, not the file's bytes plus copies (three per worker before)."""
    import subprocess
    import sys

    path = tmp_path / "big-idx3-ubyte.gz"
    write_idx(path, np.zeros((40_000, 28, 28), dtype=np.uint8))  # 31 MB read, a few KB on disk
    code = (
        "import resource, sys\n"
        "from feles.data.idx import read_idx\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "array = read_idx(sys.argv[1])\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 / array.nbytes)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 1.5  # measured 1.0; reading the whole file and converting it took 2.0
