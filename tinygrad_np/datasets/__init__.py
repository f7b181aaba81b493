"""MNIST and Fashion-MNIST: the bundled sample, a folder of IDX files, CSV files, the files a
system package installs (Debian's dataset-fashion-mnist), or a checksum-verified download into a
cache (datasets/remote.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.files import DataError
from ..io.idx import read_idx
from ..io.mnist_csv import read_mnist_csv
from .remote import MIRRORS, DownloadError, cached, download

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

SAMPLE_DIR = Path(__file__).parent

# Where system packages install data sets, one folder per name: Debian's dataset-fashion-mnist puts
# the four IDX files of Fashion-MNIST in /usr/share/datasets/fashion-mnist.
SYSTEM_DIR = Path("/usr/share/datasets")
PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}  # the Debian package of each data set

# The names of the ten classes, by label (MNIST's are its digits).
CLASSES = {
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}


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
    if len(x) == 0:
        raise DataError(f"{x_path}: holds 0 images; a training or test set needs at least one")
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


def system_folder(dataset: str, system_dir=SYSTEM_DIR) -> Path | None:
    """system_dir/dataset when it holds all four IDX files (gzip or raw), else None."""
    if system_dir is None:
        return None
    folder = Path(system_dir) / dataset
    try:
        for stem in FILES.values():
            _find(folder, stem)
    except DataError:
        return None
    return folder


def _install_hint(dataset: str, system_dir) -> str:
    package = PACKAGES.get(dataset)
    if package is None:
        return ""
    where = Path(system_dir if system_dir is not None else SYSTEM_DIR) / dataset
    return f"; or install it from your system's packages: apt-get install {package} (into {where})"


def load_sample() -> MNIST:
    """The bundled 8,000-digit MNIST sample: 6,000 train and 2,000 test (see datasets/README.md)."""
    return load_idx_dir(
        SAMPLE_DIR, "sample", "the bundled 8,000-digit MNIST sample (6,000 train, 2,000 test)"
    )


def load_csv(
    train_csv,
    test_csv=None,
    test_fraction: float = 1 / 6,
    seed: int = 0,
    label_column: str | int | None = None,
) -> MNIST:
    """MNIST from CSV files; without a test CSV, a seeded split of the training rows is held out.

    label_column names the label column in both files (see read_mnist_csv for the layouts).
    """
    xtr, ytr = read_mnist_csv(train_csv, label_column)
    if test_csv is not None:
        xte, yte = read_mnist_csv(test_csv, label_column)
        why = f"CSV files {train_csv} and {test_csv}"
    else:
        if len(xtr) < 2:
            raise DataError(
                f"{train_csv}: {len(xtr)} data row; holding 1/6 out for testing needs at least "
                f"2 rows (or give --test-csv)"
            )
        order = np.random.default_rng(seed).permutation(len(xtr))
        cut = max(1, int(round(len(xtr) * test_fraction)))
        xte, yte, xtr, ytr = xtr[order[:cut]], ytr[order[:cut]], xtr[order[cut:]], ytr[order[cut:]]
        why = f"CSV file {train_csv}, {cut} rows held out for testing (no --test-csv)"
    return MNIST(xtr, ytr, xte, yte, "csv", why)


def load_mnist(
    dataset: str = "auto",
    data_dir=None,
    train_csv=None,
    test_csv=None,
    cache=None,
    timeout: float = 10.0,
    mirrors=None,
    checksums: dict[str, str] | None = None,
    deadline: float | None = None,
    progress: bool = True,
    system_dir=SYSTEM_DIR,
) -> MNIST:
    """MNIST from the first source that applies, with a one-line reason in .source:

    - data_dir: a folder with the four IDX files; train_csv (+ test_csv): CSV files;
    - dataset 'mnist' / 'fashion-mnist': system_dir/<dataset> when it holds the four IDX files
      (Debian's dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist; None: do not
      look), else the cache, else a download (errors if that fails; for Fashion-MNIST the error
      names the package to install), with
      `timeout` seconds per network operation and `deadline` seconds per file (None: download's
      default, 300 s);
    - 'sample': the bundled 8,000-digit sample;
    - 'auto': full MNIST when cached or downloadable within about `timeout` seconds, else the sample.
      The mirrors share `timeout` (one try each), and it is also each file's total deadline unless
      `deadline` is given. auto: a file that does not arrive within `timeout` seconds counts as
      unreachable; ask for 'mnist' to wait longer.

    mirrors and checksums override the published ones (for a private mirror, or tests). progress:
    a byte bar (tqdm) or a plain line every few seconds on stderr while a download takes a while.
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
    folder = system_folder(target, system_dir)
    if folder is not None:
        package = PACKAGES.get(target)
        why = f" (the system package {package})" if package else ""
        return load_idx_dir(folder, target, f"full {target} from {folder}{why}")
    folder = cached(target, cache, checksums)
    if folder is not None:
        return load_idx_dir(folder, target, f"full {target} from the cache {folder}")
    auto = dataset == "auto"
    n_mirrors = len(MIRRORS[target] if mirrors is None else mirrors) or 1
    if not (MIRRORS[target] if mirrors is None else mirrors) and not auto:
        raise DownloadError(
            f"{target} is not installed or cached, and no download source is configured"
            + _install_hint(target, system_dir)
        )
    if auto and deadline is None:  # a trickling mirror is as unreachable as a dead one
        deadline = timeout
    try:  # auto: one try per mirror, sharing `timeout` between them, so offline fails in ~timeout
        folder = download(
            target,
            cache,
            mirrors,
            timeout / n_mirrors if auto else timeout,
            attempts=1 if auto else 2,
            checksums=checksums,
            progress=progress,
            **({} if deadline is None else {"deadline": deadline}),
        )
    except (DownloadError, OSError) as e:
        if dataset != "auto":
            hint = _install_hint(target, system_dir)
            if hint and isinstance(e, DownloadError):
                raise DownloadError(f"{e}{hint}") from None
            raise
        sample = load_sample()
        sample.source += f"; full MNIST is not cached and could not be downloaded ({_short(e)})"
        return sample
    return load_idx_dir(folder, target, f"full {target}, downloaded to {folder}")


def _short(error: Exception, limit: int = 160) -> str:
    """A download error in at most limit characters, on one line, for the trainer's first line:
    mirror URLs shortened to their host, the first mirror's reason kept (the others counted), and a
    cut, if one is still needed, at a word boundary, marked with '…'."""

    text = " ".join(str(error).split())
    if len(text) <= limit:
        return text

    def cut(s: str, n: int) -> str:  # at most n characters, ending at a word boundary, then '…'
        if len(s) <= n:
            return s
        space = s.rfind(" ", 0, n)
        keep = s[:space] if space > n // 2 else s[: n - 1]  # no space late enough: a hard cut
        return keep.rstrip(" ;:,(<[") + "…"

    head, sep, rest = text.partition(" on every mirror: ")
    if not sep:
        return cut(text, limit)
    url = r"[a-zA-Z][\w+.-]*://"
    parts = re.split(rf"; (?={url})", rest)  # one per try; a reason may hold '; ' itself
    reasons = [re.sub(rf"^{url}([^/\s]+)\S*: ", r"\1: ", r) for r in parts]
    more = f"; +{len(reasons) - 1} more" if len(reasons) > 1 else ""
    text = head + sep + "; ".join(reasons)
    if len(text) <= limit:
        return text
    prefix = head.removeprefix("download of ") + sep  # the caller says it was a download
    room = limit - len(prefix) - len(more)
    if room < 24:  # the prefix alone is too long to leave a useful reason
        return cut(prefix + reasons[0] + more, limit)
    return prefix + cut(reasons[0], room) + more
