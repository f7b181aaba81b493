"""MNIST as CSV: a label column and 784 pixel columns (Kaggle's train.csv, mnist_train.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import DataError


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
