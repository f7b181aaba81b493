"""Reductions, scans, sorting and norms (tinygrad_np/reductions.py) beyond the case table: numpy's
values and dtypes on the same data, results without a gradient (any, all, argmax, argsort), the
conventions at zeros and ties, the numpy functions that dispatch to them, and the errors."""

import numpy as np
import pytest
from numpy.exceptions import AxisError

import tinygrad_np as tg
from tinygrad_np import Tensor, ops

X = np.array([[[0.5, -1.0, 2.0, 0.0], [3.0, 1.5, -2.5, 1.0], [-0.5, 2.5, 1.0, -3.0]]] * 2)
X[1] *= -0.5

SAME = {
    "cumsum": (lambda t: t.cumsum(), lambda a: np.cumsum(a)),
    "cumsum_axis": (lambda t: t.cumsum(axis=1), lambda a: np.cumsum(a, axis=1)),
    "cumprod": (lambda t: t.cumprod(), lambda a: np.cumprod(a)),
    "cumprod_axis": (lambda t: t.cumprod(-1), lambda a: np.cumprod(a, -1)),
    "prod": (lambda t: t.prod(), lambda a: np.prod(a)),
    "prod_axes": (
        lambda t: t.prod((0, 2), keepdims=True),
        lambda a: np.prod(a, (0, 2), keepdims=True),
    ),
    "prod_empty": (lambda t: t[:, :0].prod(1), lambda a: np.prod(a[:, :0], 1)),
    "diff": (lambda t: t.diff(), lambda a: np.diff(a)),
    "diff_n_axis": (lambda t: t.diff(2, axis=1), lambda a: np.diff(a, 2, axis=1)),
    "diff_prepend_append": (
        lambda t: t.diff(axis=0, prepend=t[-1:], append=t[:1]),
        lambda a: np.diff(a, axis=0, prepend=a[-1:], append=a[:1]),
    ),
    "trace": (lambda t: t.trace(), lambda a: np.trace(a)),
    "trace_offset": (lambda t: t.trace(1, 1, 2), lambda a: np.trace(a, 1, 1, 2)),
    "any": (lambda t: t.any(axis=2), lambda a: np.any(a, axis=2)),
    "all_keepdims": (lambda t: t.all(0, keepdims=True), lambda a: np.all(a, 0, keepdims=True)),
    "argmax": (lambda t: t.argmax(), lambda a: np.argmax(a)),
    "argmax_axis": (lambda t: t.argmax(1, keepdims=True), lambda a: np.argmax(a, 1, keepdims=True)),
    "argmin": (lambda t: t.argmin(axis=-1), lambda a: np.argmin(a, axis=-1)),
    "sort": (lambda t: t.sort(), lambda a: np.sort(a)),
    "sort_flat": (lambda t: t.sort(None), lambda a: np.sort(a, None)),
    "argsort": (lambda t: t.argsort(1), lambda a: np.argsort(a, 1, kind="stable")),
}


@pytest.mark.parametrize("name", sorted(SAME))
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
def test_values_and_dtypes_match_numpy(name, dtype):
    ours, theirs = SAME[name]
    a = (X > 0) if dtype is np.bool_ else (X * 2).astype(dtype)
    out, expected = ours(Tensor(a, dtype=dtype)), np.asarray(theirs(a))
    assert isinstance(out, Tensor)
    assert out.shape == expected.shape
    # numpy's integer index dtype is intp (int64 here); sums of bools are integers, as numpy's
    assert out.dtype == expected.dtype, (out.dtype, expected.dtype)
    np.testing.assert_allclose(out.data, expected, rtol=1e-6 if dtype is np.float32 else 1e-13)


@pytest.mark.parametrize("ord", [None, 1, 2, np.inf, -np.inf, 0, 3, 0.5])
@pytest.mark.parametrize("axis", [0, -1, None])
def test_vector_norms_match_numpy(ord, axis):
    x = X[0]
    if axis is None and ord is not None:
        x = x[0]  # a vector norm: axis=None with ord needs a 1-D tensor
    for keepdims in (False, True):
        out = Tensor(x, dtype=np.float64).norm(ord, axis, keepdims)
        np.testing.assert_allclose(out.data, np.linalg.norm(x, ord, axis, keepdims), rtol=1e-13)


@pytest.mark.parametrize("ord", [None, "fro", 1, -1, np.inf, -np.inf, 2, -2, "nuc"])
@pytest.mark.parametrize("axis", [(0, 1), (2, 0), (-1, -2), None])
def test_matrix_norms_match_numpy(ord, axis):
    x = X if axis is not None else X[0]
    for keepdims in (False, True):
        out = Tensor(x, dtype=np.float64).norm(ord, axis, keepdims)
        np.testing.assert_allclose(out.data, np.linalg.norm(x, ord, axis, keepdims), rtol=1e-13)
    via_numpy = np.linalg.norm(Tensor(x), ord, axis)  # float32: numpy's function, our norm
    np.testing.assert_allclose(via_numpy.data, np.linalg.norm(x, ord, axis), rtol=1e-6)


def test_diff_takes_scalar_prepend_and_append_in_the_tensor_dtype():
    x = np.array([1.0, 4.0, 9.0])
    for dtype in (np.float64, np.float32):
        out = Tensor(x, dtype=dtype).diff(prepend=0, append=10.0)
        assert out.dtype == dtype  # constants take the tensor's dtype (numpy would give float64)
        np.testing.assert_array_equal(out.data, np.diff(x, prepend=0, append=10.0))


def test_whole_tensor_norm_is_the_2_norm_of_every_element():
    out = Tensor(X, dtype=np.float64).norm(keepdims=True)
    assert out.shape == (1, 1, 1)
    np.testing.assert_allclose(out.data, np.linalg.norm(X, keepdims=True), rtol=1e-13)


@pytest.mark.parametrize("ord", [None, 2, 1, 3, "fro", np.inf])
def test_norm_of_zeros_has_zero_gradient_as_torch(ord):
    z = Tensor(np.zeros((2, 3)), dtype=np.float64, requires_grad=True)
    (z.norm(ord, axis=(0, 1)) if ord == "fro" else z.norm(ord, axis=1)).sum().backward()
    np.testing.assert_array_equal(z.grad, np.zeros((2, 3)))
    # second order too: the gradient of the gradient is finite (0 here), not nan
    w = Tensor(np.zeros(3), dtype=np.float64, requires_grad=True)
    (g,) = tg.autograd.grad(w.norm(), w, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), w)
    assert np.all(np.isfinite(h.data))


@pytest.mark.parametrize("ord", [2, "nuc"])
def test_singular_value_norms_of_empty_matrices_are_zero_as_numpy(ord):
    x = Tensor(np.zeros((3, 0, 2)), dtype=np.float64, requires_grad=True)
    out = x.norm(ord, axis=(1, 2))
    np.testing.assert_array_equal(out.data, np.linalg.norm(np.zeros((3, 0, 2)), ord, (1, 2)))
    out.sum().backward()
    assert x.grad.shape == (3, 0, 2)
    with pytest.raises(ValueError, match=r"norm: ord=-2 of matrices of shape \(0, 2\) \(axes"):
        x.norm(-2, axis=(1, 2))  # numpy: no identity for minimum


def test_spectral_norm_shares_the_gradient_of_a_tied_largest_singular_value():
    # the identity's singular values are all 1: the gradient is the mean of the u_i v_i^T, I / 2
    # (as torch.linalg.matrix_norm, whose amax shares ties); its second derivative is undefined
    x = Tensor(np.eye(2), dtype=np.float64, requires_grad=True)
    x.norm(2).backward()
    np.testing.assert_allclose(x.grad, np.eye(2) / 2, atol=1e-15)


def test_count_norm_has_zero_gradient():
    x = Tensor(np.array([0.0, 2.0, -1.0]), dtype=np.float64, requires_grad=True)
    out = x.norm(0)
    assert out.item() == 2.0
    out.backward()
    np.testing.assert_array_equal(x.grad, np.zeros(3))


def test_prod_and_cumprod_gradients_are_exact_at_zeros():
    x = Tensor(np.array([0.0, 2.0, 0.0, 3.0]), dtype=np.float64, requires_grad=True)
    x.prod().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0, 0.0])
    y = Tensor(np.array([0.0, 2.0, 5.0, 3.0]), dtype=np.float64, requires_grad=True)
    y.prod().backward()
    np.testing.assert_array_equal(y.grad, [30.0, 0.0, 0.0, 0.0])
    y.grad = None
    y.cumprod().backward(np.ones(4))  # d/dy0 of y0 + y0 y1 + y0 y1 y2 + y0 y1 y2 y3
    np.testing.assert_array_equal(y.grad, [1.0 + 2.0 + 10.0 + 30.0, 0.0, 0.0, 0.0])


def test_cumsum_gradient_is_the_reversed_cumulative_sum():
    x = Tensor(np.zeros(4), dtype=np.float64, requires_grad=True)
    x.cumsum().backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [10.0, 9.0, 7.0, 4.0])


@pytest.mark.parametrize(
    "call, dtype",
    [
        (lambda t: t.any(), np.bool_),
        (lambda t: t.all(axis=1), np.bool_),
        (lambda t: t.argmax(axis=0), np.int64),
        (lambda t: t.argmin(), np.int64),
        (lambda t: t.argsort(), np.int64),
    ],
)
def test_index_and_truth_results_carry_no_gradient(call, dtype):
    t = Tensor(X, dtype=np.float64, requires_grad=True)
    out = call(t)
    assert out.dtype == dtype and not out.requires_grad and out._op is None


def test_ties_argmax_takes_the_first_and_sort_keeps_the_order_of_equal_elements():
    x = np.array([1.0, 3.0, 3.0, 0.0, 3.0])
    t = Tensor(x, dtype=np.float64, requires_grad=True)
    assert t.argmax().item() == 1 and t.argmin().item() == 3
    assert t.argsort().data.tolist() == [3, 0, 1, 2, 4]
    assert t.argsort(descending=True).data.tolist() == [1, 2, 4, 0, 3]  # as torch's stable sort
    # each output's gradient goes to the element it came from: the tied 3s in their order
    t.sort().backward(np.array([10.0, 20.0, 30.0, 40.0, 50.0]))
    np.testing.assert_array_equal(t.grad, [20.0, 30.0, 40.0, 10.0, 50.0])


def test_descending_sort_matches_numpy_reversed():
    x = X[0]
    out = Tensor(x, dtype=np.float64).sort(axis=1, descending=True)
    np.testing.assert_array_equal(out.data, np.sort(x, axis=1)[:, ::-1])


NUMPY_CALLS = {
    "cumsum": lambda m: np.cumsum(m, axis=0),
    "cumprod": lambda m: np.cumprod(m),
    "prod": lambda m: np.prod(m, axis=1),
    "diff": lambda m: np.diff(m, axis=0),
    "trace": lambda m: np.trace(m),
    "sort": lambda m: np.sort(m, axis=0),
    "norm": lambda m: np.linalg.norm(m, axis=1),
}


@pytest.mark.parametrize("name", sorted(NUMPY_CALLS))
def test_numpy_functions_dispatch_and_are_recorded(name):
    m = np.array([[1.0, -2.0, 3.5], [0.5, 4.0, -1.5], [2.5, -3.0, 1.25]])
    t = Tensor(m, dtype=np.float64, requires_grad=True)
    out = NUMPY_CALLS[name](t)
    assert isinstance(out, Tensor) and out.requires_grad
    np.testing.assert_allclose(out.data, NUMPY_CALLS[name](m), rtol=1e-13)
    tg.gradcheck(NUMPY_CALLS[name], m)


def test_numpy_index_and_truth_functions_dispatch():
    t = Tensor(X, dtype=np.float64)
    assert np.argmax(t, axis=1).data.tolist() == np.argmax(X, axis=1).tolist()
    assert np.argmin(t).item() == np.argmin(X)
    assert np.argsort(t).data.tolist() == np.argsort(X, kind="stable").tolist()
    assert np.any(t > 2).item() and not np.all(t > 2).item()


ERRORS = [
    (lambda t: t.cumsum(3), AxisError, r"cumsum: axis 3 out of range for a 3-d tensor"),
    (
        lambda t: t[0, 0, 0].cumsum(0),
        ValueError,
        r"cumsum: a 0-d tensor has no axis; use axis=None",
    ),
    (lambda t: t.cumprod(-4), AxisError, r"cumprod: axis -4 out of range"),
    (lambda t: t.prod((0, 0)), ValueError, r"prod: repeated axis"),
    (lambda t: t.diff(-1), ValueError, r"diff: order n=-1 must be non-negative"),
    (lambda t: t.diff(axis=3), AxisError, r"diff: axis 3 out of range"),
    (
        lambda t: t.diff(prepend=np.ones((2, 2, 2))),
        ValueError,
        r"diff: prepend/append of shape \(2, 2, 2\) does not fit the tensor of shape \(2, 3, 4\)",
    ),
    (
        lambda t: t[0, 0].trace(),
        ValueError,
        r"trace: needs at least 2 dimensions, got shape \(4,\)",
    ),
    (lambda t: t.any(axis=5), AxisError, r"any: axis 5 out of range"),
    (lambda t: t.argmax(axis=(0, 1)), TypeError, r"argmax: axis must be an int"),
    (lambda t: t.argmin(axis=3), AxisError, r"argmin: axis 3 out of range"),
    (
        lambda t: t[:, :0].argmax(1),
        ValueError,
        r"argmax: a tensor of shape \(2, 0, 4\) has no elements",
    ),
    (lambda t: t.sort(axis=3), AxisError, r"argsort: axis 3 out of range|sort: axis 3"),
    (lambda t: t[0, 0, 0].sort(), ValueError, r"sort: a 0-d tensor has no axis to sort along"),
    (
        lambda t: t.norm(2),
        ValueError,
        r"norm: ord=2 with axis=None needs a 1-D or 2-D tensor, got shape \(2, 3, 4\); give axis=",
    ),
    (
        lambda t: t.norm("fro", axis=1),
        ValueError,
        r"norm: ord='fro' is a matrix norm; give two axes",
    ),
    (
        lambda t: t.norm(3, axis=(0, 1)),
        ValueError,
        r"norm: matrix ord=3 is not a matrix norm; use None or 'fro', 'nuc', 1, -1, 2, -2, inf",
    ),
    (lambda t: t.norm("nuclear", axis=(0, 1)), ValueError, r"norm: matrix ord='nuclear' is not"),
    (
        lambda t: t.norm(axis=(0, 1, 2)),
        ValueError,
        r"norm: axis \(0, 1, 2\) must name one axis or two",
    ),
    (lambda t: t.norm(axis=(1, -2)), ValueError, r"norm: the two axes \(1, -2\) are the same axis"),
    (lambda t: t.norm(axis=4), AxisError, r"norm: axis 4 out of range"),
    (
        lambda t: Tensor(np.array([1, 2])).norm(),
        TypeError,
        r"norm: needs a floating tensor, got int64",
    ),
    (
        lambda t: np.cumsum(t, dtype=np.float32),
        TypeError,
        r"numpy.cumsum on a Tensor: dtype is not supported",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_errors_name_the_op_and_the_fix(call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor(X, dtype=np.float64))


def test_the_svd_rule_names_a_bad_part_and_a_non_matrix():
    with pytest.raises(ValueError, match=r"svd: unknown part 'V'; choose one of \['U', 'S', 'Vh'\]"):
        tg.apply(ops.Svd, Tensor(np.eye(2)), part="V")
    with pytest.raises(ValueError, match=r"svd: needs a matrix .* got shape \(3,\)"):
        tg.apply(ops.Svd, Tensor(np.ones(3)), part="S")
