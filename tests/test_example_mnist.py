"""The MNIST example end to end (subprocesses on the bundled sample; no network, no timing asserts)."""

import json
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


def test_same_seed_same_result(tmp_path):
    for name in ("a", "b"):
        assert run(*QUICK, "--seed", "3", "--json", tmp_path / f"{name}.json").returncode == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "b"))
    assert [e["loss"] for e in a["epochs"]] == [e["loss"] for e in b["epochs"]]
    assert a["test_accuracy"] == b["test_accuracy"]


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
