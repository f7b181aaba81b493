"""numpy functions on Tensors: recorded on the graph (gradients checked), comparisons as bool Tensors,
a clear TypeError for what has no rule, and == elementwise with hashing by identity."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_np import Tensor, gradcheck
from tinygrad_np.testing import arrays

# numpy spelling -> the Tensor spelling it must equal, value and gradient
SAME = {
    "exp": (lambda t: np.exp(t), lambda t: t.exp()),
    "log": (lambda t: np.log(t * t + 1), lambda t: (t * t + 1).log()),
    "absolute": (lambda t: np.abs(t), lambda t: t.abs()),
    "tanh": (lambda t: np.tanh(t), lambda t: t.tanh()),
    "sqrt": (lambda t: np.sqrt(t * t + 1), lambda t: (t * t + 1).sqrt()),
    "maximum": (lambda t: np.maximum(t, 0.5), lambda t: t.maximum(0.5)),
    "minimum": (lambda t: np.minimum(0.5, t), lambda t: t.minimum(0.5)),
    "add": (lambda t: np.add(np.ones(t.shape), t), lambda t: 1 + t),
    "subtract": (lambda t: np.subtract(2.0, t), lambda t: 2.0 - t),
    "multiply": (lambda t: np.multiply(t, t), lambda t: t * t),
    "divide": (lambda t: np.divide(t, 3.0), lambda t: t / 3.0),
    "power": (lambda t: np.power(t, 2), lambda t: t**2),
    "negative": (lambda t: np.negative(t), lambda t: -t),
    "sum": (lambda t: np.sum(t, axis=-1), lambda t: t.sum(axis=-1)),
    "mean": (lambda t: np.mean(t, axis=0, keepdims=True), lambda t: t.mean(axis=0, keepdims=True)),
    "max": (lambda t: np.max(t), lambda t: t.max()),
    "min": (lambda t: np.min(t, axis=0), lambda t: t.min(axis=0)),
    "where": (lambda t: np.where(t > 0, t, 0.0), lambda t: t.relu()),
    "reshape": (lambda t: np.reshape(t, (-1,)), lambda t: t.reshape(-1)),
    "transpose": (lambda t: np.transpose(t), lambda t: t.transpose()),
    "concatenate": (lambda t: np.concatenate([t, 2 * t]), None),
    "stack": (lambda t: np.stack([t, t], axis=0), None),
    "matmul": (
        lambda t: np.matmul(t, np.ones((t.shape[-1], 2))),
        lambda t: t @ np.ones((t.shape[-1], 2)),
    ),
}


@pytest.mark.parametrize("name", sorted(SAME))
@given(x=arrays(shape=st.sampled_from([(3, 4), (2, 5)]), lo=-3, hi=3))
def test_numpy_functions_are_recorded_and_differentiable(name, x):
    ours, reference = SAME[name]
    out = ours(Tensor(x, dtype=np.float64))
    assert isinstance(out, Tensor)
    if reference is not None:
        np.testing.assert_array_equal(out.data, reference(Tensor(x, dtype=np.float64)).data)
    if name not in ("absolute", "maximum", "minimum", "max", "min", "where"):  # kinks: tested
        # with the Tensor spelling in test_ops_grad.py, which keeps inputs away from them
        gradcheck(ours, x)


def test_comparisons_are_bool_tensors_and_count_with_np_sum():
    pred, y = Tensor(np.array([1, 2, 3, 4])), np.array([1, 0, 3, 0])
    assert (pred == y).dtype == np.bool_ and isinstance(pred == y, Tensor)
    assert int(np.sum(pred == y)) == 2 and int(np.sum(pred != y)) == 2
    assert np.greater(pred, 2).data.tolist() == [False, False, True, True]
    assert (pred == None) is False and (pred != "x") is True  # noqa: E711


def test_tensors_hash_by_identity_and_stay_dict_keys():
    a, b = Tensor([1.0, 2.0]), Tensor([1.0, 2.0])
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and len({a, b}) == 2 and hash(a) != hash(b)
    assert a in [a] and a in d


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t: np.unwrap(t), r"numpy.unwrap has no rule for tinygrad_np Tensors"),
        (lambda t: np.cbrt(t), r"numpy.cbrt has no rule"),
        (lambda t: np.add.reduce(t), r"numpy.add.reduce has no rule"),
        (
            lambda t: np.exp(t, out=np.empty(3)),
            r"numpy.exp\(..., out=...\) on a Tensor: a Tensor is never",
        ),
        (lambda t: np.sum(t, out=np.empty(())), r"numpy.sum\(..., out=...\)"),
        (lambda t: np.sum(t, dtype=np.float64), r"numpy.sum on a Tensor: dtype is not supported"),
    ],
)
def test_numpy_without_a_rule_is_a_type_error_naming_it(call, message):
    t = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(TypeError, match=message):
        call(t)


def test_a_numpy_expression_trains_like_the_tensor_one():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    a = Tensor(w, requires_grad=True, dtype=np.float64)
    np.mean(np.tanh(np.matmul(x, a)) ** 2).backward()
    b = Tensor(w, requires_grad=True, dtype=np.float64)
    ((Tensor(x, dtype=np.float64) @ b).tanh() ** 2).mean().backward()
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-12)
