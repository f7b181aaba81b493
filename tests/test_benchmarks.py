"""The benchmarks' implementations compute the same training (speed itself is measured in
benchmarks/, never asserted here).

tinygrad_np's step and the hand-written "numpy tuned" step run the same float32 operations, so
their losses and weights agree bit for bit; the plain hand-written step and PyTorch sum in other
orders and agree to float32 rounding.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_jit  # noqa: E402
import bench_mlp  # noqa: E402


@pytest.mark.parametrize("arch, batch", [((784, 128, 10), 32), ((784, 64, 32, 10), 96)])
def test_tinygrad_np_trains_bit_for_bit_like_the_tuned_hand_written_step(arch, batch):
    weights, data = bench_mlp.init_weights(arch), bench_mlp.make_batches(batch, 20, seed=3)
    ours, tuned = bench_mlp.TinygradStep(weights), bench_mlp.TunedNumpyStep(weights)
    for x, y in data:
        assert ours(x, y) == tuned(x, y)
    theirs = [a for pair in tuned.mlp.params for a in pair]
    for p, q in zip(ours.model.parameters(), theirs, strict=True):
        np.testing.assert_array_equal(p.data, q)


def test_every_implementation_agrees_to_float32_rounding():
    agree, unequal = bench_mlp.check_agreement((784, 128, 10), 32, steps=30)
    assert unequal == 0
    for name, (first, largest) in agree.items():
        assert first <= bench_mlp.FIRST_STEP_BOUND and largest <= bench_mlp.BOUND, name


@pytest.mark.parametrize("table", sorted(bench_jit.TABLES))
def test_bench_jit_twins_agree_with_hand_written_numpy(table):
    """The passes, Adam and tanh tables time steps that compute the same losses (float32 rounding)."""
    agree = bench_jit.check(bench_jit.TABLES[table], (784, 128, 10), 32, steps=10)
    assert set(agree) == set(bench_jit.TABLES[table])
    for first, worst in agree.values():
        assert first <= 1e-6 and worst <= 1e-3
