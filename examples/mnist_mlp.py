"""Train a multilayer perceptron on MNIST with tinygrad_np.

    python examples/mnist_mlp.py                      # full MNIST if cached/downloadable, else the sample
    python examples/mnist_mlp.py --dataset sample --epochs 5 --json metrics.json
    python examples/mnist_mlp.py --hidden 1024 --activation gelu --optimizer adam --lr 1e-3
    python examples/mnist_mlp.py --load model.npz --eval-only
    python examples/mnist_mlp.py --save run.npz ...   # Ctrl-C, then: --resume run.npz

The model is plain tensor expressions: for each hidden layer ``x = act(x @ W + b)`` (with dropout
while training), then ``logits = x @ W_out + b_out``; see tinygrad_np.nn.MLP.forward.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np

import tinygrad_np as tg
from tinygrad_np import Tensor, no_grad, nn, optim
from tinygrad_np.data import batches, load_mnist, random_shift
from tinygrad_np.nn import functional as F

MEAN, STD = 0.1307, 0.3081  # MNIST pixel statistics, the usual normalisation
DEFAULT_EPOCHS = 60
# what --resume restores from the checkpoint (everything that shapes the run, not the outputs)
RESUMED = (
    "dataset",
    "data_dir",
    "train_csv",
    "test_csv",
    "hidden",
    "activation",
    "dropout",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "epochs",
    "batch_size",
    "augment",
    "seed",
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class NonFiniteLoss(ArithmeticError):
    pass


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(description="Train an MLP on MNIST with tinygrad_np.")
    d = p.add_argument_group("data")
    d.add_argument(
        "--dataset",
        choices=["auto", "mnist", "fashion-mnist", "sample"],
        default="auto",
        help="auto (default): full MNIST when cached or downloadable, else the bundled sample",
    )
    d.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="a folder with the four MNIST IDX files (.gz or raw)",
    )
    d.add_argument(
        "--train-csv",
        type=Path,
        metavar="CSV",
        help="CSV with a label column and 784 pixel columns",
    )
    d.add_argument(
        "--test-csv",
        type=Path,
        metavar="CSV",
        help="test CSV (default: hold out 1/6 of --train-csv)",
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=[512, 256],
        metavar="N",
        help="hidden layer sizes (default: 512 256)",
    )
    m.add_argument(
        "--activation", choices=sorted(nn.ACTIVATIONS), default="relu", help="(default: relu)"
    )
    m.add_argument(
        "--dropout",
        type=float,
        default=0.1,
        help="dropout probability after each hidden layer (default: 0.1)",
    )
    o = p.add_argument_group("training")
    o.add_argument(
        "--optimizer",
        choices=["sgd", "adam"],
        default="sgd",
        help="sgd (Nesterov momentum) or adam (AdamW) (default: sgd)",
    )
    o.add_argument(
        "--lr",
        type=float,
        default=None,
        help="initial learning rate, cosine-decayed (default: 0.05 for sgd, 1e-3 for adam)",
    )
    o.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    o.add_argument("--weight-decay", type=float, default=1e-3, help="(default: 1e-3)")
    o.add_argument("--epochs", type=int, default=None, help=f"(default: {DEFAULT_EPOCHS})")
    o.add_argument("--batch-size", type=int, default=128, help="(default: 128)")
    o.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random shifts of up to 2 pixels (default: on)",
    )
    o.add_argument("--seed", type=int, default=0, help="(default: 0)")
    io = p.add_argument_group("input/output")
    io.add_argument(
        "--save",
        type=Path,
        metavar="PATH",
        help="checkpoint here after every epoch (and a .history.csv beside it)",
    )
    io.add_argument(
        "--load", type=Path, metavar="PATH", help="start from this checkpoint's weights"
    )
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
        help="PNG of loss/accuracy curves and misclassified digits (needs matplotlib)",
    )
    io.add_argument("--no-progress", action="store_true", help="no per-batch progress bar")
    args = p.parse_args(argv)
    if args.resume is not None:
        if args.load is not None or args.eval_only:
            p.error("--resume continues training; it does not go with --load or --eval-only")
        if not args.resume.is_file():
            p.error(f"--resume {args.resume}: no such file")
        args.save = args.save or args.resume
    if args.lr is None:
        args.lr = 0.05 if args.optimizer == "sgd" else 1e-3
    for problem in invalid(args):
        p.error(problem)
    return args


def invalid(args) -> list[str]:
    """What is wrong with the flags, before anything is loaded or trained."""
    problems = []
    if args.epochs is not None and args.epochs < 1:
        problems.append(f"--epochs must be at least 1, got {args.epochs}")
    if not args.lr > 0 or not math.isfinite(args.lr):
        problems.append(f"--lr must be a positive number, got {args.lr}")
    if any(n < 1 for n in args.hidden):
        problems.append(f"--hidden sizes must be positive, got {' '.join(map(str, args.hidden))}")
    if not 0 <= args.dropout < 1:
        problems.append(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.momentum < 0 or args.weight_decay < 0:
        problems.append("--momentum and --weight-decay must be >= 0")
    if args.batch_size < 1:
        problems.append(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.data_dir is not None and not args.data_dir.is_dir():
        problems.append(f"--data-dir {args.data_dir}: no such directory")
    if args.data_dir is not None and args.train_csv is not None:
        problems.append("give --data-dir or --train-csv, not both")
    for flag, path in (
        ("--train-csv", args.train_csv),
        ("--test-csv", args.test_csv),
        ("--load", args.load),
    ):
        if path is not None and not path.is_file():
            problems.append(f"{flag} {path}: no such file")
    if args.test_csv is not None and args.train_csv is None:
        problems.append("--test-csv needs --train-csv")
    if args.eval_only and args.load is None:
        problems.append("--eval-only needs --load PATH")
    return problems


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> normalised float32 (N, 784)."""
    return ((images.reshape(len(images), -1).astype(np.float32) * (1 / 255.0)) - MEAN) * (1 / STD)


@no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits for every row of x, in evaluation mode (dropout off), without recording a graph."""
    model.eval()
    out = np.concatenate(
        [model(Tensor(x[i : i + batch_size])).data for i in range(0, len(x), batch_size)]
    )
    model.train()
    return out


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


class Run:
    """Everything a checkpoint must hold to continue training exactly where it stopped."""

    def __init__(self, args, model, opt, rng):
        self.args, self.model, self.opt, self.rng = args, model, opt, rng
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
            "args": json_args(args, RESUMED),
        }
        tg.save_checkpoint(args.save, self.model, self.opt, extra=extra)
        import pandas as pd

        text = pd.DataFrame(self.history).to_csv(index=False)
        tg.data.atomic_write(history_path(args.save), lambda f: f.write(text.encode()))
        self.saved_epoch = self.epoch

    def restore(self, ckpt: tg.Checkpoint) -> None:
        extra = ckpt.extra
        ckpt.load_into(self.model, self.opt)
        self.schedule.load_state_dict(extra["schedule"])
        self.rng.bit_generator.state = extra["rng"]
        self.history, self.epoch = list(extra["history"]), int(extra["epoch"])
        self.saved_epoch = self.epoch


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
    """The flags (all, or those in keys) as JSON-able values: paths become strings."""
    return {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if keys is None or k in keys
    }


def history_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.stem + ".history.csv")


def train(run: Run, data) -> None:
    """Train from run.epoch + 1 to args.epochs, checkpointing after each epoch when --save is set."""
    args, model, opt, rng = run.args, run.model, run.opt, run.rng
    x_test = preprocess(data.x_test)
    x_train_eval = preprocess(data.x_train)
    n_batches = -(-len(data.x_train) // args.batch_size)
    for epoch in range(run.epoch + 1, args.epochs + 1):
        start = time.perf_counter()
        images = random_shift(data.x_train, 2, rng) if args.augment else data.x_train
        x_train = preprocess(images)
        bar = progress(
            batches(x_train, data.y_train, args.batch_size, rng=rng),
            n_batches,
            f"epoch {epoch}/{args.epochs}",
            not args.no_progress,
        )
        total_loss, seen = 0.0, 0
        for i, (xb, yb) in enumerate(bar):
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    f"the loss became {value} in epoch {epoch}, step {i + 1}/"
                    f"{n_batches} (learning rate {opt.lr:.3g}); lower --lr (try "
                    f"--lr {args.lr / 10:g})"
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += value * len(yb)
            seen += len(yb)
            if hasattr(bar, "set_postfix") and i % 10 == 0:
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", samples_s=f"{seen / elapsed:.0f}")
        run.schedule.step()
        seconds = time.perf_counter() - start
        record = {
            "epoch": epoch,
            "loss": total_loss / seen,
            "lr": opt.lr,
            "seconds": seconds,
            "train_accuracy": F.accuracy(predict(model, x_train_eval), data.y_train),
            "test_accuracy": F.accuracy(predict(model, x_test), data.y_test),
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


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray):
    import pandas as pd

    return pd.crosstab(pd.Series(labels, name="true"), pd.Series(predicted, name="predicted"))


def plot(path: Path, history: list[dict], data, predicted: np.ndarray) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install 'tinygrad_np[plot]'", file=sys.stderr)
        return
    wrong = np.flatnonzero(predicted != data.y_test)[:16]
    fig = plt.figure(figsize=(13, 4))
    grid = fig.add_gridspec(4, 13)  # loss | accuracy | a 4x4 block of misclassified digits
    ax = fig.add_subplot(grid[:, 0:4])
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o")
    ax.set(title="training loss", xlabel="epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax = fig.add_subplot(grid[:, 4:8])
    for key in ("train_accuracy", "test_accuracy"):
        ax.plot([h["epoch"] for h in history], [h[key] for h in history], marker="o", label=key)
    ax.set(title="accuracy", xlabel="epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    for k, i in enumerate(wrong):
        ax = fig.add_subplot(grid[k // 4, 9 + k % 4])
        ax.imshow(data.x_test[i], cmap="gray")
        ax.set_title(f"{data.y_test[i]}→{predicted[i]}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.part.png")
    fig.savefig(tmp, dpi=80)
    tmp.replace(path)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run_cli(args)
    except (tg.DataError, tg.data.DownloadError) as e:  # bad data, checkpoint or download: one line
        print(f"mnist_mlp.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before training started (training handles its own)
        print("\ninterrupted before training started; nothing was written", file=sys.stderr)
        return 130


def run_cli(args) -> int:
    resume = tg.load_checkpoint(args.resume) if args.resume is not None else None
    if resume is not None:
        saved = resume.extra.get("args")
        if saved is None or "rng" not in resume.extra:
            raise tg.CheckpointError(
                f"{args.resume}: not a checkpoint of a --save run; use --load "
                f"to start from its weights"
            )
        epochs = args.epochs
        for key in RESUMED:
            value = saved[key]
            setattr(
                args,
                key,
                Path(value) if key in ("data_dir", "train_csv", "test_csv") and value else value,
            )
        args.epochs = epochs or args.epochs
    args.epochs = args.epochs or DEFAULT_EPOCHS

    data = load_mnist(
        args.dataset, data_dir=args.data_dir, train_csv=args.train_csv, test_csv=args.test_csv
    )
    print(f"data: {data.source}", flush=True)
    init_seed, train_seed = np.random.SeedSequence(args.seed).spawn(2)
    rng = np.random.default_rng(train_seed)
    if args.load is not None:
        model = tg.load_checkpoint(args.load).build_model(rng=rng)
    else:
        sizes = [28 * 28, *args.hidden, 10]
        model = nn.MLP(sizes, args.activation, args.dropout, rng=np.random.default_rng(init_seed))
    model.dropout.rng = rng  # dropout masks come from the training stream
    n_params = sum(p.size for p in model.parameters())
    opt = make_optimizer(args, model.parameters())
    run = Run(args, model, opt, rng)
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
            kept = (
                f"the checkpoint {args.save} holds epoch {run.saved_epoch}; continue with "
                f"--resume {args.save}"
                if run.saved_epoch
                else "no checkpoint was written"
                + ("" if args.save else " (use --save PATH to keep progress)")
            )
            print(
                f"\ninterrupted in epoch {run.epoch + 1} of {args.epochs}; {kept}", file=sys.stderr
            )
            return 130
        except NonFiniteLoss as e:
            kept = (
                f"; the checkpoint {args.save} holds epoch {run.saved_epoch}"
                if run.saved_epoch
                else ""
            )
            print(f"mnist_mlp.py: stopped: {e}{kept}", file=sys.stderr)
            return 1
        train_seconds = time.perf_counter() - start
    history = run.history
    predicted = predict(model, preprocess(data.x_test)).argmax(axis=1)
    correct = int((predicted == data.y_test).sum())
    test_accuracy = correct / len(data.y_test)
    print(
        f"test accuracy: {100 * test_accuracy:.2f}% ({correct}/{len(data.y_test)}) "
        f"after {train_seconds:.1f}s of training"
    )
    print(confusion_matrix(data.y_test, predicted).to_string())
    if args.save is not None and not args.eval_only:
        print(f"saved {args.save} and {history_path(args.save)}")
    if args.json is not None:
        metrics = {
            "dataset": data.name,
            "source": data.source,
            "n_train": len(data.y_train),
            "n_test": len(data.y_test),
            "test_accuracy": test_accuracy,
            "train_seconds": train_seconds,
            "epochs": history,
            "args": json_args(args),
        }
        text = json.dumps(metrics, indent=2)
        tg.data.atomic_write(args.json, lambda f: f.write(text.encode()))
    if args.plot is not None:
        plot(args.plot, history, data, predicted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
