"""MNIST as CSV: a label column and 784 pixel columns (Kaggle's train.csv, mnist_train.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import DataError

LAYOUTS = (
    "a header naming a 'label' column anywhere (Kaggle's train.csv: label,pixel0,...,pixel783), "
    "or no header with the label in the first column (mnist_train.csv)"
)


def read_mnist_csv(path, label_column: str | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64) from a CSV of a label column and 784 pixels.

    The label column is label_column (a header name, or a 0-based column number) when given;
    otherwise the layout must be one of: a header naming a 'label' column, anywhere (Kaggle's
    Digit Recognizer train.csv), or no header with the label first (mnist_train.csv /
    mnist_test.csv). A header without a 'label' column is refused rather than guessed, and so is a
    headerless file whose first column is one value throughout (a pixel column). Messages
    give file line numbers (1-based, the header counted).
    """
    import pandas as pd  # a runtime dependency, imported where it is used

    path = Path(path)
    try:
        frame = pd.read_csv(path, header=None, dtype=str, engine="c", skip_blank_lines=False)
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
    first_line = 2 if header else 1  # the file line of data row 0
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
    label_col = _label_index(path, header, label_column)
    try:
        values = frame.to_numpy(dtype=np.float64)
    except ValueError as e:
        raise DataError(f"{path}: non-numeric value in the data ({e})") from None
    if np.isnan(values).any():
        row = int(np.flatnonzero(np.isnan(values).any(axis=1))[0])
        raise DataError(f"{path}: missing value on line {row + first_line}")
    if (
        header is None
        and label_column is None
        and len(values) > 1
        and (values[:, 0] == values[0, 0]).all()
    ):
        raise DataError(
            f"{path}: no header, and the first column, taken as the label, is {values[0, 0]:g} on "
            f"every line: it looks like a pixel column; give the label column's 0-based number "
            f"with --label-column (label_column=), or 0 if every label really is {values[0, 0]:g}"
        )
    labels = values[:, label_col]
    pixels = np.delete(values, label_col, axis=1)
    bad = (pixels < 0) | (pixels > 255) | (pixels != np.round(pixels))
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise DataError(
            f"{path}: pixel value {pixels[row, col]:g} on line {row + first_line} is not an "
            f"integer in 0-255; pixel values must be integers in 0-255"
        )
    fractional = labels != np.round(labels)
    if fractional.any():
        row = int(np.flatnonzero(fractional)[0])
        raise DataError(
            f"{path}: label {labels[row]:g} on line {row + first_line} is not a whole number"
        )
    outside = (labels < 0) | (labels > 9)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(f"{path}: label {labels[row]:g} on line {row + first_line} is outside 0-9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def _label_index(path: Path, header: list[str] | None, label_column) -> int:
    """The column number of the labels, from label_column, the header, or the headerless layout."""
    if label_column is None:
        if header is None:
            return 0
        if "label" in header:
            return header.index("label")
        shown = ", ".join(header[:3]) + (", ..." if len(header) > 3 else "")
        raise DataError(
            f"{path}: the header ({shown}) has no 'label' column, so the labels cannot be told "
            f"from the pixels; name that column 'label' or give its name with --label-column "
            f"(label_column=). Accepted layouts: {LAYOUTS}"
        )
    if isinstance(label_column, int) or str(label_column).isdigit():
        index = int(label_column)
        if not 0 <= index < 785:
            raise DataError(f"{path}: label column {index} is outside the 785 columns (0-784)")
        return index
    if header is None or label_column not in header:
        where = "the file has no header" if header is None else "the header has no such column"
        raise DataError(
            f"{path}: no label column named {label_column!r} ({where}); give a column name "
            f"from the header or a 0-based column number"
        )
    return header.index(label_column)


def _is_number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False
