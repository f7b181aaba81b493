"""The Tensor API surface: construction, conversion, comparisons, indexing and module functions."""

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import Tensor


def test_construction_and_attributes():
    t = Tensor([[1, 2, 3], [4, 5, 6]], requires_grad=True)
    assert (t.shape, t.ndim, t.size, t.dtype, len(t)) == ((2, 3), 2, 6, np.float32, 2)
    assert t.grad is None and t.requires_grad
    assert Tensor(3.5).shape == () and Tensor(3.5).item() == 3.5
    assert Tensor(Tensor([1.0])).shape == (1,)


def test_numpy_interop():
    t = Tensor([1.0, 2.0])
    assert np.asarray(t).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float64), [1.0, 2.0])
    assert t.numpy() is t.data
    assert isinstance(np.ones(2) + t, Tensor)  # ndarray (op) Tensor dispatches to Tensor
    assert isinstance(np.ones((2, 2)) @ Tensor(np.ones(2)), Tensor)
    assert (np.ones(2) * t).dtype == np.float32


def test_repr_is_short():
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert (
        repr(Tensor(np.zeros((30, 30)), requires_grad=True))
        == "Tensor(<shape (30, 30)>, requires_grad=True)"
    )
    x = Tensor([1.0], requires_grad=True)
    assert repr(x * 2.0) == "Tensor([2.], op=Mul)"
    assert "dtype=float64" in repr(Tensor([1.0], dtype=np.float64))


def test_comparisons_return_bool_tensors_without_grad():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result, expected in [
        (x < 2, [1, 0, 0]),
        (x <= 2, [1, 1, 0]),
        (x > 2, [0, 0, 1]),
        (x >= 2, [0, 1, 1]),
        (x.eq(2), [0, 1, 0]),
        (x.ne(2), [1, 0, 1]),
        (x.eq(Tensor([1.0, 0.0, 3.0])), [1, 0, 1]),
    ]:
        assert result.dtype == bool and not result.requires_grad
        np.testing.assert_array_equal(result.data, np.array(expected, bool))
    assert len({x, x * 1.0}) == 2  # == is identity, so tensors hash


def test_detach_and_no_grad_results():
    x = Tensor([1.0], requires_grad=True)
    assert not x.detach().requires_grad and np.shares_memory(x.detach().data, x.data)


def test_constructors_take_an_explicit_generator():
    a = Tensor.randn(3, 4, rng=np.random.default_rng(1))
    b = tg.randn((3, 4), rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a.data, b.data)
    u = tg.uniform(1000, low=-2, high=3, rng=np.random.default_rng(0))
    assert u.data.min() >= -2 and u.data.max() < 3
    z = tg.zeros(2, 3, requires_grad=True)
    assert z.requires_grad and z.data.sum() == 0 and tg.ones(2).data.sum() == 2
    assert Tensor.zeros(2, dtype=np.float64).dtype == np.float64


def test_indexing_patterns():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    labels = Tensor([3, 0, 3], dtype=np.int64)
    picked = x[np.arange(3), labels]
    np.testing.assert_array_equal(picked.data, [3.0, 4.0, 11.0])
    picked.sum().backward()
    expected = np.zeros((3, 4))
    expected[[0, 1, 2], [3, 0, 3]] = 1
    np.testing.assert_array_equal(x.grad, expected)

    x.grad = None
    x[[0, 0, 2]].sum().backward()  # repeated rows accumulate
    np.testing.assert_array_equal(x.grad.sum(axis=1), [8.0, 0.0, 4.0])

    x.grad = None
    x[x.data > 5].sum().backward()  # boolean masks
    np.testing.assert_array_equal(x.grad, (x.data > 5).astype(np.float32))
    assert x[1:, ::2].shape == (2, 2) and x[..., None].shape == (3, 4, 1)


def test_movement_shapes():
    x = Tensor(np.zeros((2, 3, 4)))
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((-1,)).shape == (24,)
    assert x.transpose().shape == (4, 3, 2) and x.transpose(1, 0, 2).shape == (3, 2, 4)
    assert x.T.shape == (4, 3, 2)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert Tensor(np.zeros((1, 3, 1))).squeeze().shape == (3,)
    assert Tensor(np.zeros((3, 1))).expand(2, -1, 5).shape == (2, 3, 5)
    assert Tensor(np.zeros(3)).broadcast_to((2, 3)).shape == (2, 3)
    assert tg.stack([Tensor([1.0]), Tensor([2.0])], axis=1).shape == (1, 2)
    assert tg.concatenate([Tensor([1.0]), Tensor([2.0, 3.0])]).shape == (3,)


def test_reductions_match_numpy():
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    x = Tensor(data)
    for axis in (None, 0, 1, (0, 1), -1):
        for keepdims in (False, True):
            for name in ("sum", "mean", "max", "min"):
                np.testing.assert_allclose(
                    getattr(x, name)(axis, keepdims).data,
                    getattr(data, name)(axis=axis, keepdims=keepdims),
                    rtol=1e-6,
                )


def test_softmax_family_is_stable_and_normalised():
    x = Tensor([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])
    assert np.all(np.isfinite(x.log_softmax().data))
    np.testing.assert_allclose(x.softmax().data.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        x.logsumexp(axis=1).data, [1e4, np.log(np.exp([1, 2, 3]).sum())], rtol=1e-6
    )
    np.testing.assert_allclose(Tensor([-np.inf, 0.0]).log_softmax().data, [-np.inf, 0.0])


def test_where_and_clip():
    x = Tensor([-2.0, 0.5, 3.0], requires_grad=True)
    np.testing.assert_array_equal(tg.where(x > 0, x, 0.0).data, [0.0, 0.5, 3.0])
    np.testing.assert_array_equal(tg.where([True, False, True], 1.0, x).data, [1.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.clip(-1, 1).data, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.clip(low=0).data, [0.0, 0.5, 3.0])


def test_truth_value():
    assert bool(Tensor(1.0)) and not bool(Tensor([0.0]))
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2,\) is ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_fused_linear_with_empty_and_0d_operands():
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    empty = Tensor(np.zeros((0, 3))) @ w + b
    assert empty.shape == (0, 2)
    vec = Tensor(np.ones(3)) @ w + b
    np.testing.assert_array_equal(vec.data, [4.0, 4.0])


def test_tensor_shares_memory_only_when_no_cast_is_needed():
    a32 = np.ones(3, np.float32)
    assert np.shares_memory(Tensor(a32).data, a32)
    a64 = np.ones(3)
    assert not np.shares_memory(Tensor(a64).data, a64)  # cast to float32: a copy
    assert np.shares_memory(Tensor(a64, dtype=np.float64).data, a64)


def test_integer_and_bool_arrays_keep_their_dtype():
    labels = np.array([0, 2, 1])
    assert Tensor(labels).dtype == np.int64 and Tensor(labels).data is labels  # shared, no cast
    assert Tensor(np.array([True, False])).dtype == np.bool_
    assert Tensor(labels.astype(np.uint8)).dtype == np.uint8
    assert Tensor([1, 2]).dtype == np.float32 and Tensor(np.arange(2.0)).dtype == np.float32
    assert Tensor(labels, requires_grad=True).dtype == np.float32  # a gradient needs floats
    assert Tensor(labels, dtype=np.float64).dtype == np.float64
    logits = Tensor(np.zeros((3, 4)), requires_grad=True)
    loss = tg.nn.functional.cross_entropy(logits, Tensor(labels))
    assert loss.item() == pytest.approx(np.log(4))
    x = Tensor(np.arange(5.0))
    assert x[Tensor(np.array([4, 0]))].data.tolist() == [4.0, 0.0]
