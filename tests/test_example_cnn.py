"""examples/mnist_cnn.py end to end, in subprocesses on a few rows of real digits: the shared
trainer's guarantees (checks before work, checkpoints, resume, --load) for the CNN, whose
checkpoints rebuild it from the architecture they record. Tiny models: a run takes seconds."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from digits import write_sample_csvs

import tinygrad_np as tg
from tinygrad_np import nn

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPT = EXAMPLES / "mnist_cnn.py"
TINY = ["--channels", "2", "--hidden", "4", "--no-progress"]
needs_conv = pytest.mark.skipif(
    not all(hasattr(nn, name) for name in ("Conv2d", "MaxPool2d", "BatchNorm2d")),
    reason="tinygrad_np.nn has no Conv2d/MaxPool2d/BatchNorm2d yet",
)


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def one_line_error(result, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    write_sample_csvs(folder, 60, 20)
    return folder


def csv(tiny):
    return ["--train-csv", tiny / "train.csv", "--test-csv", tiny / "test.csv"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--channels", "0"], "--channels must be 1 to 4 positive widths"),
        (["--channels", "8", "8", "8", "8", "8"], "(each stage halves the 28-pixel image), got 8"),
        (["--hidden", "0"], "--hidden must be positive, got 0"),
        (["--hidden", "8", "8"], "unrecognized arguments: 8"),  # one width, unlike the MLP's
        (["--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
        (["--channels", "100000", "100000"], "choose smaller --channels or --hidden sizes"),
    ],
)
def test_bad_model_flags_exit_2_with_one_line_before_anything_loads(flags, message):
    result = run("--dataset", "sample", *flags)
    line = one_line_error(result)
    assert line.startswith("mnist_cnn.py: error: ") and result.stdout == ""
    assert message in line, line


def test_help_names_the_model_flags():
    result = run("--help")
    assert result.returncode == 0
    for name in ("--channels", "--hidden", "--dropout", "--batch-norm", "--no-batch-norm"):
        assert name in result.stdout


def confusion(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("predicted"))
    return lines[start : start + 12]


@needs_conv
def test_trains_saves_and_load_evaluates_to_the_same_accuracy(tiny, tmp_path):
    ckpt, metrics = tmp_path / "c.npz", tmp_path / "m.json"
    result = run(*csv(tiny), *TINY, "--epochs", "2", "--save", ckpt, "--json", metrics)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("model: CNN(channels=[2], hidden=4, dropout=0.1, batch_norm=True, label_smoothing=0.1)")
    assert sum(line.startswith("epoch ") for line in lines) == 2
    m = json.loads(metrics.read_text())
    assert m["args"]["channels"] == [2] and m["args"]["batch_norm"] is True
    saved = tg.load_checkpoint(ckpt)
    assert saved.meta["model"] == {
        "class": "CNN",
        "config": {
            "channels": [2], "hidden": 4, "dropout": 0.1, "batch_norm": True, "label_smoothing": 0.1
        },
    }
    # --load rebuilds the CNN from the recorded architecture; evaluation mode uses the batch-norm
    # running statistics, so they must travel in the checkpoint for the accuracy to repeat
    again = run(*csv(tiny), "--load", ckpt, "--eval-only", "--json", tmp_path / "e.json")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "e.json").read_text())["test_accuracy"] == m["test_accuracy"]
    assert confusion(again.stdout) == confusion(result.stdout)  # the same prediction for each
    line = one_line_error(run(*csv(tiny), "--load", ckpt, "--eval-only", "--channels", "4"))
    assert "--channels (the checkpoint has 2) would not apply" in line


@needs_conv
def test_ctrl_c_then_resume_equals_an_uninterrupted_run(tiny, tmp_path):
    common = [*csv(tiny), *TINY, "--epochs", "4", "--no-batch-norm"]
    straight = run(*common, "--save", tmp_path / "straight.npz")
    assert straight.returncode == 0, straight.stderr
    p = subprocess.Popen(
        [sys.executable, str(SCRIPT), *map(str, common), "--save", str(tmp_path / "cut.npz")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in p.stdout:
        if line.startswith("epoch   1/4"):
            p.send_signal(signal.SIGINT)
            break
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "continue with --resume" in err
    assert tg.load_checkpoint(tmp_path / "cut.npz").extra["epoch"] < 4
    resumed = run("--resume", tmp_path / "cut.npz", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    a, b = tg.load_checkpoint(tmp_path / "straight.npz"), tg.load_checkpoint(tmp_path / "cut.npz")
    assert a.extra["epoch"] == b.extra["epoch"] == 4
    assert sorted(a.model_state) == sorted(b.model_state)
    for name, array in a.model_state.items():
        np.testing.assert_array_equal(b.model_state[name], array, err_msg=name)


@needs_conv
def test_checkpoints_of_the_other_example_or_edited_ones_are_one_line(tiny, tmp_path):
    cnn, mlp = tmp_path / "cnn.npz", tmp_path / "mlp.npz"
    assert run(*csv(tiny), *TINY, "--epochs", "1", "--save", cnn).returncode == 0
    made = subprocess.run(
        [sys.executable, str(EXAMPLES / "mnist_mlp.py"), *map(str, csv(tiny)), "--hidden", "8",
         "--epochs", "1", "--no-progress", "--save", str(mlp)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for flags in (["--resume", mlp], ["--load", mlp, "--eval-only", *csv(tiny)]):
        line = one_line_error(run(*flags))
        assert "holds a MLP model, but mnist_cnn.py trains a CNN" in line
    mlp_script = [sys.executable, str(EXAMPLES / "mnist_mlp.py"), "--resume", str(cnn)]
    line = one_line_error(subprocess.run(mlp_script, capture_output=True, text=True, timeout=300))
    assert "holds a CNN model, but mnist_mlp.py trains a MLP" in line

    with np.load(cnn, allow_pickle=False) as f:  # a hand edit: the recorded settings change
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta["extra"]["args"]["channels"] = [3]
    meta["extra"]["args"]["epochs"] = 2
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(cnn, **arrays)
    line = one_line_error(run("--resume", cnn, "--no-progress"))
    assert "the recorded settings (--channels 3 --hidden 4 --dropout 0.1 --batch-norm --label-smoothing 0.1)" in line
