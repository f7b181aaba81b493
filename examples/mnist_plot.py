"""The picture of an MNIST run: training curves, the confusion matrix, and misclassified digits.

    from mnist_plot import PLOT_FORMATS, confusion, plot
    plot(Path("run.png"), history, data.x_test, data.y_test, predicted, title)

matplotlib is an optional extra (``pip install 'tinygrad_np[plot]'``): this module imports without
it, and only plot() needs it.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinygrad_np.io import atomic_write

PLOT_FORMATS = (".png", ".pdf", ".svg")  # the suffixes plot() writes, each in its own format

MAX_WRONG = 24  # misclassified digits shown (the first ones in test-set order)
_WRONG_COLUMNS = 4
_TITLE_CHARS = 150  # the most characters of the heading one line holds (12 pt bold, 16 in)
FIGSIZE = (16, 9)
DPI = 100
# no creation date in PDF/SVG: the same run draws the same bytes
_METADATA = {".pdf": {"CreationDate": None}, ".svg": {"Date": None}, ".png": {}}


def confusion(labels, predicted, n_classes: int = 10) -> np.ndarray:
    """The (n_classes, n_classes) count matrix: row = true class, column = predicted class.

    Always square and full size, whatever classes occur (a class never predicted is a zero column).
    """
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(
            f"labels and predicted must be 1-D and the same length, got shapes "
            f"{labels.shape} and {predicted.shape}"
        )
    if labels.size and labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if predicted.size and predicted.dtype.kind not in "iu":
        raise ValueError(f"predicted must be integers, got {predicted.dtype}")
    for name, values in (("labels", labels), ("predicted", predicted)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(
                f"{name} must lie in 0-{n_classes - 1}, got {values.min()}-{values.max()}"
            )
    flat = labels.astype(np.int64) * n_classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _check_path(path) -> str:
    """The savefig format for path's suffix; ValueError naming path for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise ValueError(
            f"{path}: a plot is written as {', '.join(PLOT_FORMATS)}; "
            f"got {Path(path).suffix or 'no suffix'}"
        )
    return suffix


def _arrow() -> str:
    """'→' if the default font draws it, else '->'."""
    try:
        from matplotlib import font_manager
        from matplotlib.ft2font import FT2Font

        font = FT2Font(font_manager.findfont(font_manager.FontProperties()))
        return "→" if font.get_char_index(0x2192) else "->"
    except (ImportError, OSError, RuntimeError, ValueError):  # unsure: ASCII is always legible
        return "->"


def _heading(title) -> str:
    """title on one line if it fits the figure's width, else broken at its ' · ' separators."""
    title = " ".join(str(title).split())
    if len(title) <= _TITLE_CHARS:
        return title or " "
    lines, line = [], ""
    for part in title.split(" · "):
        candidate = f"{line} · {part}" if line else part
        if line and len(candidate) > _TITLE_CHARS:
            lines.append(line + " ·")
            line = part
        else:
            line = candidate
    lines.append(line)
    return "\n".join(w for text in lines for w in textwrap.wrap(text, _TITLE_CHARS))


def _series(history: Sequence[dict], key: str):
    """(epochs, values) for the records that have a finite value under key."""
    points = []
    for h in history:
        value = h.get(key)
        if value is None:
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            points.append((int(h["epoch"]), value))
    return [p[0] for p in points], [p[1] for p in points]


def _epoch_axis(ax, history) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 5, 10], integer=True))
    epochs = [int(h["epoch"]) for h in history]
    if len(set(epochs)) == 1:  # one point: a window around it, one tick, room for the legend
        ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
        ax.set_xticks([epochs[0]])
        ax.margins(y=0.5)
    else:
        ax.margins(y=0.12)  # room for the legend above and below the curves
    ax.grid(alpha=0.3)


def _draw_curves(fig, history) -> None:
    from matplotlib.ticker import ScalarFormatter

    ax_loss, ax_acc, ax_lr = fig.subplots(3, 1, sharex=True)
    dots = {"marker": "o", "markersize": 3} if len(history) <= 30 else {}  # many: a plain line
    for key, label in (("loss", "train"), ("test_loss", "test")):
        x, y = _series(history, key)
        if x:
            ax_loss.plot(x, y, **dots, label=label)
    ax_loss.set_title("loss (cross-entropy)")
    ax_loss.set_ylabel("loss")

    for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
        x, y = _series(history, key)
        if x:
            ax_acc.plot(x, [100 * v for v in y], **dots, label=f"{label} (last {100 * y[-1]:.2f}%)")
    ax_acc.set_title("accuracy")
    ax_acc.set_ylabel("accuracy (%)")

    x, y = _series(history, "lr")
    if x:
        ax_lr.plot(x, y, **dots, color="tab:green")
        if min(y) >= 0 and max(y) > 0:  # against zero: a schedule's shape, not a zoomed wiggle
            ax_lr.set_ylim(0, max(y) * 1.15)
    ax_lr.set_title("learning rate")
    ax_lr.set_ylabel("lr")
    formatter = ScalarFormatter(useMathText=True)
    formatter.set_powerlimits((-3, 4))
    ax_lr.yaxis.set_major_formatter(formatter)

    for ax in (ax_loss, ax_acc, ax_lr):
        _epoch_axis(ax, history)
        if ax is not ax_lr:
            ax.set_xlabel("")
            ax.tick_params(labelbottom=True)  # sharex hides them; each panel keeps its epochs
    for ax in (ax_loss, ax_acc):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=9)


def _draw_confusion(fig, matrix: np.ndarray, names: list[str]) -> None:
    from matplotlib.colors import LogNorm

    n = len(names)
    ax = fig.subplots()
    total, right = int(matrix.sum()), int(np.trace(matrix))
    # log colours: the diagonal dominates, and the errors off it are what the picture is for
    shown = np.ma.masked_equal(matrix, 0)
    cmap = _cmap("Blues")
    vmax = max(int(matrix.max()), 2)
    ax.imshow(shown, cmap=cmap, norm=LogNorm(vmin=1, vmax=vmax), aspect="equal")
    digits = len(str(int(matrix.max()))) if matrix.size else 1
    fontsize = 10 if digits <= 3 else 8.5 if digits == 4 else 7
    for i in range(n):
        for j in range(n):
            count = int(matrix[i, j])
            if count == 0:
                ax.text(j, i, "·", ha="center", va="center", color="0.75", fontsize=fontsize)
                continue
            dark = math.log(count) > 0.6 * math.log(vmax)
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if dark else "black",
                fontweight="bold" if i == j else "normal",
            )
    ax.set_xticks(
        range(n),
        names,
        rotation=0 if max(map(len, names)) <= 2 else 45,
        ha="center" if max(map(len, names)) <= 2 else "right",
    )
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    errors = total - right
    accuracy = f" ({100 * errors / total:.2f}%)" if total else ""
    ax.set_title(
        f"confusion matrix (rows true, columns predicted)\n"
        f"{total:,} test images, {errors:,} wrong{accuracy}; colour: log count"
    )


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="white")  # white: a zero count


def _draw_wrong(fig, images, labels, predicted, names: list[str], arrow: str) -> None:
    wrong = np.flatnonzero(labels != predicted)
    shown = wrong[:MAX_WRONG]
    if len(shown) == 0:
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified test images", ha="center", va="center", fontsize=14)
        return
    # a fixed grid of 4 a row: every digit the same (big) size; only the digits shown get a panel
    rows = math.ceil(MAX_WRONG / _WRONG_COLUMNS)
    grid = fig.add_gridspec(rows, _WRONG_COLUMNS)
    scale = {"vmin": 0, "vmax": 255} if images.dtype == np.uint8 else {}
    long_names = max(len(names[int(labels[i])]) + len(names[int(predicted[i])]) for i in shown) > 10
    for k, i in enumerate(shown):
        ax = fig.add_subplot(grid[k // _WRONG_COLUMNS, k % _WRONG_COLUMNS])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(images[i], cmap="gray_r", interpolation="nearest", **scale)
        true, pred = names[int(labels[i])], names[int(predicted[i])]
        if long_names:
            ax.set_title(f"{true} {arrow}\n{pred}", fontsize=9, color="firebrick")
        else:
            ax.set_title(f"{true} {arrow} {pred}", fontsize=12, color="firebrick")
        for spine in ax.spines.values():
            spine.set_color("0.7")
    more = f" (first {len(shown)} of {len(wrong):,})" if len(wrong) > len(shown) else ""
    fig.suptitle(f"misclassified test images, true {arrow} predicted{more}", fontsize=12)


def plot(path, history, images, labels, predicted, title, classes=None) -> None:
    """Write the run's picture to path (.png, .pdf or .svg, by its suffix), atomically.

    history: the per-epoch records (epoch, loss, test_loss, lr, train_accuracy, test_accuracy,
    seconds); empty for an evaluation-only run, which draws no curves. images (N, 28, 28) uint8
    test images with their labels and predicted classes (N,); title: one line, the figure's
    heading; classes: the class names (default "0".."9").
    """
    suffix = _check_path(path)
    path = Path(path)
    images = np.asarray(images)
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(
            f"images must be (N, H, W) with one label each, got {images.shape} and {labels.shape}"
        )
    names = [str(c) for c in classes] if classes is not None else [str(d) for d in range(10)]
    matrix = confusion(labels, predicted, n_classes=len(names))
    history = list(history or [])

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ModuleNotFoundError(
            f"{path}: drawing the plot needs matplotlib: pip install 'tinygrad_np[plot]'"
        ) from e
    arrow = _arrow()
    fig = plt.figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    try:
        fig.suptitle(
            _heading(title),
            fontsize=13 if len(str(title)) <= 130 else 12,
            fontweight="bold",
            parse_math=False,  # a '$' in a path is text, not TeX
        )
        if history:
            left, middle, right = fig.subfigures(1, 3, width_ratios=[4.3, 6.2, 5.5], wspace=0.02)
            _draw_curves(left, history)
        else:
            middle, right = fig.subfigures(1, 2, width_ratios=[8, 8], wspace=0.03)
        _draw_confusion(middle, matrix, names)
        _draw_wrong(right, images, labels, predicted, names, arrow)
        buf = io.BytesIO()
        fig.savefig(buf, format=suffix[1:], dpi=DPI, metadata=_METADATA[suffix])
        data = buf.getvalue()
    finally:
        plt.close(fig)
    atomic_write(path, lambda f: f.write(data))
