"""The trainer under abuse, in subprocesses: bad flags and data, Ctrl-C and --resume, SIGKILL while
writing a checkpoint, and a learning rate that blows up."""

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from digits import write_sample_csvs

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


# --- nothing a user types destroys a file or ends in a traceback ---


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 60-row training CSV and a 20-row test CSV of real digits: a run takes about a second."""
    folder = tmp_path_factory.mktemp("tiny")
    write_sample_csvs(folder, 60, 20)
    return folder


def quick(tiny):
    return [
        "--train-csv",
        tiny / "train.csv",
        "--test-csv",
        tiny / "test.csv",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--no-progress",
    ]


def one_line_error(result, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_an_output_never_replaces_an_input_or_another_output(tiny, tmp_path):
    train = tiny / "train.csv"
    before = digest(train)
    line = one_line_error(run(*quick(tiny), "--save", train))
    assert f"--save {train}: is the input of --train-csv" in line
    line = one_line_error(
        run(*quick(tiny), "--save", tmp_path / "k.npz", "--json", tmp_path / "k.npz")
    )
    assert "--json" in line and "--save writes the same file" in line
    assert digest(train) == before and not (tmp_path / "k.npz").exists()


def test_save_refuses_to_overwrite_what_is_not_its_own(tiny, tmp_path):
    notes = tmp_path / "notes.history.csv"
    notes.write_text("my,own,notes\n")
    line = one_line_error(run(*quick(tiny), "--save", tmp_path / "notes.npz"))
    assert f"--save {notes}: exists and is not a training history CSV" in line
    assert notes.read_text() == "my,own,notes\n" and not (tmp_path / "notes.npz").exists()
    other = tmp_path / "model.npz"
    other.write_bytes(b"not a checkpoint")
    line = one_line_error(run(*quick(tiny), "--save", other))
    assert "exists and is not a tinygrad_np checkpoint; refusing to overwrite it" in line
    assert other.read_bytes() == b"not a checkpoint"
    # our own outputs are replaced on a second run
    ok = [*quick(tiny), "--save", tmp_path / "run.npz", "--json", tmp_path / "m.json"]
    assert run(*ok).returncode == 0 and run(*ok).returncode == 0


def test_load_and_save_to_the_same_checkpoint_is_refused(tiny, tmp_path):
    ckpt = tmp_path / "k.npz"
    assert run(*quick(tiny), "--save", ckpt).returncode == 0
    before = digest(ckpt)
    line = one_line_error(run(*quick(tiny), "--load", ckpt, "--save", ckpt))
    assert "is the input of --load" in line and digest(ckpt) == before


@pytest.mark.parametrize(
    "flag, where, message",
    [
        ("--save", "file/k.npz", "file is a file, not a folder"),
        ("--save", ".", "is a directory; give a file name inside it"),
        ("--json", ".", "is a directory; give a file name inside it"),
        ("--plot", "run.jpg", "unknown picture format .jpg; end the name in .png, .pdf, .svg"),
        ("--plot", "run", "unknown picture format (none)"),
    ],
)
def test_bad_output_paths_exit_2_before_anything_is_loaded(tiny, tmp_path, flag, where, message):
    (tmp_path / "file").write_text("x")
    result = run(*quick(tiny), flag, tmp_path / where)
    assert message in one_line_error(result) and result.stdout == ""


def test_a_failing_write_during_training_ends_in_one_line_and_exit_1(tiny, tmp_path):
    def small_files():  # files over 64 kB fail with EFBIG ("File too large"), as a full disk would
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, resource.RLIM_INFINITY))

    ckpt = tmp_path / "k.npz"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, quick(tiny)), "--hidden", "64", "--save", ckpt],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_files,
    )
    line = one_line_error(result, code=1)
    assert line.startswith(f"mnist_mlp.py: error: could not write the checkpoint {ckpt}: ")
    assert line.endswith("no checkpoint was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary left behind


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["--momentum", "2"], "--momentum must be in [0, 1), got 2.0"),
        (["--momentum", "nan"], "--momentum must be in [0, 1), got nan"),
        (["--weight-decay", "nan"], "--weight-decay must be a finite number >= 0, got nan"),
        (["--weight-decay", "inf"], "--weight-decay must be a finite number >= 0, got inf"),
        (["--dropout", "nan"], "--dropout must be in [0, 1), got nan"),
        (["--label-column", "digit"], "--label-column needs --train-csv"),
        (["--eval-only", "--load", __file__, "--save", "x.npz"], "--eval-only trains nothing"),
    ],
)
def test_more_bad_flags_exit_2_with_one_line(flags, message):
    result = run(*SMALL, *flags)
    assert message in one_line_error(result) and result.stdout == ""


def test_a_model_too_big_for_memory_is_refused_before_the_data_loads():
    result = run(*SMALL, "--hidden", "100000000")
    line = one_line_error(result)
    assert result.stdout == ""
    assert "the model has 79,500,000,010 parameters and with --batch-size 128 needs about" in line
    assert "GB available; choose smaller --hidden sizes" in line


def test_a_one_row_csv_is_one_line(tmp_path, tiny):
    rows = (tiny / "train.csv").read_text().splitlines()[:2]
    (tmp_path / "one.csv").write_text("\n".join(rows) + "\n")
    line = one_line_error(run("--train-csv", tmp_path / "one.csv", "--no-progress"))
    assert "1 data row; holding 1/6 out for testing needs at least 2 rows" in line


def back_to_epoch_1(extra):
    """Make a finished 2-epoch run's checkpoint look like one interrupted after epoch 1."""
    extra.update(epoch=1, history=extra["history"][:1], schedule={**extra["schedule"], "count": 1})


def edit_meta(path, edit, whole=False):
    """Rewrite a checkpoint's JSON metadata (its 'extra' part, or all of it) by hand, as a user
    with a text editor might."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    edit(meta if whole else meta["extra"])
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: e["args"].pop("hidden"), "the recorded settings have no 'hidden'"),
        (lambda e: e["args"].update(lr="fast"), "the recorded setting lr='fast' is not a number"),
        (
            lambda e: e["args"].update(batch_size=0),
            "recorded setting: --batch-size must be at least 1",
        ),
        (lambda e: e.update(epoch="one"), "the recorded epoch 'one' is not a whole number"),
        (lambda e: e.update(rng={"state": 1}), "the recorded 'rng' is not a PCG64 state"),
        (lambda e: e.update(schedule=[]), "the recorded 'schedule' is not a cosine schedule"),
        (lambda e: e.pop("history"), "the recorded 'history' is not a list of epochs 1 to 1"),
        (lambda e: e.update(history=[{}]), "the recorded 'history' is not a list of epochs"),
        (
            lambda e: e["args"].update(hidden=[16]),
            "(--hidden 16 --activation relu --dropout 0.1) are",
        ),
    ],
)
def test_hand_edited_checkpoint_settings_are_one_line(tiny, tmp_path, edit, message):
    ckpt = tmp_path / "k.npz"
    assert run(*quick(tiny), "--epochs", "2", "--save", ckpt).returncode == 0
    meta = tg.load_checkpoint(ckpt).extra
    meta_epoch = meta["epoch"]
    edit_meta(ckpt, lambda e: (back_to_epoch_1(e), edit(e)))
    line = one_line_error(run("--resume", ckpt, "--epochs", "3", "--no-progress"))
    assert str(ckpt) in line and message in line, line
    assert meta_epoch == 2


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["optimizer"]["state"].update(momentum=-3), "momentum -3 (expected 0.9)"),
        (lambda m: m["optimizer"].update({"class": "AdamW"}), "class 'AdamW' (expected 'SGD')"),
        (lambda m: m.pop("optimizer"), "class None (expected 'SGD')"),
        (lambda m: m["optimizer"]["state"].update(lr="x"), "SGD.load_state_dict: lr='x' is not"),
        (lambda m: m["extra"]["schedule"].update(count=-5), "the recorded schedule (step -5"),
    ],
)
def test_a_resumed_optimizer_must_be_the_runs(tiny, tmp_path, edit, message):
    ckpt = tmp_path / "k.npz"
    assert run(*quick(tiny), "--epochs", "2", "--save", ckpt).returncode == 0
    edit_meta(ckpt, lambda e: back_to_epoch_1(e))
    edit_meta(ckpt, edit, whole=True)
    line = one_line_error(run("--resume", ckpt, "--no-progress"))
    assert str(ckpt) in line and message in line, line


def test_resume_refuses_flags_that_would_change_the_run(tiny, tmp_path):
    ckpt = tmp_path / "k.npz"
    assert run(*quick(tiny), "--epochs", "2", "--save", ckpt).returncode == 0
    edit_meta(ckpt, lambda e: back_to_epoch_1(e))
    line = one_line_error(
        run(
            "--resume", ckpt, "--hidden", "128", "--lr", "0.5", "--batch-size", "7", "--hidden", "8"
        )
    )
    assert "--batch-size (the run has 128), --lr (the run has 0.05) would change it" in line
    assert "--hidden" not in line.split("would change")[0].split("settings;")[1]  # same value
    line = one_line_error(run("--resume", ckpt, "--epochs", "1", "--no-progress"))
    assert "the run has finished 1 epoch, so there is nothing to train with --epochs 1" in line
    resumed = run("--resume", ckpt, "--no-progress", "--batch-size", "128")  # the same value
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {ckpt} after epoch 1 of 2" in resumed.stdout


def test_load_refuses_model_flags_and_non_finite_weights(tiny, tmp_path):
    ckpt = tmp_path / "k.npz"
    assert run(*quick(tiny), "--save", ckpt).returncode == 0
    line = one_line_error(
        run(
            "--load",
            ckpt,
            "--eval-only",
            "--hidden",
            "128",
            "--activation",
            "tanh",
            *quick(tiny)[:4],
        )
    )
    assert "--load" in line and "--activation (the checkpoint has relu)" in line
    assert "--hidden (the checkpoint has 8)" in line
    model = tg.load_checkpoint(ckpt).build_model()
    model.parameters()[0].data[0, 0] = np.nan
    tg.save_checkpoint(tmp_path / "nan.npz", model)
    line = one_line_error(run("--load", tmp_path / "nan.npz", "--eval-only", *quick(tiny)[:4]))
    assert "the weights linears.0.weight hold NaN or inf" in line


def test_history_records_the_rate_each_epoch_trained_at_and_the_test_loss(tiny, tmp_path):
    ckpt = tmp_path / "k.npz"
    result = run(*quick(tiny), "--epochs", "3", "--save", ckpt)
    assert result.returncode == 0, result.stderr
    history = pd.read_csv(tmp_path / "k.history.csv")
    schedule = [0.05 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    np.testing.assert_allclose(history["lr"], schedule)
    assert list(history.columns) == [
        "epoch",
        "loss",
        "test_loss",
        "lr",
        "seconds",
        "train_accuracy",
        "test_accuracy",
    ]
    assert (history["test_loss"] > 0).all()
    header = next(line for line in result.stdout.splitlines() if line.startswith("predicted"))
    assert header.split()[1:] == [str(c) for c in range(10)]  # every class, predicted or not


def test_plot_needs_matplotlib_before_training(tiny, tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import sys; sys.modules['matplotlib'] = None\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, quick(tiny)), "--plot", tmp_path / "p.png"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert "--plot needs matplotlib" in one_line_error(result) and result.stdout == ""


def test_hostile_output_paths_are_one_line(tiny, tmp_path):
    os.mkfifo(tmp_path / "fifo.json")  # opening it would block: it must not even be read
    (tmp_path / "deep.json").write_text("[" * 200_000)
    (tmp_path / "out").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "out")
    cases = [
        (["--save", tmp_path / ("a" * 300 + ".npz")], "File name too long"),
        (["--json", tmp_path / "fifo.json"], "exists and is not a metrics JSON file"),
        (["--json", tmp_path / "deep.json"], "exists and is not a metrics JSON file"),
        (
            ["--save", tmp_path / "out" / "k.npz", "--json", tmp_path / "alias" / "k.npz"],
            "--save writes the same file",
        ),
        (["--train-csv", tmp_path / ("b" * 300 + ".csv")], "no such file"),
    ]
    for flags, message in cases:
        result = run(*quick(tiny), *flags, timeout=60)
        assert message in one_line_error(result), flags


def test_a_run_resumes_from_another_folder(tiny, tmp_path):
    (tmp_path / "a").mkdir()
    shutil.copy(tiny / "train.csv", tmp_path / "a" / "train.csv")
    first = run(
        "--train-csv",
        "train.csv",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--no-progress",
        "--save",
        "k.npz",
        cwd=tmp_path / "a",
    )
    assert first.returncode == 0, first.stderr
    edit_meta(tmp_path / "a" / "k.npz", back_to_epoch_1)
    again = run(
        "--resume",
        tmp_path / "a" / "k.npz",
        "--no-progress",
        "--train-csv",
        tmp_path / "a" / "train.csv",
        cwd=tmp_path,
    )  # the same file, named another way
    assert again.returncode == 0, again.stderr
    assert "after epoch 1 of 2" in again.stdout


def test_resume_and_load_refuse_what_a_hand_edit_broke(tiny, tmp_path):
    ckpt = tmp_path / "k.npz"
    assert run(*quick(tiny), "--epochs", "2", "--save", ckpt).returncode == 0
    edit_meta(ckpt, lambda m: m["model"]["config"].update(activation="swish"), whole=True)
    line = one_line_error(run("--load", ckpt, "--eval-only", *quick(tiny)[:4]))
    assert "the recorded architecture's activation 'swish' is not one of" in line
    edit_meta(ckpt, lambda m: m["model"]["config"].update(activation="relu"), whole=True)
    with np.load(ckpt, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["model/linears.1.bias"] = np.full_like(arrays["model/linears.1.bias"], np.inf)
    np.savez(ckpt, **arrays)
    edit_meta(ckpt, back_to_epoch_1)
    line = one_line_error(run("--resume", ckpt, "--no-progress"))
    assert "the weights linears.1.bias hold NaN or inf" in line  # a diverged run's checkpoint
