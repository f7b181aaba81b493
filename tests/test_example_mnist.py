"""The MNIST example end to end (subprocesses on the bundled sample; no network, no timing asserts)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from digits import write_sample_csvs

from tinygrad_np import Tensor, data, nn, optim
from tinygrad_np.nn import functional as F

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mnist_mlp.py"
QUICK = ["--dataset", "sample", "--epochs", "2", "--hidden", "64", "--no-progress"]


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_short_training_on_the_sample_learns():
    d = data.load_mnist("sample")
    rng = np.random.default_rng(0)
    model = nn.MLP([784, 128, 10], rng=rng)
    opt = optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    x = ((d.x_train[:4000].reshape(4000, -1) / 255.0 - 0.13) / 0.31).astype(np.float32)
    losses = []
    for _ in range(3):
        for xb, yb in data.batches(x, d.y_train[:4000], 32, rng=rng):
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    x_test = ((d.x_test.reshape(len(d.x_test), -1) / 255.0 - 0.13) / 0.31).astype(np.float32)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 3
    assert F.accuracy(model(Tensor(x_test)), d.y_test) > 0.90


def test_cli_trains_saves_and_evaluates(tmp_path):
    ckpt, metrics = tmp_path / "model.npz", tmp_path / "metrics.json"
    result = run(*QUICK, "--json", metrics, "--save", ckpt)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("data: the bundled 8,000-digit MNIST sample")
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert any(line.startswith("test accuracy: ") for line in lines)
    assert "predicted" in result.stdout  # the confusion matrix
    m = json.loads(metrics.read_text())
    assert (m["dataset"], m["n_train"], m["n_test"]) == ("sample", 6000, 2000)
    assert m["test_accuracy"] > 0.85 and m["train_seconds"] > 0
    assert [e["epoch"] for e in m["epochs"]] == [1, 2]
    history = pd.read_csv(tmp_path / "model.history.csv")
    assert list(history["epoch"]) == [1, 2] and "test_accuracy" in history

    again = run(
        "--dataset", "sample", "--load", ckpt, "--eval-only", "--json", tmp_path / "eval.json"
    )
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "eval.json").read_text())["test_accuracy"] == m["test_accuracy"]


def test_same_seed_same_result_and_the_replayed_step_equals_eager(tmp_path):
    """The default run replays the step (tg.jit); --no-jit runs it eagerly: the same losses bit
    for bit, every epoch, as a second default run."""
    for name, extra in (("a", []), ("b", ["--no-jit"])):
        args = [*QUICK, "--seed", "3", "--json", tmp_path / f"{name}.json", *extra]
        assert run(*args).returncode == 0
    assert run(*QUICK, "--seed", "3", "--json", tmp_path / "c.json").returncode == 0
    c = json.loads((tmp_path / "c.json").read_text())
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "b"))
    assert [e["loss"] for e in a["epochs"]] == [e["loss"] for e in b["epochs"]]
    assert [e["loss"] for e in a["epochs"]] == [e["loss"] for e in c["epochs"]]
    assert a["test_accuracy"] == b["test_accuracy"] == c["test_accuracy"]


def test_cli_reads_csv_files(tmp_path):
    write_sample_csvs(tmp_path, 600, 200)
    result = run(
        "--train-csv",
        tmp_path / "train.csv",
        "--test-csv",
        tmp_path / "test.csv",
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--no-progress",
        "--json",
        tmp_path / "m.json",
    )
    assert result.returncode == 0, result.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert (m["dataset"], m["n_train"], m["n_test"]) == ("csv", 600, 200)


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    result = run(*QUICK, "--plot", tmp_path / "curves.png")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_only_needs_load():
    result = run("--eval-only")
    assert result.returncode == 2 and "--eval-only needs --load PATH" in result.stderr


def write_fashion(system, n_train=40, n_test=10):
    """A tiny 'installed' Fashion-MNIST: real digits from the sample, in system/fashion-mnist."""
    d = data.load_mnist("sample")
    folder = system / "fashion-mnist"
    for key, array in (
        ("train_images", d.x_train[:n_train]),
        ("train_labels", d.y_train[:n_train].astype(np.uint8)),
        ("test_images", d.x_test[:n_test]),
        ("test_labels", d.y_test[:n_test].astype(np.uint8)),
    ):
        data.write_idx(folder / (data.FILES[key] + ".gz"), array)


def test_dataset_fashion_mnist_reads_the_system_files(tmp_path):
    write_fashion(tmp_path / "system")
    env = {**os.environ, "TINYGRAD_NP_SYSTEM_DATA": str(tmp_path / "system")}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", "fashion-mnist", "--epochs", "1", "--hidden",
         "8", "--no-progress", "--json", str(tmp_path / "m.json")],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first == (
        f"data: full fashion-mnist from {tmp_path / 'system' / 'fashion-mnist'} "
        "(the system package dataset-fashion-mnist)"
    )
    m = json.loads((tmp_path / "m.json").read_text())
    assert (m["dataset"], m["n_train"], m["n_test"]) == ("fashion-mnist", 40, 10)


def test_fashion_mnist_is_normalised_with_its_own_statistics():
    sys.path.insert(0, str(SCRIPT.parent))
    import mnist_mlp
    import trainer

    images = data.load_mnist("sample").x_train
    for name, (mean, std) in (("fashion-mnist", (0.2860, 0.3530)), ("sample", (0.1307, 0.3081))):
        fake = data.MNIST(images, None, images, None, name, "")
        assert trainer.stats_of(fake) == (mean, std)
        x = trainer.preprocess(mnist_mlp.EXAMPLE, images[:2], trainer.stats_of(fake))
        assert x.dtype == np.float32 and x.shape == (2, 784)
        np.testing.assert_allclose(x, (images[:2].reshape(2, -1) / 255 - mean) / std, rtol=1e-5)
    if data.system_folder("fashion-mnist") is not None:  # the real files: mean 0, std 1
        real = data.load_mnist("fashion-mnist", mirrors=[], cache="/nonexistent")
        x = trainer.preprocess(mnist_mlp.EXAMPLE, real.x_train[:20000], (0.2860, 0.3530))
        assert abs(float(x.mean())) < 0.01 and abs(float(x.std()) - 1) < 0.01
