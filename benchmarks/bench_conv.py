"""Convolutional nets, side by side with PyTorch CPU: the CNN training step, conv2d forward+backward
alone at a few shapes, and the unfold layouts the conv kernels chose between.

    python benchmarks/bench_conv.py                       # 1 thread, everything
    python benchmarks/bench_conv.py --rounds 7 --steps 10 --only step

Timed interleaved in one process (the order rotates each round, warm-up dropped); each cell is the
median over rounds of the ratio to PyTorch within a round, which cancels the slow drifts of these
shared machines. Before timing, the CNN step is checked to give PyTorch's losses (float32 rounding).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_mlp import describe_machine, matmul_peak  # noqa: E402

import tinygrad_np as tg  # noqa: E402
from tinygrad_np import Tensor, nn, optim, windows  # noqa: E402
from tinygrad_np.nn import functional as F  # noqa: E402

try:
    import torch

    from tinygrad_np.interop import to_torch
except ImportError:
    torch = None

LR, MOMENTUM = 0.01, 0.9  # a rate at which random batches do not diverge (the loss check)


def cnn(channels, hidden, rng):
    """The example's network (examples/mnist_cnn.py's default shape): two stages of two 3x3
    conv-batchnorm-relu, each stage ending in 2x2 max pooling, then a hidden linear layer."""
    c1, c2 = channels

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False, rng=rng), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, c1), *block(c1, c1), nn.MaxPool2d(2), *block(c1, c2), *block(c2, c2),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 49, hidden, rng=rng), nn.ReLU(),
        nn.Linear(hidden, 10, rng=rng),
    )  # fmt: skip


def step_fns(channels, hidden, batch):
    """name -> a zero-argument training step on a fixed batch, from identical weights."""
    rng = np.random.default_rng(0)
    data = np.random.default_rng(1)
    x = data.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = data.integers(0, 10, batch)

    def ours(jitted):
        model = cnn(channels, hidden, np.random.default_rng(0))
        opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(Tensor(x)), y)
            loss.backward()
            opt.step()
            return loss

        fn = tg.jit(step) if jitted else step
        return lambda: float(fn(x, y).data)

    fns = {"eager": ours(False), "jit": ours(True)}
    if torch is not None:
        tmodel = to_torch(cnn(channels, hidden, rng))
        topt = torch.optim.SGD(tmodel.parameters(), lr=LR, momentum=MOMENTUM)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def theirs():
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tmodel(xt), yt)
            loss.backward()
            topt.step()
            return loss.item()

        fns["torch"] = theirs
    return fns


def check_losses(fns, steps=5) -> float:
    """The largest relative difference of each step's loss from PyTorch's (same weights, data)."""
    if "torch" not in fns:
        return float("nan")
    losses = {name: [fn() for _ in range(steps)] for name, fn in fns.items()}
    ref = np.array(losses["torch"])
    return max(float(np.max(np.abs(np.array(v) - ref) / np.abs(ref))) for v in losses.values())


def interleaved(fns, rounds, steps, warmup=2):
    """Median seconds per call of each fn, and the median per-round ratio to the reference."""
    names = list(fns)
    ref = "torch" if "torch" in fns else names[0]
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            for _ in range(warmup):
                fns[n]()
            t0 = time.perf_counter()
            for _ in range(steps):
                fns[n]()
            times[n].append((time.perf_counter() - t0) / steps)
    ratios = {n: float(np.median(np.array(times[n]) / np.array(times[ref]))) for n in names}
    return {n: float(np.median(t)) for n, t in times.items()}, ratios, ref


CONV_SHAPES = [  # (batch, in, out, size, kernel, stride, padding)
    (64, 1, 32, 28, 3, 1, 1),
    (64, 32, 32, 28, 3, 1, 1),
    (64, 32, 64, 14, 3, 1, 1),
    (64, 64, 64, 7, 3, 2, 1),
    (32, 16, 16, 32, 5, 1, 2),
]


def conv_fns(shape):
    n, cin, cout, size, k, s, p = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, size, size)).astype(np.float32)
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32) * 0.1
    out_shape = F.conv2d(Tensor(x), Tensor(w), stride=s, padding=p).shape
    g = rng.standard_normal(out_shape).astype(np.float32)
    xs, ws = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)

    def ours():
        xs.grad = ws.grad = None
        F.conv2d(xs, ws, stride=s, padding=p).backward(g)

    fns = {"tinygrad_np": ours}
    if torch is not None:
        xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        gt = torch.from_numpy(g)

        def theirs():
            xt.grad = wt.grad = None
            torch.nn.functional.conv2d(xt, wt, stride=s, padding=p).backward(gt)

        fns["torch"] = theirs
    return fns


def layout_fns(shape):
    """The unfold copy alone, in the two orders considered: output positions innermost (chosen;
    (C*KH*KW, N*OH*OW), then one GEMM weights @ cols) or kernel offsets innermost ((N*OH*OW,
    C*KH*KW), then cols @ weights^T), each with its GEMM."""
    n, cin, cout, size, k, s, p = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, size, size)).astype(np.float32)
    w2 = rng.standard_normal((cout, cin * k * k)).astype(np.float32)
    geometry = ((s, s), ((p, p), (p, p)), (1, 1))
    out_hw = windows.output_hw(x.shape, (k, k), geometry)
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.as_strided(
        xpad,
        (n, cin, *out_hw, k, k),
        (*xpad.strides[:2], xpad.strides[2] * s, xpad.strides[3] * s, *xpad.strides[2:]),
    )

    def positions_inner():
        w2 @ win.transpose(1, 4, 5, 0, 2, 3).reshape(cin * k * k, -1)

    def offsets_inner():
        win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, cin * k * k) @ w2.T

    return {"positions innermost": positions_inner, "offsets innermost": offsets_inner}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--channels", type=int, nargs=2, default=[32, 64])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--only", choices=["step", "conv", "layout"], nargs="+", default=["step", "conv", "layout"])
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads, user_api="blas"):
        if torch is not None:
            torch.set_num_threads(args.threads)
        print(describe_machine(args.threads))
        print(f"float32 matmul peak (2048^3 numpy): {matmul_peak():.1f} GFLOP/s\n")
        if "step" in args.only:
            fns = step_fns(args.channels, args.hidden, args.batch)
            print(
                f"CNN step, channels {args.channels}, hidden {args.hidden}, batch {args.batch}, "
                f"1x28x28 float32, SGD momentum: loss vs torch over 5 steps, largest relative "
                f"difference {check_losses(step_fns(args.channels, args.hidden, args.batch)):.1e}"
            )
            secs, ratios, ref = interleaved(fns, args.rounds, args.steps)
            for n in fns:
                print(f"  {n:<12} {secs[n] * 1e3:8.1f} ms/step   {ratios[n]:.2f}x {ref}")
        if "conv" in args.only:
            print("\nconv2d forward + backward (input and weight gradients), float32")
            print(f"  {'N, Cin, Cout, HxW, k, stride, pad':<36} {'ours ms':>8} {'torch ms':>9} {'ratio':>6}")
            for shape in CONV_SHAPES:
                secs, ratios, ref = interleaved(conv_fns(shape), args.rounds, args.steps)
                n, cin, cout, size, k, s, pad = shape
                label = f"{n}, {cin}, {cout}, {size}x{size}, {k}, {s}, {pad}"
                t = secs.get("torch", float("nan"))
                print(f"  {label:<36} {secs['tinygrad_np'] * 1e3:8.2f} {t * 1e3:9.2f} {ratios['tinygrad_np']:6.2f}")
        if "layout" in args.only:
            print("\nunfold + GEMM of the forward, the two orders (ratio to 'positions innermost')")
            for shape in CONV_SHAPES:
                fns = layout_fns(shape)
                secs, _, _ = interleaved(fns, args.rounds, args.steps)
                a, b = secs["positions innermost"], secs["offsets innermost"]
                print(f"  {str(shape):<36} positions {a * 1e3:7.2f} ms   offsets {b * 1e3:7.2f} ms   {b / a:.2f}x")


if __name__ == "__main__":
    main()
