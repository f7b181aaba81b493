"""The command-line trainer the MNIST examples share: flags, data, checks, training loop,
checkpoints, resume, evaluation, JSON, picture, progress bar, Ctrl-C and errors.

An example gives it an `Example`: its name, its model's settings and flags, how to build the model
from those settings, and its training step (see mnist_mlp.py and mnist_cnn.py). Imported from
beside the scripts (python puts a script's folder first on sys.path), like mnist_plot.

Everything a run is told is checked before anything is loaded or trained: the flags, a resumed or
loaded checkpoint's settings, the model's memory, and every output path (see `check_run`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mnist_plot
import numpy as np

import tinygrad_np as tg
from tinygrad_np import Tensor, nn, no_grad, optim
from tinygrad_np.data import CLASSES, SYSTEM_DIR, batches, load_csv, load_mnist, random_shift
from tinygrad_np.io.checkpoint import is_checkpoint
from tinygrad_np.io.files import Output, check_outputs
from tinygrad_np.io.npz import available_memory
from tinygrad_np.nn import functional as F

DATASETS = ("auto", "mnist", "fashion-mnist", "sample")
# pixel mean and standard deviation (of pixel / 255) per data set, for the normalisation; any other
# source (a CSV, a --data-dir without --dataset fashion-mnist) is taken to be MNIST digits
STATS = {"fashion-mnist": (0.2860, 0.3530)}
MNIST_STATS = (0.1307, 0.3081)
# the folder system packages install data sets into (its <dataset> subfolder is read first)
SYSTEM_DATA_ENV = "TINYGRAD_NP_SYSTEM_DATA"

# every setting that shapes a run, with its default, besides the model's own (Example.defaults);
# --resume restores all of them from the checkpoint (--epochs may extend the run), and a flag given
# with --resume must agree with it
COMMON_DEFAULTS = {
    "dataset": "auto",
    "data_dir": None,
    "train_csv": None,
    "test_csv": None,
    "label_column": None,
    "optimizer": "sgd",
    "lr": None,  # Example.lr[optimizer]
    "momentum": 0.9,
    "weight_decay": 1e-3,
    "epochs": 60,
    "batch_size": 128,
    "augment": True,
    "seed": 0,
}
PATHS = ("data_dir", "train_csv", "test_csv")

NUMBER = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number")
INT = (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
OPTIONAL_STR = (lambda v: v is None or isinstance(v, str), "a string or null")
INT_LIST = (
    lambda v: isinstance(v, list) and v and all(INT[0](n) for n in v),
    "a list of ints",
)
BOOL = (lambda v: isinstance(v, bool), "true or false")
COMMON_TYPES = {
    "dataset": (lambda v: v in DATASETS, "a dataset name"),
    "data_dir": OPTIONAL_STR,
    "train_csv": OPTIONAL_STR,
    "test_csv": OPTIONAL_STR,
    "label_column": OPTIONAL_STR,
    "optimizer": (lambda v: v in ("sgd", "adam"), "sgd or adam"),
    "lr": NUMBER,
    "momentum": NUMBER,
    "weight_decay": NUMBER,
    "epochs": INT,
    "batch_size": INT,
    "augment": BOOL,
    "seed": INT,
}
RECORD = ("epoch", "loss", "lr", "train_accuracy", "test_accuracy")  # in every history entry
OPTIONAL_SETTINGS = {"label_column"}  # added after version 1 of the trainer's checkpoints


@dataclass(frozen=True)
class Example:
    """What one example adds to the trainer: its model.

    defaults: the model's settings with their defaults (and any COMMON_DEFAULTS it changes);
    types: how a checkpoint's recorded model setting is checked, (test, 'what it must be');
    add_flags(group): the model's flags; invalid(args): what is wrong with the model settings;
    config(args): the architecture the model records in a checkpoint (model.config);
    settings_of(config, path): the model settings a recorded architecture means (raises
    tg.CheckpointError naming path when it is not one this example builds);
    build(args, init_rng, rng): the model, initialised from init_rng, with dropout drawing from rng;
    size(args): (parameters, floats of activations per example) for the memory check;
    describe(args): the model in a few words; step(model, opt, x, y): one training step, returning
    the loss Tensor; input_shape: one example as the model takes it.
    """

    prog: str
    description: str
    model_class: str
    defaults: dict
    types: dict
    add_flags: Callable
    invalid: Callable
    config: Callable
    settings_of: Callable
    build: Callable
    size: Callable
    describe: Callable
    step: Callable
    input_shape: tuple[int, ...]
    size_keys: tuple[str, ...]  # the settings that set the model's size, named by the memory check
    lr: dict = field(default_factory=lambda: {"sgd": 0.05, "adam": 1e-3})

    @property
    def settings(self) -> dict:
        return {**COMMON_DEFAULTS, **self.defaults}

    @property
    def setting_types(self) -> dict:
        return {**COMMON_TYPES, **self.types}

    @property
    def arch_keys(self) -> tuple[str, ...]:
        return tuple(self.types)


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def shown(value) -> str:
    """A setting as it is typed: lists space-separated."""
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def as_flags(settings: dict, keys) -> str:
    """'--hidden 512 256 --dropout 0.1' for those settings (a boolean as --x / --no-x)."""
    parts = []
    for key in keys:
        value = settings[key]
        if isinstance(value, bool):
            parts.append(flag(key) if value else "--no-" + flag(key)[2:])
        else:
            parts.append(f"{flag(key)} {shown(value)}")
    return " ".join(parts)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class NonFiniteLoss(ArithmeticError):
    pass


class WriteFailed(OSError):
    """Writing an output failed (disk full, permissions, read-only): which output, and why."""

    def __init__(self, what: str, path: Path, error: OSError):
        super().__init__(f"could not write {what} {path}: {error.strerror or error}")


def build_parser(ex: Example) -> Parser:
    defaults = ex.settings
    p = Parser(prog=ex.prog, description=ex.description)
    d = p.add_argument_group("data")
    d.add_argument(
        "--dataset",
        choices=list(DATASETS),
        help="auto (default): full MNIST when cached or downloadable, else the bundled sample; "
        f"fashion-mnist: the system's files ({SYSTEM_DIR}/fashion-mnist, from apt-get install "
        f"dataset-fashion-mnist; ${SYSTEM_DATA_ENV} moves {SYSTEM_DIR}), else the cache or a "
        "download",
    )
    d.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="a folder with the four MNIST IDX files"
    )
    d.add_argument(
        "--train-csv", type=Path, metavar="CSV", help="CSV with a label column and 784 pixels"
    )
    d.add_argument(
        "--test-csv",
        type=Path,
        metavar="CSV",
        help="test CSV (default: hold out 1/6 of --train-csv)",
    )
    d.add_argument(
        "--label-column",
        metavar="NAME",
        help="the CSVs' label column, by header name or 0-based number (default: the column "
        "named 'label', or the first column of a file without a header)",
    )
    ex.add_flags(p.add_argument_group("model"))
    o = p.add_argument_group("training")
    o.add_argument(
        "--optimizer", choices=["sgd", "adam"], help="sgd (Nesterov) or adam (AdamW) (default: sgd)"
    )
    o.add_argument(
        "--lr",
        type=float,
        help=f"initial learning rate, cosine-decayed ({ex.lr['sgd']:g} sgd, {ex.lr['adam']:g} adam)",
    )
    o.add_argument(
        "--momentum", type=float, help=f"SGD momentum, in [0, 1) (default: {defaults['momentum']})"
    )
    o.add_argument("--weight-decay", type=float, help=f"(default: {defaults['weight_decay']:g})")
    o.add_argument("--epochs", type=int, help=f"(default: {defaults['epochs']})")
    o.add_argument("--batch-size", type=int, help=f"(default: {defaults['batch_size']})")
    o.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="random shifts of up to 2 pixels (default: on)",
    )
    o.add_argument("--seed", type=int, help="a non-negative integer (default: 0)")
    io = p.add_argument_group("input/output")
    io.add_argument(
        "--save",
        type=Path,
        metavar="PATH",
        help="checkpoint here after every epoch (and a .history.csv beside it)",
    )
    io.add_argument("--load", type=Path, metavar="PATH", help="start from a checkpoint's weights")
    io.add_argument(
        "--resume",
        type=Path,
        metavar="PATH",
        help="continue an interrupted --save run from its checkpoint: its settings, "
        "weights, optimizer, epoch and random state (--epochs may extend it)",
    )
    io.add_argument("--eval-only", action="store_true", help="with --load: only evaluate")
    io.add_argument("--json", type=Path, metavar="PATH", help="write metrics here")
    io.add_argument(
        "--plot",
        type=Path,
        metavar="PATH",
        help="picture of the run (.png, .pdf or .svg; needs matplotlib)",
    )
    io.add_argument("--no-progress", action="store_true", help="no per-batch progress bar")
    io.add_argument(
        "--no-jit",
        action="store_true",
        help="run the training step eagerly instead of capturing and replaying it (tg.jit)",
    )
    return p


def parse_args(ex: Example, argv=None) -> argparse.Namespace:
    """The flags, with `explicit` (the settings given on the command line) and defaults filled in."""
    args = build_parser(ex).parse_args(argv)
    args.explicit = {key for key in ex.settings if getattr(args, key) is not None}
    return args


def fill_defaults(ex: Example, args, settings: dict) -> None:
    """Settings not given on the command line come from settings (a checkpoint's or the defaults)."""
    for key, default in ex.settings.items():
        if key not in args.explicit:
            value = settings.get(key, default)
            setattr(args, key, Path(value) if key in PATHS and value is not None else value)
    if args.lr is None:
        args.lr = ex.lr[args.optimizer]


def invalid(ex: Example, args) -> list[str]:
    """What is wrong with the settings (from flags or a checkpoint); [] when nothing is."""
    problems = []
    if args.epochs < 1:
        problems.append(f"--epochs must be at least 1, got {args.epochs}")
    if not args.lr > 0 or not math.isfinite(args.lr):
        problems.append(f"--lr must be a positive number, got {args.lr}")
    problems += ex.invalid(args)
    if not 0 <= args.momentum < 1:
        problems.append(f"--momentum must be in [0, 1), got {args.momentum}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        problems.append(f"--weight-decay must be a finite number >= 0, got {args.weight_decay}")
    if args.batch_size < 1:
        problems.append(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.seed < 0:
        problems.append(f"--seed must be a non-negative integer, got {args.seed}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        problems.append(f"--data-dir {args.data_dir}: no such directory")
    if args.data_dir is not None and args.train_csv is not None:
        problems.append("give --data-dir or --train-csv, not both")
    for name, path in (("--train-csv", args.train_csv), ("--test-csv", args.test_csv)):
        if path is not None and not os.path.isfile(path):
            problems.append(f"{name} {path}: no such file")
    if args.test_csv is not None and args.train_csv is None:
        problems.append("--test-csv needs --train-csv")
    if args.label_column is not None and args.train_csv is None:
        problems.append("--label-column needs --train-csv")
    return problems


def invalid_io(args) -> list[str]:
    """What is wrong with the input/output flags themselves."""
    problems = []
    if args.resume is not None and (args.load is not None or args.eval_only):
        problems.append("--resume continues training; it does not go with --load or --eval-only")
    if args.eval_only and args.load is None:
        problems.append("--eval-only needs --load PATH")
    if args.eval_only and args.save is not None:
        problems.append("--eval-only trains nothing, so --save would write nothing; drop one")
    for name, path in (("--load", args.load), ("--resume", args.resume)):
        if path is not None and not os.path.isfile(path):
            problems.append(f"{name} {path}: no such file")
    if args.plot is not None:
        if args.plot.suffix.lower() not in mnist_plot.PLOT_FORMATS:
            problems.append(
                f"--plot {args.plot}: unknown picture format {args.plot.suffix or '(none)'}; "
                f"end the name in {', '.join(mnist_plot.PLOT_FORMATS)}"
            )
        elif importlib.util.find_spec("matplotlib") is None:
            problems.append("--plot needs matplotlib: pip install 'tinygrad_np[plot]'")
    return problems


# --- what a checkpoint says, checked before it is used ---


def recorded_config(ex: Example, ckpt: tg.Checkpoint) -> dict:
    """The architecture ckpt's model records, when it is this example's model; else a
    CheckpointError saying what it holds."""
    spec = ckpt.meta.get("model", {})
    config = spec.get("config")
    if spec.get("class") != ex.model_class:
        raise tg.CheckpointError(
            f"{ckpt.path}: holds a {spec.get('class')} model, but {ex.prog} trains a "
            f"{ex.model_class}; use the example that saved it, or build the model yourself "
            f"and use tg.restore()"
        )
    if not isinstance(config, dict):
        raise tg.CheckpointError(
            f"{ckpt.path}: holds a {spec.get('class')} without a recorded architecture; build "
            f"the model yourself and use restore()"
        )
    return config


def resumed_settings(ex: Example, ckpt: tg.Checkpoint) -> dict:
    """The settings of the --save run that wrote ckpt, each checked; a CheckpointError names the
    first bad key."""
    path, extra = ckpt.path, ckpt.extra
    if not isinstance(extra.get("args"), dict) or "rng" not in extra:
        raise tg.CheckpointError(
            f"{path}: not a checkpoint of a --save run; use --load to start from its weights"
        )
    spec = ckpt.meta.get("model", {})
    if spec.get("class") != ex.model_class:
        recorded_config(ex, ckpt)  # raises: another example's model
    settings = extra["args"]
    for key, (ok, what) in ex.setting_types.items():
        if key not in settings and key in OPTIONAL_SETTINGS:
            continue
        if key not in settings:
            raise tg.CheckpointError(f"{path}: the recorded settings have no {key!r}")
        if not ok(settings[key]):
            raise tg.CheckpointError(
                f"{path}: the recorded setting {key}={settings[key]!r:.60} is not {what}"
            )
    if not (INT[0](extra.get("epoch")) and 0 <= extra["epoch"] <= settings["epochs"]):
        raise tg.CheckpointError(
            f"{path}: the recorded epoch {extra.get('epoch')!r:.40} is not a whole number of "
            f"epochs between 0 and the run's {settings['epochs']}"
        )
    history = extra.get("history")
    if not (
        isinstance(history, list)
        and all(isinstance(h, dict) and all(NUMBER[0](h.get(k)) for k in RECORD) for h in history)
        and [h["epoch"] for h in history] == list(range(1, extra["epoch"] + 1))
    ):
        raise tg.CheckpointError(
            f"{path}: the recorded 'history' is not a list of epochs 1 to {extra['epoch']}, each "
            f"with {', '.join(RECORD)}"
        )
    schedule = extra.get("schedule")
    if not (
        isinstance(schedule, dict)
        and INT[0](schedule.get("count"))
        and NUMBER[0](schedule.get("base_lr"))
    ):
        raise tg.CheckpointError(f"{path}: the recorded 'schedule' is not a cosine schedule state")
    try:
        np.random.default_rng().bit_generator.state = extra["rng"]
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise tg.CheckpointError(f"{path}: the recorded 'rng' is not a PCG64 state ({e})") from None
    if (schedule["count"], schedule["base_lr"]) != (extra["epoch"], settings["lr"]):
        raise tg.CheckpointError(
            f"{path}: the recorded schedule (step {schedule['count']}, base rate "
            f"{schedule['base_lr']}) is not that of epoch {extra['epoch']} of a run at --lr "
            f"{settings['lr']}"
        )
    check_optimizer_state(ckpt, settings)
    config = spec.get("config")
    if not isinstance(config, dict) or config != ex.config(argparse.Namespace(**settings)):
        raise tg.CheckpointError(
            f"{path}: the recorded settings ({as_flags(settings, ex.arch_keys)}) are not the "
            f"architecture its model records ({config!r:.80}); the file was edited"
        )
    return settings


def check_optimizer_state(ckpt: tg.Checkpoint, settings: dict) -> None:
    """The optimizer a --save run recorded must be the one its settings describe."""
    sgd = settings["optimizer"] == "sgd"
    expected = {"class": "SGD" if sgd else "AdamW", "weight_decay": settings["weight_decay"]}
    if sgd:
        expected.update(momentum=settings["momentum"], nesterov=settings["momentum"] > 0)
    state = ckpt.optimizer_state
    found = {"class": ckpt.optimizer_class, **{k: state.get(k) for k in expected if k != "class"}}
    wrong = [f"{k} {found[k]!r:.30} (expected {v!r})" for k, v in expected.items() if found[k] != v]
    if wrong:
        raise tg.CheckpointError(
            f"{ckpt.path}: the recorded optimizer state does not match the run's settings: "
            f"{', '.join(wrong)}; the file was edited or is not from this trainer"
        )


def resume_conflicts(ex: Example, args, settings: dict) -> list[str]:
    """The flags given beside --resume that would change the run it continues."""
    changed = []
    for key in sorted(args.explicit - {"epochs"}):
        saved, given = settings.get(key, ex.settings[key]), getattr(args, key)
        if key in PATHS and None not in (saved, given):
            saved, given = os.path.realpath(saved), os.path.realpath(given)
        if given != saved:
            changed.append(f"{flag(key)} (the run has {shown(saved)})")
    return changed


def model_conflicts(args, saved: dict) -> list[str]:
    """The model flags given beside --load that differ from the checkpoint's architecture."""
    return [
        f"{flag(key)} (the checkpoint has {shown(v)})"
        for key, v in saved.items()
        if key in args.explicit and getattr(args, key) != v
    ]


def nonfinite_weights(ckpt: tg.Checkpoint) -> list[str]:
    return [name for name, a in ckpt.model_state.items() if not np.isfinite(a).all()]


def memory_needed(ex: Example, args) -> tuple[int, int]:
    """(parameters, bytes) a run of this model needs at its peak, in float32: weights, gradients,
    optimizer buffers, the copies a checkpoint makes, and a batch's activations."""
    n, per_example = ex.size(args)
    buffers = 2 if args.optimizer == "adam" else 1
    copies = 2 + buffers + (1 + buffers if args.save is not None else 0)
    rows = max(args.batch_size, 1000)  # evaluation runs 1000 rows at a time
    return n, 4 * (n * copies + 4 * rows * per_example)


def outputs(args) -> list[Output]:
    """Every file this run writes: the one list the output checks run over."""
    found = []
    if args.save is not None:
        found += [
            Output("--save", args.save, "tinygrad_np checkpoint", is_checkpoint),
            Output("--save", history_path(args.save), "training history CSV", is_history_csv),
        ]
    if args.json is not None:
        found.append(Output("--json", args.json, "metrics JSON file of this trainer", is_metrics))
    if args.plot is not None:
        found.append(Output("--plot", args.plot, f"{args.plot.suffix} picture", is_picture))
    return found


def inputs(args) -> list[tuple[str, Path]]:
    """Every file this run reads (that an output must never replace)."""
    found = [
        (name, path)
        for name, path in (
            ("--train-csv", args.train_csv),
            ("--test-csv", args.test_csv),
            ("--load", args.load),
            ("--resume", args.resume),
        )
        if path is not None
    ]
    if args.data_dir is not None:
        with contextlib.suppress(OSError):
            found += [
                ("--data-dir", p) for p in sorted(args.data_dir.iterdir()) if os.path.isfile(p)
            ]
    return found


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def is_history_csv(path: Path) -> bool:
    return _head(path, 64).startswith(b"epoch,loss")


def is_json_with(path: Path, keys: set[str]) -> bool:
    """Whether path holds a JSON object (of at most 64 MiB) with these keys: a metrics file an
    example wrote, which that example may replace."""
    if path.stat().st_size > 1 << 26:
        return False
    try:
        metrics = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(metrics, dict) and keys <= metrics.keys()


def is_metrics(path: Path) -> bool:
    return is_json_with(path, {"test_accuracy", "epochs"})


def is_picture(path: Path) -> bool:
    head = _head(path)
    return head.startswith((b"\x89PNG", b"%PDF")) or b"<svg" in head


def check_run(ex: Example, args) -> tuple[tg.Checkpoint | None, tg.Checkpoint | None]:
    """Check everything before any data is loaded or anything trained; return the (resume, load)
    checkpoints. Problems with flags exit 2 with one line; a bad checkpoint is a CheckpointError."""
    fail = build_parser(ex).error
    for problem in invalid_io(args):
        fail(problem)
    resume = load = None
    if args.resume is not None:
        resume = tg.load_checkpoint(args.resume)
        settings = resumed_settings(ex, resume)
        changed = resume_conflicts(ex, args, settings)
        if changed:
            fail(
                f"--resume {args.resume} continues a run with its own settings; "
                f"{', '.join(changed)} would change it: drop "
                f"{'that flag' if len(changed) == 1 else 'those flags'}, or start a new run"
            )
        bad = nonfinite_weights(resume)
        if bad:
            fail(
                f"--resume {args.resume}: the weights {', '.join(bad[:3])} hold NaN or inf (the "
                f"run diverged before it was saved); start a new run with a lower --lr"
            )
        fill_defaults(ex, args, settings)
        done = resume.extra["epoch"]
        if args.epochs <= done:
            fail(
                f"--resume {args.resume}: the run has finished {done} epoch{'s' * (done != 1)}, so there is "
                f"nothing to train with --epochs {args.epochs}; give --epochs N > {done} to "
                f"extend it, or evaluate it with --load {args.resume} --eval-only"
            )
        args.save = args.save or args.resume
    else:
        fill_defaults(ex, args, ex.settings)
    if args.load is not None:
        load = tg.load_checkpoint(args.load)
        saved = ex.settings_of(recorded_config(ex, load), args.load)
        changed = model_conflicts(args, saved)
        if changed:
            fail(
                f"--load {args.load} fixes the model; {', '.join(changed)} would not apply: "
                f"drop {'that flag' if len(changed) == 1 else 'those flags'}"
            )
        bad = nonfinite_weights(load)
        if bad:
            fail(
                f"--load {args.load}: the weights {', '.join(bad[:3])} hold NaN or inf (the run "
                f"that saved them diverged); load an earlier checkpoint or train anew"
            )
        for key, value in saved.items():
            setattr(args, key, value)
    for problem in invalid(ex, args):
        fail(problem if resume is None else f"--resume {args.resume}: recorded setting: {problem}")
    n, needed = memory_needed(ex, args)
    have = available_memory()
    if needed > have:
        given = as_flags(vars(args), ex.size_keys)
        if not (set(ex.size_keys) & args.explicit) and (resume or load) is not None:
            given = f"{'--resume' if resume else '--load'} {(resume or load).path}: its {given}"
        fail(
            f"{given}: the model has {n:,} parameters and with --batch-size {args.batch_size} "
            f"needs about {needed / 1e9:.1f} GB to train; this machine has {have / 1e9:.1f} GB "
            f"available; choose smaller {' or '.join(map(flag, ex.size_keys))} sizes (or a "
            f"smaller --batch-size)"
        )
    problems = check_outputs(outputs(args), inputs(args), {("--save", "--resume")})
    if problems:
        fail(problems[0])
    return resume, load


# --- training ---


def preprocess(ex: Example, images: np.ndarray, stats: tuple[float, float]) -> np.ndarray:
    """uint8 (N, 28, 28) -> normalised float32 in the model's input shape (N, *ex.input_shape)."""
    mean, std = stats
    x = images.reshape(len(images), *ex.input_shape).astype(np.float32)
    return ((x * (1 / 255.0)) - mean) * (1 / std)


@no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits for every row of x, in evaluation mode (dropout off), without recording a graph."""
    model.eval()
    out = np.concatenate(
        [model(Tensor(x[i : i + batch_size])).data for i in range(0, len(x), batch_size)]
    )
    model.train()
    return out


@no_grad()
def mean_loss(logits: np.ndarray, labels: np.ndarray) -> float | None:
    """The mean cross-entropy, or None where it is not finite (JSON has no NaN or infinity)."""
    loss = F.cross_entropy(Tensor(logits), labels).item()
    return loss if math.isfinite(loss) else None


def progress(iterable, total: int, desc: str, enabled: bool):
    """A tqdm bar when tqdm is installed and wanted; otherwise the plain iterable."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        leave=False,
        unit="batch",
        dynamic_ncols=True,
        disable=None,
    )  # None: no bar when stderr is not a terminal


def make_optimizer(args, params) -> optim.Optimizer:
    if args.optimizer == "sgd":
        return optim.SGD(
            params,
            lr=args.lr,
            momentum=args.momentum,
            nesterov=args.momentum > 0,
            weight_decay=args.weight_decay,
        )
    return optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)


def write_text(what: str, path: Path, text: str) -> None:
    """Write text atomically; a failure is a WriteFailed naming the output and the OS error."""
    try:
        tg.data.atomic_write(path, lambda f: f.write(text.encode()))
    except OSError as e:
        raise WriteFailed(what, path, e) from None


class Run:
    """Everything a checkpoint must hold to continue training exactly where it stopped."""

    def __init__(self, ex: Example, args, model, opt, rng):
        self.ex, self.args, self.model, self.opt, self.rng = ex, args, model, opt, rng
        self.schedule = optim.CosineLR(opt, total=args.epochs)
        self.history, self.epoch, self.saved_epoch = [], 0, None

    def save(self) -> None:
        with sigint_deferred():  # Ctrl-C while writing: finish this checkpoint, then stop
            self._save()

    def _save(self) -> None:
        args = self.args
        extra = {
            "epoch": self.epoch,
            "history": self.history,
            "rng": self.rng.bit_generator.state,
            "schedule": self.schedule.state_dict(),
            "args": json_args(args, self.ex.settings),
        }
        try:
            tg.save_checkpoint(args.save, self.model, self.opt, extra=extra)
        except OSError as e:
            raise WriteFailed("the checkpoint", args.save, e) from None
        self.saved_epoch = self.epoch
        import pandas as pd

        write_text(
            "the history", history_path(args.save), pd.DataFrame(self.history).to_csv(index=False)
        )

    def restore(self, ckpt: tg.Checkpoint) -> None:
        extra = ckpt.extra
        ckpt.load_into(self.model, self.opt)
        self.schedule.load_state_dict(extra["schedule"])
        self.rng.bit_generator.state = extra["rng"]
        self.history, self.epoch = list(extra["history"]), int(extra["epoch"])
        self.saved_epoch = self.epoch

    def kept(self) -> str:
        """What is on disk, for the last line of a run that stopped early."""
        if self.saved_epoch:
            return (
                f"the checkpoint {self.args.save} holds epoch {self.saved_epoch}; continue with "
                f"--resume {self.args.save}"
            )
        return "no checkpoint was written" + (
            "" if self.args.save else " (use --save PATH to keep progress)"
        )

    def kept_after(self) -> str:
        """What is on disk once training is over, for a run that stopped while reporting."""
        if self.args.save is not None and self.saved_epoch:
            return f"the checkpoint {self.args.save} holds all {self.saved_epoch} epochs"
        return "the results printed above are all that was kept"


@contextlib.contextmanager
def sigint_deferred():
    """Hold back Ctrl-C (SIGINT) until the block is done, then raise KeyboardInterrupt."""
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def json_args(args, keys=None) -> dict:
    """The flags (all, or those in keys) as JSON-able values: paths become absolute strings, so a
    run resumed from another folder reads the same files."""
    return {
        k: (os.path.abspath(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if (keys is None or k in keys) and k != "explicit"
    }


def history_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.stem + ".history.csv")


def divergence_advice(args, opt) -> str:
    advice = f"lower --lr (try --lr {args.lr / 10:g})"
    if args.optimizer == "sgd" and args.momentum >= 0.95:
        advice += f" or --momentum (it is {args.momentum:g})"
    return f"(learning rate {opt.lr:.3g}); {advice}"


def stats_of(data) -> tuple[float, float]:
    return STATS.get(data.name, MNIST_STATS)


def train(run: Run, data) -> None:
    """Train from run.epoch + 1 to args.epochs, checkpointing after each epoch when --save is set."""
    ex, args, model, opt, rng = run.ex, run.args, run.model, run.opt, run.rng
    stats = stats_of(data)
    x_test = preprocess(ex, data.x_test, stats)
    x_train_eval = preprocess(ex, data.x_train, stats)
    n_batches = -(-len(data.x_train) // args.batch_size)
    # captured once per batch shape and replayed (the last partial batch has its own capture)
    step = ex.step if args.no_jit else tg.jit(ex.step)
    for epoch in range(run.epoch + 1, args.epochs + 1):
        start = time.perf_counter()
        lr = opt.lr  # the rate this epoch trains at (the schedule steps after it)
        images = random_shift(data.x_train, 2, rng) if args.augment else data.x_train
        x_train = preprocess(ex, images, stats)
        bar = progress(
            batches(x_train, data.y_train, args.batch_size, rng=rng),
            n_batches,
            f"epoch {epoch}/{args.epochs}",
            not args.no_progress,
        )
        total_loss, seen = 0.0, 0
        for i, (xb, yb) in enumerate(bar):
            value = step(model, opt, xb, yb).item()
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    f"the loss became {value} in epoch {epoch}, step {i + 1}/{n_batches} "
                    + divergence_advice(args, opt)
                )
            total_loss += value * len(yb)
            seen += len(yb)
            if hasattr(bar, "set_postfix") and i % 10 == 0:
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", samples_s=f"{seen / elapsed:.0f}")
        run.schedule.step()
        seconds = time.perf_counter() - start
        test_logits = predict(model, x_test)
        record = {
            "epoch": epoch,
            "loss": total_loss / seen,
            "test_loss": mean_loss(test_logits, data.y_test),
            "lr": lr,
            "seconds": seconds,
            "train_accuracy": F.accuracy(predict(model, x_train_eval), data.y_train),
            "test_accuracy": F.accuracy(test_logits, data.y_test),
        }
        run.history.append(record)
        run.epoch = epoch
        if args.save is not None:
            run.save()  # before the epoch's line: what the line reports is on disk
        print(
            f"epoch {epoch:3d}/{args.epochs}  loss {record['loss']:.4f}  "
            f"train {100 * record['train_accuracy']:.2f}%  test {100 * record['test_accuracy']:.2f}%  "
            f"{seconds:.1f}s",
            flush=True,
        )


def confusion_table(labels: np.ndarray, predicted: np.ndarray) -> str:
    """The 10x10 confusion matrix (rows true, columns predicted), every class shown."""
    import pandas as pd

    counts = mnist_plot.confusion(labels, predicted, 10)
    names = pd.Index(range(10), name="true")
    return pd.DataFrame(
        counts, index=names, columns=pd.Index(range(10), name="predicted")
    ).to_string()


def title(ex: Example, args, data, test_accuracy: float) -> str:
    """One line for the picture: the data, the result and the main settings."""
    model = ex.describe(args)
    if args.eval_only:
        return (
            f"{data.name}: {len(data.y_test):,} test · accuracy {100 * test_accuracy:.2f}% · "
            f"{model} · weights from {args.load}"
        )
    opt = "SGD (Nesterov)" if args.optimizer == "sgd" else "AdamW"
    return (
        f"{data.name}: {len(data.y_train):,} train / {len(data.y_test):,} test · test accuracy "
        f"{100 * test_accuracy:.2f}% · {model} · {opt} lr {args.lr:g}, {args.epochs} epochs, "
        f"batch {args.batch_size}{', augmented' if args.augment else ''}"
    )


def main(ex: Example, argv=None) -> int:
    """Run the example's command line; the exit status: 0 done, 1 stopped part way, 2 bad input,
    130 Ctrl-C."""
    args = parse_args(ex, argv)
    try:
        resume, load = check_run(ex, args)
        return run_cli(ex, args, resume, load)
    except (tg.DataError, tg.data.DownloadError) as e:  # bad data, checkpoint or download: one line
        print(f"{ex.prog}: error: {e}", file=sys.stderr)
        return 2
    except WriteFailed as e:
        print(f"{ex.prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before training started (training and reporting handle their own)
        print("\ninterrupted before training started; nothing was written", file=sys.stderr)
        return 130
    except OSError as e:  # a file or folder the checks could not read (permissions, a name too long)
        print(f"{ex.prog}: error: {e}", file=sys.stderr)
        return 2


def load_data(args):
    if args.train_csv is not None:
        return load_csv(args.train_csv, args.test_csv, label_column=args.label_column)
    system_dir = os.environ.get(SYSTEM_DATA_ENV) or SYSTEM_DIR
    return load_mnist(
        args.dataset, data_dir=args.data_dir, progress=not args.no_progress, system_dir=system_dir
    )


def run_cli(ex: Example, args, resume: tg.Checkpoint | None, load: tg.Checkpoint | None) -> int:
    data = load_data(args)
    print(f"data: {data.source}", flush=True)
    if args.dataset == "auto" and data.name in ("mnist", "sample"):
        args.dataset = data.name  # recorded as used: a resumed run must not switch data sets
    init_seed, train_seed = np.random.SeedSequence(args.seed).spawn(2)
    rng = np.random.default_rng(train_seed)
    # with --load the initial weights are replaced: they are drawn from the training stream, as
    # the MLP example always did, so its --load runs repeat
    model = ex.build(args, rng if load is not None else np.random.default_rng(init_seed), rng)
    if load is not None:
        load.load_into(model)
    n_params = sum(p.size for p in model.parameters())
    opt = make_optimizer(args, model.parameters())
    run = Run(ex, args, model, opt, rng)
    if resume is not None:
        run.restore(resume)
        print(f"resuming {args.resume} after epoch {run.epoch} of {args.epochs}", flush=True)
    print(f"model: {model}, {n_params:,} parameters; optimizer: {opt}", flush=True)

    train_seconds = 0.0
    if not args.eval_only:
        start = time.perf_counter()
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                train(run, data)  # overflow is caught as a non-finite loss, with advice
        except KeyboardInterrupt:
            print(
                f"\ninterrupted in epoch {run.epoch + 1} of {args.epochs}; {run.kept()}",
                file=sys.stderr,
            )
            return 130
        except NonFiniteLoss as e:
            kept = (
                f"; the checkpoint {args.save} holds epoch {run.saved_epoch}"
                if run.saved_epoch
                else ""
            )
            print(f"{ex.prog}: stopped: {e}{kept}", file=sys.stderr)
            return 1
        except WriteFailed as e:
            print(f"{ex.prog}: error: {e}; {run.kept()}", file=sys.stderr)
            return 1
        train_seconds = time.perf_counter() - start
    try:
        report(ex, args, data, model, run, train_seconds)
    except KeyboardInterrupt:
        print(f"\ninterrupted after training; {run.kept_after()}", file=sys.stderr)
        return 130
    except WriteFailed as e:
        print(f"{ex.prog}: error: {e}; {run.kept_after()}", file=sys.stderr)
        return 1
    return 0


def report(ex: Example, args, data, model, run: Run, train_seconds: float) -> None:
    """Evaluate, print the result and the confusion matrix, write --json and --plot."""
    predicted = predict(model, preprocess(ex, data.x_test, stats_of(data))).argmax(axis=1)
    correct = int((predicted == data.y_test).sum())
    test_accuracy = correct / len(data.y_test)
    print(
        f"test accuracy: {100 * test_accuracy:.2f}% ({correct}/{len(data.y_test)}) "
        f"after {train_seconds:.1f}s of training"
    )
    print(confusion_table(data.y_test, predicted))
    if args.save is not None:
        print(f"saved {args.save} and {history_path(args.save)}")
    if args.json is not None:
        metrics = {
            "dataset": data.name,
            "source": data.source,
            "n_train": len(data.y_train),
            "n_test": len(data.y_test),
            "test_accuracy": test_accuracy,
            "train_seconds": train_seconds,
            "epochs": run.history,
            "args": json_args(args),
        }
        write_text("the metrics", args.json, json.dumps(metrics, indent=2))
    if args.plot is not None:
        history = [] if args.eval_only else run.history
        try:
            mnist_plot.plot(
                args.plot,
                history,
                data.x_test,
                data.y_test,
                predicted,
                title(ex, args, data, test_accuracy),
                classes=CLASSES.get(data.name),
            )
        except OSError as e:
            raise WriteFailed("the picture", args.plot, e) from None
