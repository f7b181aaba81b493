"""Downloads: every file's MD5 checked against the published value before it is renamed into the
cache, a bounded number of retries over the mirrors."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..io.files import DataError, atomic_write

_CHUNK = 1 << 20

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
