"""Per-op overhead of tinygrad_np over the raw numpy it runs, with and without graph recording.

    python benchmarks/bench_ops.py [--shape 32 128]

For each op of the MLP, on float32 arrays of the given shape: the raw numpy expression, the same op
on Tensors that need no gradient (nothing recorded), and on a Tensor with requires_grad=True (the
op is recorded for backward). Reported: the median of several timeit repeats, in microseconds per
call, and the overhead of each over numpy. The two columns are measured interleaved in one process.
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygrad_np as tg  # noqa: E402
from tinygrad_np import Tensor  # noqa: E402
from tinygrad_np.nn import functional as F  # noqa: E402


def cases(shape):
    n, m = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((m, m)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    labels = rng.integers(0, m, n)
    rows = np.arange(n)
    zeros, ones = np.zeros(shape, np.float32), np.ones(m, np.float32)

    # the numpy that tinygrad_np's ops run (ops.py: relu against an array of zeros, the row max of
    # short rows over a transposed copy, row sums as a product with ones), so that the difference
    # is the cost of the framework, not of a formulation
    def relu_numpy(x):
        return np.maximum(x, zeros)

    def ce_numpy(x, y):  # what the fused op computes, probabilities for backward included
        shifted = x - (x.T.copy().max(axis=0)[:, None] if m <= 32 <= n else x.max(1, keepdims=True))
        e = np.exp(shifted)
        s = e @ ones
        e /= s[:, None]
        return (np.log(s) - shifted[rows, y]).sum() / len(y)

    # name -> (numpy function of arrays, tinygrad function of tensors, arrays)
    return {
        "add": (lambda x, y: x + y, lambda x, y: x + y, (a, b)),
        "mul": (lambda x, y: x * y, lambda x, y: x * y, (a, b)),
        "matmul": (lambda x, y: x @ y, lambda x, y: x @ y, (a, w)),
        "x @ W + b": (lambda x, y, z: x @ y + z, lambda x, y, z: x @ y + z, (a, w, bias)),
        "relu": (relu_numpy, lambda x: x.relu(), (a,)),
        "exp": (np.exp, lambda x: x.exp(), (a,)),
        "sum(axis=1)": (lambda x: x.sum(axis=1), lambda x: x.sum(axis=1), (a,)),
        "mean": (lambda x: x.mean(), lambda x: x.mean(), (a,)),
        "log_softmax": (
            lambda x: (
                x
                - x.max(1, keepdims=True)
                - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True))
            ),
            lambda x: x.log_softmax(axis=1),
            (a,),
        ),
        "cross_entropy": (
            lambda x: ce_numpy(x, labels),
            lambda x: F.cross_entropy(x, labels),
            (a,),
        ),
    }


def measure(fn, args, number, repeat):
    times = timeit.repeat(lambda: fn(*args), number=number, repeat=repeat)
    return float(np.median(times)) / number * 1e6


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=2, default=[32, 128])
    p.add_argument("--number", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    blas = "; ".join(
        f"{i['internal_api']} {i['version']}" for i in threadpool_info() if i["user_api"] == "blas"
    )
    print(
        f"machine: {platform.machine()}, python {platform.python_version()}, numpy {np.__version__}, "
        f"BLAS {blas} (1 thread); tinygrad_np {tg.__version__}; float32, shape {tuple(args.shape)}"
    )
    print(
        f"{'op':<14} {'numpy us':>9} {'no graph us':>12} {'recorded us':>12} "
        f"{'+no graph':>10} {'+recorded':>10}"
    )
    with threadpool_limits(limits=1, user_api="blas"):
        for name, (np_fn, tg_fn, arrays) in cases(tuple(args.shape)).items():
            plain = [Tensor(x) for x in arrays]
            tracked = [Tensor(x, requires_grad=True) for x in arrays]
            rows = {"numpy": [], "plain": [], "tracked": []}
            for _ in range(3):  # interleave the three, then take the median of medians
                rows["numpy"].append(measure(np_fn, arrays, args.number, args.repeat))
                rows["plain"].append(measure(tg_fn, plain, args.number, args.repeat))
                rows["tracked"].append(measure(tg_fn, tracked, args.number, args.repeat))
            us = {k: float(np.median(v)) for k, v in rows.items()}
            print(
                f"{name:<14} {us['numpy']:>9.2f} {us['plain']:>12.2f} {us['tracked']:>12.2f} "
                f"{us['plain'] - us['numpy']:>+10.2f} {us['tracked'] - us['numpy']:>+10.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
