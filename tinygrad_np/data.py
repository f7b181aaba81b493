"""Data: mini-batches and augmentation; and, for convenience, the readers and loaders of
tinygrad_np.io and tinygrad_np.datasets under one name (tg.data.read_idx, tg.data.load_mnist, ...).
"""

from __future__ import annotations

import numpy as np

from .datasets import (
    CLASSES,
    FILES,
    MNIST,
    SAMPLE_DIR,
    SYSTEM_DIR,
    load_csv,
    load_idx_dir,
    load_mnist,
    load_sample,
    system_folder,
)
from .datasets.remote import CHECKSUMS, MIRRORS, DownloadError, cache_dir, cached, download
from .io.files import DataError, atomic_write
from .io.idx import read_idx, write_idx
from .io.mnist_csv import read_mnist_csv

__all__ = [
    "atomic_write",
    "batches",
    "cache_dir",
    "cached",
    "CHECKSUMS",
    "CLASSES",
    "DataError",
    "download",
    "DownloadError",
    "FILES",
    "load_csv",
    "load_idx_dir",
    "load_mnist",
    "load_sample",
    "MIRRORS",
    "MNIST",
    "random_shift",
    "read_idx",
    "read_mnist_csv",
    "SAMPLE_DIR",
    "SYSTEM_DIR",
    "system_folder",
    "write_idx",
]


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
