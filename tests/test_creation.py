"""Constructors: numpy's names, arguments and values; float32 by default for floats, numpy's integer
dtype for integers; random draws from an explicit generator."""

import numpy as np
import pytest

import tinygrad_np as tg


def test_values_and_dtypes_follow_numpy():
    assert tg.arange(5).dtype == np.int64 and tg.arange(5).data.tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(1, 7, 2).data.tolist() == [1, 3, 5]
    assert tg.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert tg.arange(3, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(tg.linspace(0, 1, 5).data, np.linspace(0, 1, 5, dtype=np.float32))
    assert tg.linspace(0, 1, 4, endpoint=False).data.tolist() == [0.0, 0.25, 0.5, 0.75]
    np.testing.assert_array_equal(tg.eye(3, 4, k=1).data, np.eye(3, 4, 1, dtype=np.float32))
    assert tg.full((2, 3), 1.5).dtype == np.float32 and tg.full((2,), 7).dtype == np.int64
    assert tg.empty(2, 3).shape == (2, 3) and tg.empty((4,)).shape == (4,)
    t = tg.Tensor(np.ones((2, 2)), dtype=np.float64)
    assert tg.zeros_like(t).dtype == np.float64 and (tg.zeros_like(t).data == 0).all()
    assert tg.ones_like(t, dtype=np.float32).dtype == np.float32
    assert tg.full_like(t, 3.0).data.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    w = tg.zeros_like(t, requires_grad=True)
    (w * 2).sum().backward()
    assert w.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_random_constructors_draw_from_the_generator_given():
    a = tg.randint(0, 10, (3, 4), rng=np.random.default_rng(5))
    b = np.random.default_rng(5).integers(0, 10, (3, 4))
    assert a.dtype == np.int64 and (a.data == b).all()
    n = tg.normal(2.0, 0.5, (1000,), rng=np.random.default_rng(1))
    assert n.dtype == np.float32
    np.testing.assert_array_equal(
        n.data, np.random.default_rng(1).normal(2.0, 0.5, 1000).astype(np.float32)
    )
    with pytest.raises(ValueError, match="normal: std must be >= 0"):
        tg.normal(0.0, -1.0, (2,))
