"""One MLP training step, side by side: tinygrad_np, hand-written numpy, PyTorch CPU (when installed).

    python benchmarks/bench_mlp.py                 # 1 and 2 threads, all configurations
    python benchmarks/bench_mlp.py --threads 1 --rounds 5 --steps 60

A step is forward, backward, an SGD (momentum 0.9) update and the loss read back as a float. All
implementations start from identical weights and see the same batches: tinygrad_np (the model as
tensor expressions), the hand-written numpy MLP (the baseline the ratios are taken against), the
same hand-written MLP using the faster numpy formulations tinygrad_np's ops use ("numpy tuned", for
reference: tinygrad_np over it is the framework's own cost), and PyTorch. They are timed
interleaved in one process (the order rotates each round, each round builds fresh instances,
warm-up dropped), and the median microseconds per step is reported with each one's ratio to
hand-written numpy: the median over rounds of the ratio within a round, which cancels the slow
drifts of these shared machines. Before timing, they are checked to produce the same losses over
the first 100 steps (to float32 rounding; tinygrad_np and numpy tuned bit for bit).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_mlp import NumpyMLP, TunedNumpyMLP  # noqa: E402

import tinygrad_np as tg  # noqa: E402
from tinygrad_np import Tensor, nn, optim  # noqa: E402
from tinygrad_np.nn import functional as F  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

ARCHS = [(784, 128, 10), (784, 256, 128, 10)]
BATCHES = [32, 128, 512]
LR, MOMENTUM = 0.05, 0.9


def init_weights(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (
            (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32),
            np.zeros(b, np.float32),
        )
        for a, b in zip(sizes[:-1], sizes[1:])
    ]


def make_batches(batch, count, seed=1):
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((batch, 784)).astype(np.float32), rng.integers(0, 10, batch))
        for _ in range(count)
    ]


class TinygradStep:
    """The model as in the example: nn.MLP (x @ W + b, relu), fused cross-entropy, optim.SGD."""

    name = "tinygrad_np"

    def __init__(self, weights):
        self.model = nn.MLP(
            [weights[0][0].shape[0]] + [w.shape[1] for w, _ in weights],
            rng=np.random.default_rng(0),
        )
        self.model.load_state_dict(
            {
                f"linears.{i}.{k}": a
                for i, (w, b) in enumerate(weights)
                for k, a in (("weight", w), ("bias", b))
            }
        )
        self.opt = optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.step = tg.jit(self._step) if self.jitted else self._step

    jitted = False

    def _step(self, x, y):
        loss = F.cross_entropy(self.model(Tensor(x)), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def __call__(self, x, y):
        return self.step(x, y).item()


class TinygradJitStep(TinygradStep):
    """The same step under tinygrad_np.jit (captured on the first two calls, then replayed)."""

    name, jitted = "tg jit", True


class PlainStep:
    """The README's plain expressions: x @ W + b, relu, log_softmax, an integer gather, mean."""

    name, jitted, tanh = "plain", False, False

    def __init__(self, weights):
        self.params = [
            Tensor(a.copy(), requires_grad=True) for pair in weights for a in pair
        ]  # fmt: skip
        self.opt = optim.SGD(self.params, lr=LR, momentum=MOMENTUM)
        self.step = tg.jit(self._step) if self.jitted else self._step

    def _step(self, x, y):
        h, layers = Tensor(x), len(self.params) // 2
        for i in range(layers):
            h = h @ self.params[2 * i] + self.params[2 * i + 1]
            if i < layers - 1:
                h = h.tanh() if self.tanh else h.relu()
        logp = h.log_softmax(axis=-1)
        loss = -logp[np.arange(len(y)), y].mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def __call__(self, x, y):
        return self.step(x, y).item()


class PlainJitStep(PlainStep):
    name, jitted = "plain jit", True


class NumpyStep:
    name, mlp_class = "numpy", NumpyMLP

    def __init__(self, weights):
        self.mlp = self.mlp_class(weights, LR, MOMENTUM)

    def __call__(self, x, y):
        return self.mlp.step(x, y)


class TunedNumpyStep(NumpyStep):
    """For reference: hand-written numpy with the faster formulations tinygrad_np's ops use."""

    name, mlp_class = "numpy tuned", TunedNumpyMLP


class TorchStep:
    name = "torch"

    def __init__(self, weights):
        layers = []
        for i, (w, b) in enumerate(weights):
            lin = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
            layers += [lin] + ([torch.nn.ReLU()] if i < len(weights) - 1 else [])
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)

    def __call__(self, x, y):
        loss = torch.nn.functional.cross_entropy(
            self.model(torch.from_numpy(x)), torch.from_numpy(y)
        )
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()


def implementations():
    return [TinygradStep, TinygradJitStep, PlainStep, PlainJitStep, NumpyStep, TunedNumpyStep] + (
        [TorchStep] if torch is not None else []
    )


def check_agreement(arch, batch, steps=100):
    """Each implementation's (first-step, largest) relative loss difference from numpy's over
    `steps`, and the number of steps where tinygrad_np's loss differs from numpy tuned's at all."""
    weights, data = init_weights(arch), make_batches(batch, steps, seed=2)
    losses = {}
    for impl in implementations():
        step = impl(weights)
        losses[impl.name] = np.array([step(x, y) for x, y in data])
    ref = losses["numpy"]
    agree = {
        name: (float(abs(l[0] - ref[0]) / abs(ref[0])), float(np.max(np.abs(l - ref) / np.abs(ref))))
        for name, l in losses.items()
    }
    # the tuned hand-written step does the same float32 operations as tinygrad_np: equal, bit for bit
    return agree, int(np.sum(losses["tinygrad_np"] != losses["numpy tuned"]))


# The first step runs from identical weights: only float32 rounding separates the losses. Over 100
# steps that rounding compounds through the momentum updates: where it grows, tinygrad_np (whose
# bias-gradient and softmax sums are BLAS products, summed in another order) and PyTorch drift on
# the same curve, from ~1e-7 at step 10 to 0.7-1.2e-4 by step 90 (784-256-128-10 at batch 128 or
# 512, depending on the thread count).
FIRST_STEP_BOUND, BOUND = 1e-6, 1e-3


def time_interleaved(arch, batch, rounds, steps, warmup):
    """Per implementation: the median microseconds per step over all rounds, and the per-round
    ratios to numpy (each round's median over numpy's in the same round), interleaved in rotating
    order."""
    weights, data = init_weights(arch), make_batches(batch, 16)
    impls = implementations()
    samples = {impl.name: [] for impl in impls}  # one list of step times per round
    for r in range(rounds):
        order = impls[r % len(impls) :] + impls[: r % len(impls)]
        for impl in order:
            step = impl(weights)  # fresh instance every round (the 2-thread lottery)
            for i in range(warmup):
                step(*data[i % len(data)])
            times = []
            for i in range(steps):
                x, y = data[i % len(data)]
                t0 = time.perf_counter_ns()
                step(x, y)
                times.append(time.perf_counter_ns() - t0)
            samples[impl.name].append(times)
    us = {name: float(np.median(rs)) / 1000 for name, rs in samples.items()}
    per_round = {name: np.median(rs, axis=1) for name, rs in samples.items()}
    ratios = {name: per_round[name] / per_round["numpy"] for name in samples}
    return us, ratios


def matmul_flops(arch, batch):
    """FLOPs of the step's matmuls: forward, weight gradients, input gradients (not for layer 1)."""
    layers = list(zip(arch[:-1], arch[1:]))
    per = [2 * batch * a * b for a, b in layers]
    return 3 * sum(per) - per[0]


def matmul_peak(n=2048, repeat=5):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeat))
    return 2 * n**3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def describe_machine(threads):
    from threadpoolctl import threadpool_info  # the benchmarks' one extra (pip install -e ".[bench]")

    blas = [
        f"{i['internal_api']} {i['version']} ({i.get('threading_layer', '?')}, "
        f"{i.get('architecture', '?')})"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    ]
    lines = [
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}",
        f"python {platform.python_version()}, numpy {np.__version__}, BLAS: {'; '.join(blas)}",
        f"torch: {torch.__version__ if torch else 'not installed'}; tinygrad_np {tg.__version__}",
        f"threads: {threads} (numpy BLAS via threadpoolctl"
        f"{', torch.set_num_threads' if torch else ''}); dtype float32; SGD lr={LR} "
        f"momentum={MOMENTUM}",
    ]
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    if env:
        lines.append(f"environment: {env}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument(
        "--rounds", type=int, default=10, help="interleaved rounds (fresh instances each)"
    )
    p.add_argument(
        "--steps", type=int, default=100, help="timed steps per implementation per round"
    )
    p.add_argument("--warmup", type=int, default=10)
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    for threads in args.threads:
        with threadpool_limits(limits=threads, user_api="blas"):
            if torch is not None:
                torch.set_num_threads(threads)
            print(describe_machine(threads))
            print(f"float32 matmul peak (2048^3 numpy): {matmul_peak():.1f} GFLOP/s\n")
            names = [impl.name for impl in implementations()]
            others = [n for n in names if n != "numpy"]
            print(
                f"{'arch':<16} {'batch':>5}  "
                + "  ".join(f"{n + ' us':>15}" for n in names)
                + "  "
                + "  ".join(f"{n + '/numpy':>18}" for n in others)
                + f"  {'tg/numpy range':>13}  {'tg/numpy tuned':>14}  {'numpy GFLOP/s':>13}"
                + f"  {'tg GFLOP/s':>10}"
            )
            agreements = {}
            for arch in ARCHS:
                for batch in BATCHES:
                    label = f"{'-'.join(map(str, arch)):<16} {batch:>5}"
                    agree, unequal = check_agreement(arch, batch)
                    agreements[label] = agree
                    bad = {
                        k: v for k, v in agree.items() if v[0] > FIRST_STEP_BOUND or v[1] > BOUND
                    }
                    if unequal:
                        bad["tinygrad_np vs numpy tuned: unequal losses"] = unequal
                    if bad:
                        raise SystemExit(f"implementations disagree on {arch} batch {batch}: {bad}")
                    us, ratios = time_interleaved(
                        arch, batch, args.rounds, args.steps, args.warmup
                    )
                    ratio = {n: float(np.median(r)) for n, r in ratios.items()}
                    tg = ratios["tinygrad_np"]
                    vs_tuned = float(np.median(tg / ratios["numpy tuned"]))
                    flops = matmul_flops(arch, batch)
                    print(
                        f"{label}  "
                        + "  ".join(f"{us[n]:>15.1f}" for n in names)
                        + "  "
                        + "  ".join(f"{ratio[n]:>17.3f}x" for n in others)
                        + f"  {f'{tg.min():.3f}-{tg.max():.3f}':>13}"
                        + f"  {vs_tuned:>13.3f}x"
                        + f"  {flops / us['numpy'] / 1e3:>13.1f}"
                        + f"  {flops / us['tinygrad_np'] / 1e3:>10.1f}",
                        flush=True,
                    )
            print(
                "(ratios: the median over rounds of each round's median step time over numpy's "
                "in the same round; range: tinygrad_np/numpy's lowest and highest round)"
            )
            print(
                f"\nloss difference from numpy's (relative): first step / largest over 100 steps, "
                f"from identical weights and batches; bounds {FIRST_STEP_BOUND:g} / {BOUND:g}; "
                "tinygrad_np's losses equal numpy tuned's bit for bit (checked)"
            )
            print(f"{'arch':<16} {'batch':>5}  " + "  ".join(f"{n:>17}" for n in others))
            for label, agree in agreements.items():
                print(
                    f"{label}  "
                    + "  ".join(f"{'%.1e / %.1e' % agree[n]:>17}" for n in others)
                )
            print()


if __name__ == "__main__":
    main()
