"""The trainer under abuse, in subprocesses: bad flags and data, Ctrl-C and --resume, SIGKILL while
writing a checkpoint, and a learning rate that blows up."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tinygrad_np as tg

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mnist_mlp.py"
SMALL = ["--dataset", "sample", "--hidden", "32", "--no-progress"]


def run(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--epochs", "-3"], "--epochs must be at least 1, got -3"),
        (["--lr", "-0.1"], "--lr must be a positive number, got -0.1"),
        (["--lr", "nan"], "--lr must be a positive number, got nan"),
        (["--hidden", "0"], "--hidden sizes must be positive, got 0"),
        (["--hidden", "128", "-5"], "--hidden sizes must be positive, got 128 -5"),
        (["--activation", "swish"], "argument --activation: invalid choice: 'swish'"),
        (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
        (["--data-dir", "/nonexistent/mnist"], "--data-dir /nonexistent/mnist: no such directory"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--dropout", "1.5"], "--dropout must be in [0, 1), got 1.5"),
        (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
        (["--test-csv", __file__], "--test-csv needs --train-csv"),
        (["--eval-only"], "--eval-only needs --load PATH"),
        (["--resume", "/nonexistent.npz"], "--resume /nonexistent.npz: no such file"),
    ],
)
def test_bad_flags_exit_2_with_one_line_before_training(flags, message):
    result = run(*flags)
    assert result.returncode == 2
    assert result.stdout == ""  # nothing loaded, nothing trained
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist_mlp.py: error: ") and message in lines[0]


def write_csv(path, labels, n_pixels=784):
    frame = pd.DataFrame(
        np.zeros((len(labels), n_pixels), int), columns=[f"pixel{i}" for i in range(n_pixels)]
    )
    frame.insert(0, "label", labels)
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    "labels, n_pixels, message",
    [
        ([1, 12, 3], 784, "label 12 on line 3 is outside 0-9"),
        ([1, 2, 3], 700, "expected 785 columns (a label and 784 pixels), got 701"),
    ],
)
def test_bad_data_exits_2_with_one_line_before_training(tmp_path, labels, n_pixels, message):
    write_csv(tmp_path / "train.csv", labels, n_pixels)
    result = run("--train-csv", tmp_path / "train.csv", "--no-progress")
    assert result.returncode == 2 and "epoch" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "train.csv") in lines[0] and message in lines[0]


def test_exploding_learning_rate_stops_with_advice(tmp_path):
    result = run(*SMALL, "--epochs", "3", "--lr", "1e6", "--save", tmp_path / "c.npz")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "the loss became nan in epoch 1, step" in line and "lower --lr (try --lr 100000)" in line
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr


def interrupt_after(args, epoch_line: str):
    """Start the trainer, send SIGINT when it prints epoch_line, return (returncode, stderr)."""
    p = subprocess.Popen(
        [sys.executable, str(SCRIPT), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in p.stdout:
        if line.startswith(epoch_line):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=120)
    return p.returncode, err


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(tmp_path):
    common = [*SMALL, "--epochs", "10", "--dropout", "0.2"]
    straight = run(*common, "--save", tmp_path / "straight.npz")
    assert straight.returncode == 0, straight.stderr
    code, err = interrupt_after([*common, "--save", tmp_path / "cut.npz"], "epoch   2/10")
    assert code == 130
    message = err.strip().splitlines()[-1]
    assert message.startswith("interrupted in epoch ") and "continue with --resume" in message
    saved = tg.load_checkpoint(tmp_path / "cut.npz")  # the last complete checkpoint is intact
    assert 2 <= saved.extra["epoch"] < 10
    resumed = run("--resume", tmp_path / "cut.npz", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"resuming {tmp_path / 'cut.npz'} after epoch {saved.extra['epoch']} of 10"
        in resumed.stdout
    )
    a, b = tg.load_checkpoint(tmp_path / "straight.npz"), tg.load_checkpoint(tmp_path / "cut.npz")
    assert a.extra["epoch"] == b.extra["epoch"] == 10
    for name, array in a.model_state.items():
        np.testing.assert_array_equal(b.model_state[name], array, err_msg=name)
    assert [h["loss"] for h in a.extra["history"]] == [h["loss"] for h in b.extra["history"]]
    history = pd.read_csv(tmp_path / "cut.history.csv")
    assert list(history["epoch"]) == list(range(1, 11))


def test_sigkill_while_writing_leaves_the_previous_checkpoint_readable(tmp_path):
    path = tmp_path / "ckpt.npz"
    writer = textwrap.dedent(f"""
        import numpy as np, tinygrad_np as tg
        model = tg.nn.MLP([784, 1024, 1024, 10], rng=np.random.default_rng(0))
        i = 0
        while True:
            tg.save_checkpoint({str(path)!r}, model, extra={{"i": i}})
            print(i, flush=True)
            i += 1
    """)
    for delay in (0.05, 0.13, 0.21):
        p = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "0" or path.exists()  # at least one complete write
        time.sleep(delay)  # then kill it at some point, most likely in the middle of a write
        p.kill()
        p.wait()
        ckpt = tg.load_checkpoint(path)
        assert ckpt.build_model().parameters()[0].shape == (784, 1024)
        assert isinstance(ckpt.extra["i"], int)
