"""Train a multilayer perceptron on MNIST with tinygrad_np.

    python examples/mnist_mlp.py                      # full MNIST if cached/downloadable, else the sample
    python examples/mnist_mlp.py --dataset sample --epochs 5 --json metrics.json
    python examples/mnist_mlp.py --dataset fashion-mnist   # apt-get install dataset-fashion-mnist
    python examples/mnist_mlp.py --hidden 1024 --activation gelu --optimizer adam --lr 1e-3
    python examples/mnist_mlp.py --load model.npz --eval-only
    python examples/mnist_mlp.py --save run.npz ...   # Ctrl-C, then: --resume run.npz

The model is plain tensor expressions: for each hidden layer ``x = act(x @ W + b)`` (with dropout
while training), then ``logits = x @ W_out + b_out``; see tinygrad_np.nn.MLP.forward.

This file is the model: its settings and flags, how to build it, and the training step. Everything
else (data, checks, checkpoints, resume, evaluation, JSON, picture, Ctrl-C) is examples/trainer.py,
which mnist_cnn.py shares.
"""

from __future__ import annotations

import sys

import trainer  # beside this script: python puts the script's folder first on sys.path

import tinygrad_np as tg
from tinygrad_np import Tensor, nn
from tinygrad_np.nn import functional as F

SIZES_IN, CLASSES = 28 * 28, 10
DEFAULTS = {"hidden": [512, 256], "activation": "relu", "dropout": 0.1}
TYPES = {  # how --resume checks what a checkpoint recorded
    "hidden": trainer.INT_LIST,
    "activation": (lambda v: v in nn.ACTIVATIONS, f"one of {', '.join(sorted(nn.ACTIVATIONS))}"),
    "dropout": trainer.NUMBER,
}


def add_flags(group) -> None:
    group.add_argument("--hidden", type=int, nargs="+", metavar="N", help="hidden sizes (512 256)")
    group.add_argument("--activation", choices=sorted(nn.ACTIVATIONS), help="(default: relu)")
    group.add_argument("--dropout", type=float, help="after each hidden layer (default: 0.1)")


def invalid(args) -> list[str]:
    problems = []
    if any(n < 1 for n in args.hidden):
        problems.append(f"--hidden sizes must be positive, got {' '.join(map(str, args.hidden))}")
    if not 0 <= args.dropout < 1:
        problems.append(f"--dropout must be in [0, 1), got {args.dropout}")
    return problems


def sizes(args) -> list[int]:
    return [SIZES_IN, *args.hidden, CLASSES]


def config(args) -> dict:
    """The architecture nn.MLP records (its .config), which a checkpoint keeps."""
    return {"sizes": sizes(args), "activation": args.activation, "dropout": float(args.dropout)}


def settings_of(config: dict, path) -> dict:
    """The flags a recorded MLP architecture means."""
    for key in ("activation", "dropout"):
        ok, what = TYPES[key]
        if not ok(config.get(key)):
            raise tg.CheckpointError(
                f"{path}: the recorded architecture's {key} {config.get(key)!r:.40} is not {what}"
            )
    return {
        "hidden": config["sizes"][1:-1],
        "activation": config["activation"],
        "dropout": config["dropout"],
    }


def build(args, init_rng, rng) -> nn.MLP:
    model = nn.MLP(sizes(args), args.activation, args.dropout, rng=init_rng)
    model.dropout.rng = rng  # dropout masks come from the training stream
    return model


def step(model, opt, x, y) -> Tensor:
    loss = F.cross_entropy(model(Tensor(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def size(args) -> tuple[int, int]:
    """(parameters, floats of activations per example)."""
    s = sizes(args)
    return sum((a + 1) * b for a, b in zip(s[:-1], s[1:])), sum(s)


def describe(args) -> str:
    return f"MLP {sizes(args)} {args.activation}, dropout {args.dropout:g}"


EXAMPLE = trainer.Example(
    prog="mnist_mlp.py",
    description="Train an MLP on MNIST with tinygrad_np.",
    model_class="MLP",
    defaults=DEFAULTS,
    types=TYPES,
    add_flags=add_flags,
    invalid=invalid,
    config=config,
    settings_of=settings_of,
    build=build,
    size=size,
    describe=describe,
    step=step,
    input_shape=(SIZES_IN,),
    size_keys=("hidden",),
)

if __name__ == "__main__":
    sys.exit(trainer.main(EXAMPLE))
