"""The trainer under random command lines: valid and invalid flags and paths over tiny data, each run
in a subprocess. Every run must exit 0, 1, 2 or 130, never print a traceback, and leave every input
file as it was."""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from digits import write_sample_csvs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_np as tg

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "mnist_mlp.py"
BASE = ["--hidden", "8", "--epochs", "1", "--no-progress"]

# the files every run finds in its folder; `run.npz` is a checkpoint of a finished 1-epoch run
INPUTS = ("train.csv", "test.csv", "run.npz", "notes.txt", "random.bin")
OUTPUT_PATHS = [
    "out.npz",
    "out.json",
    "out.png",
    "train.csv",
    "test.csv",
    "run.npz",
    "notes.txt",
    "random.bin",
    "folder",
    "notes.txt/inside.npz",
    "new/deeper/out.npz",
    "out.jpg",
    "run",
    "folder/out.npz",
    "alias/out.npz",  # the same file as folder/out.npz
    "a" * 300 + ".npz",  # a name too long for the file system
    "~/out.npz",  # a folder named ~, not the home folder
]
CHOICES = {
    "--epochs": ["1", "2", "0", "-1", "x"],
    "--hidden": [["8"], ["8", "4"], ["0"], ["100000000"]],
    "--lr": ["0.05", "1e-3", "-1", "nan", "inf", "1e9"],
    "--momentum": ["0", "0.5", "2", "nan"],
    "--weight-decay": ["0", "1e-3", "nan", "-1", "inf"],
    "--dropout": ["0", "0.3", "1", "nan"],
    "--batch-size": ["16", "0", "1000", "1"],
    "--seed": ["0", "7", "-1", "1e3"],
    "--activation": ["tanh", "gelu", "swish"],
    "--optimizer": ["sgd", "adam", "rmsprop"],
    "--test-csv": ["test.csv", "train.csv", "missing.csv", "random.bin", "folder"],
    "--label-column": ["label", "digit", "0", "784"],
    "--dataset": ["sample", "mnist-ish"],
    "--save": OUTPUT_PATHS,
    "--json": OUTPUT_PATHS,
    "--plot": OUTPUT_PATHS,
    "--load": ["run.npz", "random.bin", "train.csv", "missing.npz", "folder"],
    "--resume": ["run.npz", "random.bin", "train.csv", "missing.npz"],
    "--eval-only": [None],
    "--augment": [None],
    "--no-augment": [None],
    "--data-dir": ["folder", "missing"],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A folder with tiny CSVs, a real checkpoint, and files that are not what they seem."""
    folder = tmp_path_factory.mktemp("template")
    write_sample_csvs(folder, 48, 16)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "random.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "folder").mkdir()
    (folder / "alias").symlink_to("folder")  # the same folder by another name
    made = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--train-csv",
            "train.csv",
            "--test-csv",
            "test.csv",
            *BASE,
            "--save",
            "run.npz",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    (folder / "run.history.csv").unlink()
    return folder


command_lines = st.lists(
    st.sampled_from(sorted(CHOICES)).flatmap(
        lambda flag: st.sampled_from(CHOICES[flag]).map(
            lambda value: (
                [flag]
                + ([] if value is None else [value] if isinstance(value, str) else list(value))
            )
        )
    ),
    max_size=5,
).map(lambda parts: [token for part in parts for token in part])


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flags=command_lines, with_csv=st.booleans())
def test_any_command_line_exits_cleanly_and_keeps_every_input(template, flags, with_csv):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        shutil.copytree(template, folder, symlinks=True)
        before = {name: digest(folder / name) for name in INPUTS}
        data = ["--train-csv", "train.csv"] if with_csv else ["--dataset", "sample"]
        argv = [*data, *BASE, *flags]
        result = subprocess.run(
            [sys.executable, str(SCRIPT), *argv],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
        shown = f"mnist_mlp.py {' '.join(argv)}\n{result.stderr[-2000:]}"
        assert result.returncode in (0, 1, 2, 130), shown
        assert "Traceback" not in result.stderr, shown
        if result.returncode != 0:
            assert result.stderr.strip(), shown  # a failure says why
        # run.npz may be replaced only as what it is: continued (--resume) or saved over (--save)
        pairs = set(zip(flags, flags[1:]))
        replaceable = (
            {"run.npz"} if {("--resume", "run.npz"), ("--save", "run.npz")} & pairs else set()
        )
        for name in INPUTS:
            if name not in replaceable:
                assert digest(folder / name) == before[name], f"{name} changed: {shown}"
        if "run.npz" in replaceable:
            tg.load_checkpoint(folder / "run.npz")  # still a readable checkpoint
