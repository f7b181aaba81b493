"""Train a multilayer perceptron on MNIST with tinygrad_np.

    python examples/mnist_mlp.py                      # full MNIST if cached/downloadable, else the sample
    python examples/mnist_mlp.py --dataset sample --epochs 5 --json metrics.json
    python examples/mnist_mlp.py --hidden 1024 --activation gelu --optimizer adam --lr 1e-3
    python examples/mnist_mlp.py --load model.npz --eval-only

The model is plain tensor expressions: for each hidden layer ``x = act(x @ W + b)`` (with dropout
while training), then ``logits = x @ W_out + b_out``; see tinygrad_np.nn.MLP.forward.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import tinygrad_np as tg
from tinygrad_np import Tensor, no_grad, nn, optim
from tinygrad_np.data import batches, load_mnist, random_shift
from tinygrad_np.nn import functional as F

MEAN, STD = 0.1307, 0.3081  # MNIST pixel statistics, the usual normalisation


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train an MLP on MNIST with tinygrad_np.")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=["auto", "mnist", "fashion-mnist", "sample"], default="auto",
                   help="auto (default): full MNIST when cached or downloadable, else the bundled sample")
    d.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="a folder with the four MNIST IDX files (.gz or raw)")
    d.add_argument("--train-csv", type=Path, metavar="CSV",
                   help="CSV with a label column and 784 pixel columns")
    d.add_argument("--test-csv", type=Path, metavar="CSV",
                   help="test CSV (default: hold out 1/6 of --train-csv)")
    m = p.add_argument_group("model")
    m.add_argument("--hidden", type=int, nargs="+", default=[512, 256], metavar="N",
                   help="hidden layer sizes (default: 512 256)")
    m.add_argument("--activation", choices=sorted(nn.ACTIVATIONS), default="relu",
                   help="(default: relu)")
    m.add_argument("--dropout", type=float, default=0.1,
                   help="dropout probability after each hidden layer (default: 0.1)")
    o = p.add_argument_group("training")
    o.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                   help="sgd (Nesterov momentum) or adam (AdamW) (default: sgd)")
    o.add_argument("--lr", type=float, default=None, help="initial learning rate, cosine-decayed "
                                                          "(default: 0.05 for sgd, 1e-3 for adam)")
    o.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    o.add_argument("--weight-decay", type=float, default=1e-3, help="(default: 1e-3)")
    o.add_argument("--epochs", type=int, default=60, help="(default: 60)")
    o.add_argument("--batch-size", type=int, default=128, help="(default: 128)")
    o.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random shifts of up to 2 pixels (default: on)")
    o.add_argument("--seed", type=int, default=0, help="(default: 0)")
    io = p.add_argument_group("input/output")
    io.add_argument("--save", type=Path, metavar="PATH",
                    help="write a checkpoint here (and a .history.csv beside it)")
    io.add_argument("--load", type=Path, metavar="PATH", help="start from this checkpoint")
    io.add_argument("--eval-only", action="store_true", help="with --load: only evaluate")
    io.add_argument("--json", type=Path, metavar="PATH", help="write metrics here")
    io.add_argument("--plot", type=Path, metavar="PATH",
                    help="PNG of loss/accuracy curves and misclassified digits (needs matplotlib)")
    io.add_argument("--no-progress", action="store_true", help="no per-batch progress bar")
    args = p.parse_args(argv)
    if args.lr is None:
        args.lr = 0.05 if args.optimizer == "sgd" else 1e-3
    if args.eval_only and args.load is None:
        p.error("--eval-only needs --load PATH")
    return args


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> normalised float32 (N, 784)."""
    return ((images.reshape(len(images), -1).astype(np.float32) * (1 / 255.0)) - MEAN) * (1 / STD)


@no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits for every row of x, in evaluation mode (dropout off), without recording a graph."""
    model.eval()
    out = np.concatenate([model(Tensor(x[i:i + batch_size])).data
                          for i in range(0, len(x), batch_size)])
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
    return tqdm(iterable, total=total, desc=desc, leave=False, unit="batch", dynamic_ncols=True,
                disable=None)  # None: no bar when stderr is not a terminal


def make_optimizer(args, params) -> optim.Optimizer:
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.momentum > 0,
                         weight_decay=args.weight_decay)
    return optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)


def train(args, data, model, opt, rng) -> list[dict]:
    """The training loop; returns one dict of metrics per epoch."""
    x_test = preprocess(data.x_test)
    x_train_eval = preprocess(data.x_train)
    schedule = optim.CosineLR(opt, total=args.epochs)
    n_batches = -(-len(data.x_train) // args.batch_size)
    history = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        images = random_shift(data.x_train, 2, rng) if args.augment else data.x_train
        x_train = preprocess(images)
        bar = progress(batches(x_train, data.y_train, args.batch_size, rng=rng), n_batches,
                       f"epoch {epoch}/{args.epochs}", not args.no_progress)
        total_loss, seen = 0.0, 0
        for i, (xb, yb) in enumerate(bar):
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(yb)
            seen += len(yb)
            if hasattr(bar, "set_postfix") and i % 10 == 0:
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", samples_s=f"{seen / elapsed:.0f}")
        if not np.isfinite(total_loss):
            raise FloatingPointError(f"loss became non-finite in epoch {epoch}; lower --lr "
                                     f"(now {args.lr})")
        schedule.step()
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "loss": total_loss / seen, "lr": opt.lr, "seconds": seconds,
                  "train_accuracy": F.accuracy(predict(model, x_train_eval), data.y_train),
                  "test_accuracy": F.accuracy(predict(model, x_test), data.y_test)}
        history.append(record)
        print(f"epoch {epoch:3d}/{args.epochs}  loss {record['loss']:.4f}  "
              f"train {100 * record['train_accuracy']:.2f}%  test {100 * record['test_accuracy']:.2f}%  "
              f"{seconds:.1f}s", flush=True)
    return history


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
    fig = plt.figure(figsize=(12, 4))
    ax = fig.add_subplot(1, 3, 1)
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o")
    ax.set(title="training loss", xlabel="epoch")
    ax = fig.add_subplot(1, 3, 2)
    for key in ("train_accuracy", "test_accuracy"):
        ax.plot([h["epoch"] for h in history], [h[key] for h in history], marker="o", label=key)
    ax.set(title="accuracy", xlabel="epoch")
    ax.legend()
    grid = fig.add_gridspec(4, 12)
    for k, i in enumerate(wrong):
        ax = fig.add_subplot(grid[k // 4, 8 + k % 4])
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
    data = load_mnist(args.dataset, data_dir=args.data_dir, train_csv=args.train_csv,
                      test_csv=args.test_csv)
    print(f"data: {data.source}", flush=True)
    init_seed, train_seed = np.random.SeedSequence(args.seed).spawn(2)
    rng = np.random.default_rng(train_seed)
    if args.load is not None:
        ckpt = tg.load_checkpoint(args.load)
        model = ckpt.build_model(rng=rng)
    else:
        sizes = [28 * 28, *args.hidden, 10]
        model = nn.MLP(sizes, args.activation, args.dropout, rng=np.random.default_rng(init_seed))
    model.dropout.rng = rng  # dropout masks come from the training stream
    n_params = sum(p.size for p in model.parameters())
    opt = make_optimizer(args, model.parameters())
    print(f"model: {model}, {n_params:,} parameters; optimizer: {opt}", flush=True)

    history, train_seconds = [], 0.0
    if not args.eval_only:
        start = time.perf_counter()
        history = train(args, data, model, opt, rng)
        train_seconds = time.perf_counter() - start
    predicted = predict(model, preprocess(data.x_test)).argmax(axis=1)
    correct = int((predicted == data.y_test).sum())
    test_accuracy = correct / len(data.y_test)
    print(f"test accuracy: {100 * test_accuracy:.2f}% ({correct}/{len(data.y_test)}) "
          f"after {train_seconds:.1f}s of training")
    print(confusion_matrix(data.y_test, predicted).to_string())

    if args.save is not None and not args.eval_only:
        tg.save_checkpoint(args.save, model, opt, extra={"epoch": args.epochs, "seed": args.seed})
        history_csv = args.save.with_name(args.save.stem + ".history.csv")
        import pandas as pd

        text = pd.DataFrame(history).to_csv(index=False)
        tg.data.atomic_write(history_csv, lambda f: f.write(text.encode()))
        print(f"saved {args.save} and {history_csv}")
    if args.json is not None:
        metrics = {"dataset": data.name, "source": data.source, "n_train": len(data.y_train),
                   "n_test": len(data.y_test), "test_accuracy": test_accuracy,
                   "train_seconds": train_seconds, "epochs": history, "args": {
                       k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
        text = json.dumps(metrics, indent=2)
        tg.data.atomic_write(args.json, lambda f: f.write(text.encode()))
    if args.plot is not None:
        plot(args.plot, history, data, predicted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
