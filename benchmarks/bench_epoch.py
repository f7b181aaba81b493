"""A full-size training epoch and its peak memory: tinygrad_np, hand-written numpy, PyTorch CPU.

The hand-written numpy MLP runs twice: as written by hand, and "numpy tuned" (bench_mlp.py says
what that is); tinygrad_np runs eagerly, jitted ("tg jit") and as the README's plain expressions
jitted ("plain jit"; the epoch's last, partial batch is a second capture).

    python benchmarks/bench_epoch.py [--threads 1] [--repeats 2]

60,000 examples (full MNIST from the cache when it is there, else synthetic MNIST-shaped data), the
example's default model (784-512-256-10, ReLU; no dropout, which the hand-written MLP lacks), batch
128, SGD with momentum 0.9. Each implementation runs in a fresh process, alternating, `repeats` times:
seconds per epoch (the median; "vs numpy" is the median over rounds of the ratio within a round);
the process's peak resident memory (ru_maxrss) after the epoch, less its resident
memory once the data was loaded (model, gradients, optimizer state and transients);
and, for the numpy-based ones, the peak of numpy/Python allocations during training steps
(tracemalloc, which does not see PyTorch's allocator).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

ARCH = (784, 512, 256, 10)
BATCH = 128


def load_data():
    from tinygrad_np import data

    folder = data.cached("mnist")
    if folder is not None:
        d = data.load_idx_dir(folder, "mnist")
        x = ((d.x_train.reshape(len(d.x_train), -1).astype(np.float32) / 255) - 0.1307) / 0.3081
        return x, d.y_train, "full MNIST (cached)"
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((60000, 784), dtype=np.float32),
        rng.integers(0, 10, 60000),
        "synthetic MNIST-shaped data (60,000 x 784; full MNIST not cached)",
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def worker(name: str, threads: int) -> dict:
    from threadpoolctl import threadpool_limits

    import bench_mlp

    x, y, source = load_data()
    after_data = current_rss_mb()  # the data set is the same for all: measure above it
    impl = {
        "tinygrad_np": bench_mlp.TinygradStep,
        "tg jit": bench_mlp.TinygradJitStep,
        "plain jit": bench_mlp.PlainJitStep,
        "numpy": bench_mlp.NumpyStep,
        "numpy tuned": bench_mlp.TunedNumpyStep,
        "torch": bench_mlp.TorchStep,
    }[name]
    if name == "torch":
        bench_mlp.torch.set_num_threads(threads)
    with threadpool_limits(limits=threads, user_api="blas"):
        step = impl(bench_mlp.init_weights(ARCH))
        order = np.random.default_rng(1).permutation(len(x))
        batches = [order[i : i + BATCH] for i in range(0, len(x), BATCH)]
        for idx in batches[:5]:  # warm up
            step(x[idx], y[idx])
        start = time.perf_counter()
        for idx in batches:
            loss = step(x[idx], y[idx])
        seconds = time.perf_counter() - start
        rss_growth = peak_rss_mb() - after_data
        traced = None
        if name != "torch":  # tracemalloc does not see PyTorch's allocator
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            for idx in batches[:50]:
                step(x[idx], y[idx])
            traced = (tracemalloc.get_traced_memory()[1] - base) / 2**20
            tracemalloc.stop()
    return {
        "name": name,
        "seconds": seconds,
        "rss_growth_mb": rss_growth,
        "peak_rss_mb": peak_rss_mb(),
        "traced_peak_mb": traced,
        "final_loss": loss,
        "source": source,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads)))
        return
    import bench_mlp

    names = ["tinygrad_np", "tg jit", "plain jit", "numpy", "numpy tuned"] + (
        ["torch"] if bench_mlp.torch is not None else []
    )
    results = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--threads", str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(bench_mlp.describe_machine(args.threads))
    print(
        f"data: {results[names[0]][0]['source']}; model {'-'.join(map(str, ARCH))}, batch {BATCH}, "
        f"{args.repeats} fresh processes each"
    )
    print(
        f"{'impl':<12} {'s/epoch':>8} {'vs numpy':>9} {'peak RSS MB':>12} {'above data MB':>14} "
        f"{'traced peak MB':>15}  each process's s/epoch"
    )
    med = {n: float(np.median([r["seconds"] for r in rs])) for n, rs in results.items()}
    # each round runs every implementation once, back to back: the ratio within a round cancels
    # the machine's slower drifts (on these VMs whole minutes run ~30% slower at 2 threads)
    ratio = {
        n: float(np.median([a["seconds"] / b["seconds"] for a, b in zip(rs, results["numpy"])]))
        for n, rs in results.items()
    }
    for name, rs in results.items():
        traced = [r["traced_peak_mb"] for r in rs if r["traced_peak_mb"] is not None]
        print(
            f"{name:<12} {med[name]:>8.2f} {ratio[name]:>8.3f}x "
            f"{np.median([r['peak_rss_mb'] for r in rs]):>12.1f} "
            f"{np.median([r['rss_growth_mb'] for r in rs]):>14.1f} "
            f"{(f'{np.median(traced):.1f}' if traced else 'n/a'):>15}  "
            + " ".join(f"{r['seconds']:.2f}" for r in rs)
        )


if __name__ == "__main__":
    main()
