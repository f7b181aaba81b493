"""Data: IDX files (read/write, gzip or raw), MNIST from the bundled sample, a directory, CSV files or
a checksum-verified download into a cache; seeded mini-batches and shift augmentation.

Every bad file raises DataError naming the file. Nothing here unpickles, and every file written goes
to a temporary name first and is renamed into place.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data file is missing, corrupt, truncated or not what it claims to be; the message names it."""


# --- IDX ---

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


def atomic_write(path, write) -> None:
    """Call write(file) on a temporary file beside path, fsync it, then rename it over path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


# --- MNIST sources ---

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# MD5 of the published gzip files (from the datasets' own pages; Fashion-MNIST uses the same names).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}

SAMPLE_DIR = Path(__file__).parent / "datasets"


@dataclass
class MNIST:
    """Images (N, 28, 28) uint8 and labels (N,) int64 for train and test, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str  # "mnist", "fashion-mnist", "sample", "idx-dir" or "csv"
    source: str  # one line: which data, from where, and why

    def __repr__(self) -> str:
        return (
            f"MNIST({self.name}: {len(self.x_train)} train, {len(self.x_test)} test; {self.source})"
        )


def _find(directory: Path, stem: str) -> Path:
    """The IDX file for stem in directory, gzip or raw, with '-' or '.' before 'idx'."""
    names = [stem, stem.replace("-idx", ".idx")]
    for name in names:
        for candidate in (directory / (name + ".gz"), directory / name):
            if candidate.is_file():
                return candidate
    raise DataError(
        f"{directory}: no {stem}[.gz] here; a data directory holds the four standard "
        f"MNIST files ({', '.join(f + '.gz' for f in FILES.values())})"
    )


def _validate(x: np.ndarray, y: np.ndarray, x_path, y_path, classes: int = 10) -> tuple:
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise DataError(
            f"{x_path}: expected uint8 images of shape (N, 28, 28), got {x.dtype} {x.shape}"
        )
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{y_path}: expected integer labels of shape (N,), got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{y_path}: {len(y)} labels for the {len(x)} images of {x_path}")
    if y.size and (y.min() < 0 or y.max() >= classes):
        bad = int(np.flatnonzero((y < 0) | (y >= classes))[0])
        raise DataError(f"{y_path}: label {int(y[bad])} at row {bad} is outside 0-{classes - 1}")
    return x, y.astype(np.int64)


def load_idx_dir(directory, name: str = "idx-dir", why: str = "") -> MNIST:
    """MNIST (or Fashion-MNIST) from a directory holding the four standard IDX files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"{directory}: not a directory; --data-dir must name a folder holding the "
            f"four MNIST IDX files"
        )
    paths = {key: _find(directory, stem) for key, stem in FILES.items()}
    arrays = {key: read_idx(p) for key, p in paths.items()}
    xtr, ytr = _validate(
        arrays["train_images"], arrays["train_labels"], paths["train_images"], paths["train_labels"]
    )
    xte, yte = _validate(
        arrays["test_images"], arrays["test_labels"], paths["test_images"], paths["test_labels"]
    )
    return MNIST(xtr, ytr, xte, yte, name, why or f"IDX files from {directory}")


def load_sample() -> MNIST:
    """The bundled 8,000-digit MNIST sample: 6,000 train and 2,000 test (see datasets/README.md)."""
    return load_idx_dir(
        SAMPLE_DIR, "sample", "the bundled 8,000-digit MNIST sample (6,000 train, 2,000 test)"
    )


def read_mnist_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64) from a CSV of a label column and 784 pixels.

    Reads the Kaggle Digit Recognizer train.csv (header 'label,pixel0,...') and the common
    mnist_train.csv / mnist_test.csv (with or without a header; the label first).
    """
    import pandas as pd  # a runtime dependency, imported where it is used

    path = Path(path)
    try:
        frame = pd.read_csv(path, header=None, dtype=str, engine="c")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV file") from None
    except Exception as e:  # pandas raises many kinds on hostile input; all mean "not our CSV"
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise DataError(f"{path}: not a readable CSV file ({first})") from None
    header = None
    if len(frame) and not _is_number(frame.iloc[0, 0]):
        header, frame = [str(c).strip() for c in frame.iloc[0]], frame.iloc[1:]
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    if frame.shape[1] != 785:
        hint = (
            " (this looks like a test file without labels; give a file with a label column)"
            if frame.shape[1] == 784
            else ""
        )
        raise DataError(
            f"{path}: expected 785 columns (a label and 784 pixels), got {frame.shape[1]}{hint}"
        )
    label_col = header.index("label") if header and "label" in header else 0
    try:
        values = frame.to_numpy(dtype=np.float64)
    except ValueError as e:
        raise DataError(f"{path}: non-numeric value in the data ({e})") from None
    if np.isnan(values).any():
        row = int(np.flatnonzero(np.isnan(values).any(axis=1))[0]) + (2 if header else 1)
        raise DataError(f"{path}: missing value on line {row}")
    labels = values[:, label_col]
    pixels = np.delete(values, label_col, axis=1)
    if (pixels < 0).any() or (pixels > 255).any() or (pixels != np.round(pixels)).any():
        raise DataError(f"{path}: pixel values must be integers in 0-255")
    if (labels != np.round(labels)).any() or (labels < 0).any() or (labels > 9).any():
        bad = int(np.flatnonzero((labels != np.round(labels)) | (labels < 0) | (labels > 9))[0])
        raise DataError(f"{path}: label {labels[bad]:g} on data row {bad} is outside 0-9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def _is_number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def load_csv(train_csv, test_csv=None, test_fraction: float = 1 / 6, seed: int = 0) -> MNIST:
    """MNIST from CSV files; without a test CSV, a seeded split of the training rows is held out."""
    xtr, ytr = read_mnist_csv(train_csv)
    if test_csv is not None:
        xte, yte = read_mnist_csv(test_csv)
        why = f"CSV files {train_csv} and {test_csv}"
    else:
        order = np.random.default_rng(seed).permutation(len(xtr))
        cut = max(1, int(round(len(xtr) * test_fraction)))
        xte, yte, xtr, ytr = xtr[order[:cut]], ytr[order[:cut]], xtr[order[cut:]], ytr[order[cut:]]
        why = f"CSV file {train_csv}, {cut} rows held out for testing (no --test-csv)"
    return MNIST(xtr, ytr, xte, yte, "csv", why)


# --- download ---


def cache_dir(cache=None) -> Path:
    """Where downloads go: cache if given, else $TINYGRAD_NP_DATA, else the user cache directory."""
    if cache is not None:
        return Path(cache)
    if os.environ.get("TINYGRAD_NP_DATA"):
        return Path(os.environ["TINYGRAD_NP_DATA"])
    base = (
        os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA") or Path.home() / ".cache"
    )
    return Path(base) / "tinygrad_np"


class DownloadError(OSError):
    """Every mirror failed for a file; the message lists what each one said."""


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Download url to dest via a temporary file; keep it only if complete and its MD5 matches."""
    digest = hashlib.md5(usedforsecurity=False)

    def write(f):
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            got = 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                f.write(chunk)
                digest.update(chunk)
                got += len(chunk)
            if expected is not None and got != int(expected):
                raise OSError(f"connection dropped after {got} of {expected} bytes")
        if digest.hexdigest() != md5:
            raise DataError(
                f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, expected {md5}); "
                f"the file was not kept"
            )

    atomic_write(dest, write)


def download(
    dataset: str = "mnist",
    cache=None,
    mirrors=None,
    timeout: float = 10.0,
    attempts: int = 2,
    checksums: dict[str, str] | None = None,
) -> Path:
    """Fetch the four IDX files of dataset ('mnist' or 'fashion-mnist') into the cache; return the folder.

    checksums (file name -> MD5) defaults to the dataset's published files. Files already there
    with the right checksum are kept. Each file is tried on every mirror,
    `attempts` times each, with `timeout` seconds per network operation. A file is written under a
    temporary name and renamed into place only after its checksum matched.
    """
    if dataset not in CHECKSUMS:
        raise ValueError(
            f"download: unknown dataset {dataset!r}; choose one of {sorted(CHECKSUMS)}"
        )
    folder = cache_dir(cache) / dataset
    mirrors = MIRRORS[dataset] if mirrors is None else mirrors
    for name, md5 in (checksums or CHECKSUMS[dataset]).items():
        dest = folder / name
        if dest.is_file() and _md5(dest) == md5:
            continue
        errors = []
        for attempt in range(attempts):
            for mirror in mirrors:
                try:
                    _fetch(mirror + name, dest, md5, timeout)
                    break
                except (OSError, DataError) as e:  # URLError, timeouts and resets are OSErrors
                    errors.append(f"{mirror}{name}: {e}")
            else:
                if attempt + 1 < attempts:
                    time.sleep(0.2 * (attempt + 1))
                continue
            break
        else:
            raise DownloadError(f"download of {name} failed on every mirror: " + "; ".join(errors))
    return folder


def cached(
    dataset: str = "mnist", cache=None, checksums: dict[str, str] | None = None
) -> Path | None:
    """The cache folder if all four files of dataset are there (they were verified when written)."""
    folder = cache_dir(cache) / dataset
    ok = all((folder / name).is_file() for name in (checksums or CHECKSUMS[dataset]))
    return folder if ok else None


def load_mnist(
    dataset: str = "auto",
    data_dir=None,
    train_csv=None,
    test_csv=None,
    cache=None,
    timeout: float = 10.0,
    mirrors=None,
    checksums: dict[str, str] | None = None,
) -> MNIST:
    """MNIST from the first source that applies, with a one-line reason in .source:

    - data_dir: a folder with the four IDX files; train_csv (+ test_csv): CSV files;
    - dataset 'mnist' / 'fashion-mnist': the cache, else a download (errors if that fails);
    - 'sample': the bundled 8,000-digit sample;
    - 'auto': full MNIST when cached or downloadable within about `timeout` seconds, else the sample.

    mirrors and checksums override the published ones (for a private mirror, or tests).
    """
    if dataset not in ("auto", "mnist", "fashion-mnist", "sample"):
        raise ValueError(
            f"load_mnist: unknown dataset {dataset!r}; choose auto, mnist, fashion-mnist or sample"
        )
    if data_dir is not None:
        name = dataset if dataset in ("mnist", "fashion-mnist") else "idx-dir"
        return load_idx_dir(data_dir, name)
    if train_csv is not None:
        return load_csv(train_csv, test_csv)
    if dataset == "sample":
        return load_sample()
    target = "mnist" if dataset == "auto" else dataset
    folder = cached(target, cache, checksums)
    if folder is not None:
        return load_idx_dir(folder, target, f"full {target} from the cache {folder}")
    auto = dataset == "auto"
    n_mirrors = len(MIRRORS[target] if mirrors is None else mirrors) or 1
    try:  # auto: one try per mirror, sharing `timeout` between them, so offline fails in ~timeout
        folder = download(
            target,
            cache,
            mirrors,
            timeout / n_mirrors if auto else timeout,
            attempts=1 if auto else 2,
            checksums=checksums,
        )
    except (DownloadError, OSError) as e:
        if dataset != "auto":
            raise
        sample = load_sample()
        sample.source += f"; full MNIST is not cached and could not be downloaded ({_short(e)})"
        return sample
    return load_idx_dir(folder, target, f"full {target}, downloaded to {folder}")


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) < 160 else text[:157] + "..."


# --- batches and augmentation ---


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    rng: np.random.Generator | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
):
    """Yield (x_batch, y_batch) in a seeded random order (or in order when shuffle is False)."""
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    if shuffle and rng is None:
        raise ValueError("batches: shuffling needs rng=np.random.default_rng(seed)")
    order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
    stop = len(x) - len(x) % batch_size if drop_last else len(x)
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx]


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each image (N, H, W) by up to max_shift pixels in each direction, filling with zeros."""
    if max_shift == 0:
        return images
    n, h, w = images.shape
    out = np.zeros_like(images)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    for dy in range(-max_shift, max_shift + 1):  # one slice assignment per (dy, dx) pair
        for dx in range(-max_shift, max_shift + 1):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            if rows.size:
                out[rows, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
                    rows, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
                ]
    return out
