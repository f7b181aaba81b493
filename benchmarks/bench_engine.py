"""This engine against an earlier commit of itself, side by side: one MLP training step, two spellings.

    git worktree add /tmp/base <commit>
    python benchmarks/bench_engine.py --baseline /tmp/base --threads 1

The baseline's package is imported under another name (tinygrad_np_base), so both run in one
process, interleaved round by round (the order alternates; warm-up dropped). Two spellings of a
784-256-128-10 (and 784-128-10) MLP with SGD momentum 0.9, float32:

- "example": nn.MLP + F.cross_entropy, the spelling of examples/mnist_mlp.py;
- "plain": the README's expressions, ``(x @ W + b).relu()``, ``.log_softmax(axis=-1)``,
  ``-logp[np.arange(n), y].mean()``.

Reports each one's median microseconds per step and new/base: the median over rounds of the ratio
within a round. Also reports what a create_graph backward costs against a first-order one (this
engine only, where it has tinygrad_np.autograd).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygrad_np as tg  # noqa: E402

ARCHS = [(784, 128, 10), (784, 256, 128, 10)]
BATCHES = [32, 128, 512]


def load_baseline(root: Path):
    """The tinygrad_np package under root, imported as tinygrad_np_base."""
    init = root / "tinygrad_np" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "tinygrad_np_base", init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["tinygrad_np_base"] = module
    spec.loader.exec_module(module)
    return module


def weights(arch, seed=0):
    rng = np.random.default_rng(seed)
    return [
        ((rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32), np.zeros(b, np.float32))
        for a, b in zip(arch[:-1], arch[1:])
    ]


def example_step(lib, arch):
    """nn.MLP + F.cross_entropy + SGD: the example's spelling."""
    model = lib.nn.MLP(list(arch), rng=np.random.default_rng(0))
    opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    F = lib.nn.functional

    def step(x, y):
        loss = F.cross_entropy(model(lib.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def plain_step(lib, arch):
    """The README's plain tensor expressions."""
    params = []
    for w, b in weights(arch):
        params += [lib.Tensor(w, requires_grad=True), lib.Tensor(b, requires_grad=True)]
    opt = lib.optim.SGD(params, lr=0.05, momentum=0.9)

    def step(x, y):
        h = lib.Tensor(x)
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = h.relu()
        logp = h.log_softmax(axis=-1)
        loss = -logp[np.arange(len(y)), y].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def batches(arch, batch, count=8, seed=1):
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((batch, arch[0])).astype(np.float32), rng.integers(0, arch[-1], batch))
        for _ in range(count)
    ]


def time_steps(step, data, steps):
    t0 = time.perf_counter()
    for i in range(steps):
        step(*data[i % len(data)])
    return (time.perf_counter() - t0) / steps * 1e6


def compare(base, arch, batch, make, rounds, steps):
    data = batches(arch, batch)
    new_t, base_t, ratios = [], [], []
    for r in range(rounds):
        pair = [("new", make(tg, arch)), ("base", make(base, arch))]
        if r % 2:
            pair.reverse()
        times = {}
        for name, step in pair:
            time_steps(step, data, 5)  # warm-up
            times[name] = time_steps(step, data, steps)
        new_t.append(times["new"])
        base_t.append(times["base"])
        ratios.append(times["new"] / times["base"])
    return np.median(new_t), np.median(base_t), np.median(ratios), min(ratios), max(ratios)


def create_graph_cost(arch, batch, rounds, steps):
    """Forward + first-order backward (loss.backward()) against forward + autograd.grad(loss,
    params, create_graph=True), the MLP of the comparison with F.cross_entropy."""
    data = batches(arch, batch)
    x, y = data[0]
    params = []
    for w, b in weights(arch):
        params += [tg.Tensor(w, requires_grad=True), tg.Tensor(b, requires_grad=True)]

    def loss():
        h = tg.Tensor(x)
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = h.relu()
        return tg.nn.functional.cross_entropy(h, y)

    def first():
        loss().backward()
        for p in params:
            p.grad = None

    def second():
        tg.autograd.grad(loss(), params, create_graph=True)

    ratios = []
    for r in range(rounds):
        if r % 2:  # the order alternates, as in compare()
            b = time_steps(lambda *_: second(), [()], steps)
            a = time_steps(lambda *_: first(), [()], steps)
        else:
            a = time_steps(lambda *_: first(), [()], steps)
            b = time_steps(lambda *_: second(), [()], steps)
        ratios.append(b / a)
    return np.median(ratios)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", type=Path, required=True, help="a checkout of the earlier commit")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batches", type=int, nargs="+", default=BATCHES)
    args = p.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits, threadpool_info
    except ImportError:
        sys.exit("bench_engine: needs threadpoolctl (pip install -e '.[bench]') to pin BLAS threads")
    base = load_baseline(args.baseline.resolve())
    with threadpool_limits(args.threads):
        blas = ", ".join(
            f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
            for i in threadpool_info()
        )
        print(f"machine: {platform.machine()} {platform.processor() or ''}, python "
              f"{platform.python_version()}, numpy {np.__version__}, BLAS: {blas}")
        print(f"dtype float32, SGD momentum 0.9; {args.rounds} rounds of {args.steps} steps; "
              f"baseline {args.baseline}")
        print(f"{'spelling':8} {'arch':16} {'batch':>5} {'new us':>8} {'base us':>8} "
              f"{'new/base':>8} {'range':>13}")
        for make, name in ((example_step, "example"), (plain_step, "plain")):
            for arch in ARCHS:
                for batch in args.batches:
                    new, old, ratio, lo, hi = compare(base, arch, batch, make, args.rounds, args.steps)
                    print(f"{name:8} {'-'.join(map(str, arch)):16} {batch:5d} {new:8.1f} "
                          f"{old:8.1f} {ratio:8.3f} {lo:6.3f}-{hi:.3f}", flush=True)
        if hasattr(tg, "autograd"):
            for arch in ARCHS:
                for batch in args.batches:
                    cost = create_graph_cost(arch, batch, 4, max(5, args.steps // 4))
                    print(f"create_graph backward / first-order backward, {'-'.join(map(str, arch))}"
                          f" batch {batch}: {cost:.2f}x", flush=True)


if __name__ == "__main__":
    main()
