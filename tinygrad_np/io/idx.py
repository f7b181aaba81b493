"""IDX files (the MNIST format): read and write, gzip or raw, with the header checked against the
file before anything is allocated."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .files import DataError, atomic_write

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_MAX_RATIO = 1032  # deflate never expands data by more than about 1032:1
_CHUNK = 1 << 20


def _read_exact(f, n: int, path, what: str) -> bytes:
    """Read exactly n bytes in bounded chunks (a hostile length allocates only what really arrives)."""
    parts, left = [], n
    while left:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            raise DataError(
                f"{path}: truncated: the header promises {n} bytes of {what}, the file "
                f"has {n - left}"
            )
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, detected from its first bytes) into an ndarray.

    The magic number, dtype code, dimensions and payload length are checked against the header
    before the payload is read; any mismatch raises DataError naming the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw) if compressed else raw
            try:
                return _parse_idx(f, path, size, compressed)
            except (OSError, EOFError, zlib.error) as e:
                raise DataError(f"{path}: not a readable gzip stream ({e})") from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected an IDX file") from None


def _parse_idx(f, path: Path, size: int, compressed: bool) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: truncated: {len(head)} bytes, too short for an IDX header")
    if head[:2] != b"\0\0":
        raise DataError(
            f"{path}: wrong magic number 0x{head.hex()}; an IDX file starts with two "
            f"zero bytes, a dtype code and the number of dimensions"
        )
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        raise DataError(
            f"{path}: unknown IDX dtype code 0x{code:02x}; expected one of "
            f"{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}"
        )
    if ndim == 0:
        raise DataError(f"{path}: the IDX header declares 0 dimensions")
    dims = np.frombuffer(_read_exact(f, 4 * ndim, path, "dimensions"), ">u4").astype(np.int64)
    dtype = _IDX_DTYPES[code]
    nbytes = int(np.prod(dims, dtype=object)) * dtype.itemsize  # Python ints: no overflow
    limit = size * _GZIP_MAX_RATIO if compressed else size - 4 - 4 * ndim
    shape = tuple(dims.tolist())
    if nbytes > limit and compressed:
        raise DataError(
            f"{path}: corrupt: the header declares shape {shape} ({nbytes} bytes of "
            f"data), more than a {size}-byte gzip file can expand to"
        )
    if nbytes > limit:
        raise DataError(
            f"{path}: truncated: the header declares shape {shape} ({nbytes} bytes of "
            f"data) but the file holds {limit}"
        )
    payload = _read_exact(f, nbytes, path, "data")
    if f.read(1):
        raise DataError(
            f"{path}: trailing bytes after the {nbytes} bytes that shape {shape} "
            f"declares; the header does not match the data"
        )
    return np.frombuffer(payload, dtype).astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def write_idx(path, array) -> None:
    """Write an array as an IDX file, gzip-compressed when path ends in .gz; atomically."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:]
    if key not in _IDX_CODES:
        raise TypeError(
            f"write_idx: dtype {array.dtype} has no IDX code; use uint8, int8, int16, "
            f"int32, float32 or float64"
        )
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: need 1 to 255 dimensions, got shape {array.shape}")
    code = _IDX_CODES[key]
    body = (
        bytes([0, 0, code, array.ndim])
        + np.asarray(array.shape, ">u4").tobytes()
        + np.ascontiguousarray(array, _IDX_DTYPES[code]).tobytes()
    )
    if str(path).endswith(".gz"):
        body = gzip.compress(body, mtime=0)
    atomic_write(path, lambda f: f.write(body))
