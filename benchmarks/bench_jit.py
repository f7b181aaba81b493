"""What tinygrad_np.jit's passes are worth, and the jitted step with Adam and with tanh, against
hand-written numpy: interleaved in one process, ratios to hand-written numpy.

    python benchmarks/bench_jit.py                         # 1 thread, every table
    python benchmarks/bench_jit.py --only passes --rounds 9

- passes: the README's plain-expression step (x @ W + b, relu, log_softmax, an integer gather, mean,
  SGD momentum) jitted with passes=(), then adding dead_code, cross_entropy, inplace and buffers
  (the default: every pass); and eager.
- adam: the same plain step with optim.Adam, against the hand-written MLP with Adam's update
  written in numpy (PyTorch's rule, in place).
- tanh: a tanh MLP (plain expressions, SGD momentum) against its hand-written numpy twin.

Each implementation's losses are checked against hand-written numpy's first (float32 rounding:
first step 1e-6, 20 steps 1e-3) before timing. Same timing protocol as bench_mlp.py: each round
builds fresh instances, rotates the order, drops a warm-up; a cell is the median over rounds of
the round's median step time over numpy's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_mlp import (  # noqa: E402
    LR,
    MOMENTUM,
    PlainStep,
    describe_machine,
    init_weights,
    make_batches,
)
from numpy_mlp import NumpyMLP  # noqa: E402

import tinygrad_np as tg  # noqa: E402
from tinygrad_np import Tensor, optim  # noqa: E402

ARCHS = [(784, 128, 10), (784, 256, 128, 10)]
BATCHES = [32, 128, 512]
ADAM_LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
DEFAULT = ("cross_entropy", "dead_code", "inplace", "buffers")  # tg.jit's default passes


class Plain(PlainStep):
    """bench_mlp's plain-expression step with a choice of passes (None: eager), activation and
    optimizer."""

    def __init__(self, weights, passes=None, activation="relu", make_opt=None):
        self.params = [Tensor(a.copy(), requires_grad=True) for pair in weights for a in pair]
        self.opt = (make_opt or (lambda ps: optim.SGD(ps, lr=LR, momentum=MOMENTUM)))(self.params)
        self.tanh = activation == "tanh"
        self.step = self._step if passes is None else tg.jit(self._step, passes=passes)


class NumpyAdamMLP(NumpyMLP):
    """The hand-written ReLU MLP with PyTorch's Adam update, in place."""

    def __init__(self, weights, lr, momentum=0.0):
        super().__init__(weights, lr, 0.0)
        self.m = [(np.zeros_like(w), np.zeros_like(b)) for w, b in self.params]
        self.v = [(np.zeros_like(w), np.zeros_like(b)) for w, b in self.params]
        self.t = 0

    def _update(self, grads) -> None:
        self.t += 1
        (b1, b2), t = BETAS, self.t
        step = self.lr / (1 - b1**t)
        root = np.sqrt(1 - b2**t)
        for params, ms, vs, gs in zip(self.params, self.m, self.v, grads):
            for p, m, v, g in zip(params, ms, vs, gs):
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * (g * g)
                denom = np.sqrt(v)
                denom /= root
                denom += EPS
                p -= step * (m / denom)


class NumpyTanhMLP(NumpyMLP):
    """The hand-written MLP with tanh between the layers (d tanh = 1 - tanh^2)."""

    def activate(self, h):
        np.tanh(h, out=h)

    def activation_grad(self, grad, a):
        grad *= 1 - a * a


class Numpy:
    def __init__(self, weights, cls=NumpyMLP, lr=LR, momentum=MOMENTUM):
        self.mlp = cls(weights, lr, momentum)

    def __call__(self, x, y):
        return self.mlp.step(x, y)


def adam(ps):
    return optim.Adam(ps, lr=ADAM_LR, betas=BETAS, eps=EPS)


TABLES = {
    "passes": {
        "numpy": lambda w: Numpy(w),
        "eager": lambda w: Plain(w),
        "jit passes=()": lambda w: Plain(w, passes=()),
        "+dead_code": lambda w: Plain(w, passes=("dead_code",)),
        "+cross_entropy": lambda w: Plain(w, passes=("cross_entropy", "dead_code")),
        "+inplace": lambda w: Plain(w, passes=("cross_entropy", "dead_code", "inplace")),
        "+buffers (default)": lambda w: Plain(w, passes=DEFAULT),
    },
    "adam": {
        "numpy": lambda w: Numpy(w, NumpyAdamMLP, lr=ADAM_LR),
        "eager": lambda w: Plain(w, make_opt=adam),
        "jit": lambda w: Plain(w, passes=DEFAULT, make_opt=adam),
    },
    "tanh": {
        "numpy": lambda w: Numpy(w, NumpyTanhMLP),
        "eager": lambda w: Plain(w, activation="tanh"),
        "jit": lambda w: Plain(w, passes=DEFAULT, activation="tanh"),
    },
}


def check(impls, arch, batch, steps=20):
    """Each implementation's (first-step, largest) relative loss difference from numpy's."""
    weights, data = init_weights(arch), make_batches(batch, steps, seed=2)
    losses = {}
    for name, make in impls.items():
        step = make(weights)
        losses[name] = np.array([step(x, y) for x, y in data])
    ref = losses["numpy"]
    out = {}
    for name, l in losses.items():
        first, worst = abs(l[0] - ref[0]) / abs(ref[0]), float(np.max(np.abs(l - ref) / np.abs(ref)))
        if first > 1e-6 or worst > 1e-3:
            raise SystemExit(f"{name} {arch} b{batch}: losses differ from numpy's ({first:.1e}, {worst:.1e})")
        out[name] = (first, worst)
    return out


def timed(impls, arch, batch, rounds, steps, warmup=5):
    weights, data = init_weights(arch), make_batches(batch, 16)
    names = list(impls)
    per_round = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            step = impls[name](weights)
            for i in range(warmup):
                step(*data[i % len(data)])
            times = []
            for i in range(steps):
                t0 = time.perf_counter_ns()
                step(*data[i % len(data)])
                times.append(time.perf_counter_ns() - t0)
            per_round[name].append(np.median(times) / 1000)
    base = np.array(per_round["numpy"])
    return {name: (float(np.median(v)), float(np.median(np.array(v) / base))) for name, v in per_round.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--only", choices=sorted(TABLES), nargs="+", default=list(TABLES))
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads, user_api="blas"):
        print(describe_machine(args.threads))
        print(f"{args.rounds} rounds of {args.steps} steps; cells: us a step, ratio to hand-written numpy\n")
        for table in args.only:
            impls = TABLES[table]
            print(f"[{table}]")
            print(f"{'arch':<16}{'batch':>6}" + "".join(f"{name:>22}" for name in impls))
            for arch in ARCHS:
                for batch in BATCHES:
                    check(impls, arch, batch)
                    res = timed(impls, arch, batch, args.rounds, args.steps)
                    cells = "".join(f"{f'{us:.0f} {ratio:.3f}x':>22}" for us, ratio in res.values())
                    print(f"{'-'.join(map(str, arch)):<16}{batch:>6}{cells}", flush=True)
            print()


if __name__ == "__main__":
    main()
