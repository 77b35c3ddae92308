"""A strict reader (and writer, for tests and tooling) of the IDX format used by MNIST-style datasets."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/).
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


#: Bytes decompressed per read: the file is read straight into the final array, never whole into memory.
READ_CHUNK = 1 << 20


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file, gzipped when the name ends in .gz; ValueError names a bad file.

    Read in chunks into the array it returns: a 60,000-image file peaks at the array's 47 MB, where reading the
    file, decompressing it and converting it held three copies at once in every process that loads the data.
    """
    path = Path(path)
    with path.open("rb") as handle:
        return read_idx_from(handle, str(path), gzipped=path.suffix == ".gz")


def read_idx_from(handle: BinaryIO, source: str, gzipped: bool) -> np.ndarray:
    """The array stored in an open IDX file (a zip archive's member, say); ValueError names `source`."""
    if not gzipped:
        return _read(source, handle)
    with gzip.GzipFile(fileobj=handle, mode="rb") as unpacked:
        try:
            return _read(source, unpacked)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{source}: corrupt or truncated gzip data ({error})") from error


def _read(path: str, handle: BinaryIO) -> np.ndarray:
    head = handle.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {head[:4].hex() or 'empty'})")
    code, ndim = head[2], head[3]
    if code not in _DTYPES:
        raise ValueError(f"{path}: unknown IDX data type code 0x{code:02x}")
    dimensions = handle.read(4 * ndim)
    header = 4 + 4 * ndim
    if len(dimensions) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({4 + len(dimensions)} bytes, {ndim} dimensions announced)")
    shape = struct.unpack(f">{ndim}I", dimensions)
    dtype = _DTYPES[code]
    array = np.empty(shape, dtype=dtype)
    filled = _fill(handle, memoryview(array.reshape(-1).view(np.uint8)))
    extra = len(handle.read()) if filled == array.nbytes else 0
    if filled < array.nbytes or extra:
        raise ValueError(
            f"{path}: truncated or oversized IDX data, shape {shape} of {dtype.name} needs {header + array.nbytes}"
            f" bytes, file has {header + filled + extra}"
        )
    return array.astype(dtype.newbyteorder("="), copy=False)


def _fill(handle: BinaryIO, view: memoryview) -> int:
    """Read into `view` until it is full or the file ends; the bytes read."""
    filled = 0
    while filled < len(view):
        count = handle.readinto(view[filled : filled + READ_CHUNK])
        if not count:
            break
        filled += count
    return filled


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write `array` as an IDX file, gzipped when the name ends in .gz."""
    path = Path(path)
    codes = {dtype.newbyteorder("="): code for code, dtype in _DTYPES.items()}
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; supported: {sorted(d.name for d in codes)}")
    big_endian = _DTYPES[codes[native]]
    header = bytes([0, 0, codes[native], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=big_endian).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)
