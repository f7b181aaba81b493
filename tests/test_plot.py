"""examples/mnist_plot.py: the run's picture (written atomically, in the suffix's format) and the
confusion matrix behind it."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import mnist_plot

MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF"}


def history(epochs=3):
    return [
        {
            "epoch": e,
            "loss": 1.0 / e,
            "test_loss": 1.1 / e,
            "lr": 0.05 * 0.9**e,
            "train_accuracy": 1 - 0.1 / e,
            "test_accuracy": 1 - 0.12 / e,
            "seconds": 1.5,
        }
        for e in range(1, epochs + 1)
    ]


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    labels = np.arange(40) % 10
    predicted = labels.copy()
    predicted[::7] = (labels[::7] + 1) % 10  # a few mistakes
    return images, labels, predicted


def leftovers(folder: Path, keep: Path):
    return sorted(p.name for p in folder.iterdir() if p != keep)


def test_png_is_written(tmp_path, digits):
    path = tmp_path / "run.png"
    mnist_plot.plot(path, history(3), *digits, title="MNIST · test accuracy 82.50%")
    assert path.read_bytes().startswith(MAGIC[".png"])
    assert leftovers(tmp_path, path) == []


def test_eval_only_png_replaces_an_existing_file(tmp_path, digits, monkeypatch):
    monkeypatch.setattr(mnist_plot, "MAX_WRONG", 4)  # fewer digits: a quicker draw
    path = tmp_path / "run.png"
    path.write_bytes(b"old")
    mnist_plot.plot(path, [], *digits, title="evaluation only")
    assert path.read_bytes().startswith(MAGIC[".png"])
    assert leftovers(tmp_path, path) == []


def test_pdf_and_svg_are_written_in_their_formats(tmp_path, digits, monkeypatch):
    monkeypatch.setattr(mnist_plot, "MAX_WRONG", 4)
    images, labels, _ = digits
    pdf, svg = tmp_path / "run.pdf", tmp_path / "run.svg"
    # the PDF: one epoch and no mistakes at all; the SVG: no history and named classes
    mnist_plot.plot(pdf, history(1), images, labels, labels.copy(), title="pdf")
    mnist_plot.plot(svg, [], *digits, title="svg", classes=[f"class {i}" for i in range(10)])
    assert pdf.read_bytes().startswith(MAGIC[".pdf"])
    text = svg.read_bytes()[:4000]
    assert text.startswith(b"<?xml") and b"<svg" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pdf", "run.svg"]


@pytest.mark.parametrize("name", ["run.jpg", "run", "run.png.txt"])
def test_a_bad_suffix_raises_naming_the_path(tmp_path, digits, name):
    path = tmp_path / name
    with pytest.raises(ValueError, match=re.escape(str(path))):
        mnist_plot.plot(path, history(), *digits, title="x")
    assert list(tmp_path.iterdir()) == []


def test_formats_constant():
    assert mnist_plot.PLOT_FORMATS == (".png", ".pdf", ".svg")


def test_confusion_is_full_size_even_for_classes_never_predicted():
    labels = np.array([0, 1, 2, 3, 9, 9, 5])
    predicted = np.array([0, 1, 2, 2, 4, 9, 5])  # 3, 6, 7, 8 never predicted
    m = mnist_plot.confusion(labels, predicted)
    assert m.shape == (10, 10)
    assert m.sum() == len(labels) and np.trace(m) == 5
    assert m[3, 2] == 1 and m[9, 4] == 1 and m[9, 9] == 1
    assert m[:, 3].sum() == 0 and m[:, 6].sum() == 0 and m[6].sum() == 0
    empty = mnist_plot.confusion(np.array([], dtype=int), np.array([], dtype=int))
    assert empty.shape == (10, 10) and empty.sum() == 0


def test_confusion_rows_are_true_columns_predicted():
    m = mnist_plot.confusion(np.array([1, 1, 1]), np.array([7, 7, 1]), n_classes=10)
    assert m[1, 7] == 2 and m[7, 1] == 0 and m[1, 1] == 1


def test_confusion_rejects_bad_input():
    with pytest.raises(ValueError):
        mnist_plot.confusion(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="0-9"):
        mnist_plot.confusion(np.array([0, 10]), np.array([0, 1]))
    with pytest.raises(ValueError):
        mnist_plot.confusion(np.array([0, 1]), np.array([0, -1]))


def test_the_module_imports_without_matplotlib():
    import subprocess

    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        f"sys.path.insert(0, {str(Path(mnist_plot.__file__).parent)!r}); "
        "import mnist_plot; print(mnist_plot.PLOT_FORMATS)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert ".png" in out.stdout
