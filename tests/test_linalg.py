"""tensordot, dot, inner, outer, kron and einsum beyond the case table: numpy's values and shapes
for every form (0-d operands, N-d dot, '...', diagonals, broadcast size-1 labels), the numpy
functions that dispatch to them, integer dtypes kept, and the errors."""

import numpy as np
import pytest
from numpy.exceptions import AxisError

import tinygrad_np as tg
from tinygrad_np import Tensor

rng = np.random.default_rng(0)
A, B = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4, 2))
M, V, SQ = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((3, 3))


def T(a):
    return Tensor(a, dtype=np.asarray(a).dtype)


PAIRS = {
    "tensordot_int": (lambda a, b: tg.tensordot(a, b), lambda a, b: np.tensordot(a, b), A, B),
    "tensordot_pair": (
        lambda a, b: tg.tensordot(a, b, ([1, 2], [0, 1])),
        lambda a, b: np.tensordot(a, b, ([1, 2], [0, 1])),
        A,
        B,
    ),
    "tensordot_outer": (
        lambda a,
        b: tg.tensordot(a, b, 0),
        lambda a,
        b: np.tensordot(a, b, 0),
        M,
        V,
    ),
    "dot_nd_md": (lambda a, b: tg.dot(a, b), np.dot, A, B),
    "dot_nd_1d": (lambda a, b: a.dot(b), np.dot, A, V),
    "dot_vectors": (lambda a, b: a.dot(b), np.dot, V, V),
    "dot_scalar": (lambda a, b: a.dot(b), np.dot, np.float64(2.5), M),
    "inner": (lambda a, b: tg.inner(a, b), np.inner, A, M),
    "outer": (lambda a, b: tg.outer(a, b), np.outer, M, V),
    "kron": (lambda a, b: tg.kron(a, b), np.kron, M, A),
    "kron_vectors": (lambda a, b: a.kron(b), np.kron, V, V[:2]),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_products_match_numpy(name, dtype):
    ours, theirs, a, b = PAIRS[name]
    a, b = (np.asarray(x * 4).astype(dtype) for x in (a, b))
    out, expected = ours(T(a), T(b)), theirs(a, b)
    assert isinstance(out, Tensor) and out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-13)


EINSUMS = [
    ("ij,jk->ik", (M, M.T)),
    ("ij->ji", (M,)),
    ("ii->i", (SQ,)),
    ("ii->", (SQ,)),
    ("ij->", (M,)),
    ("ij,ij->ij", (M, M)),
    ("i,j->ij", (V, V)),
    ("bij,bjk->bik", (A, rng.standard_normal((2, 4, 5)))),
    ("...ij,...jk->...ik", (A, rng.standard_normal((2, 4, 5)))),
    ("...ij,jk->...ik", (rng.standard_normal((5, 1, 2, 3)), M)),
    ("i...,i...->...", (rng.standard_normal((2, 3)), rng.standard_normal((2, 1)))),
    ("ij,jk->ik", (rng.standard_normal((2, 1)), M)),  # a size-1 label broadcasts, as numpy
    ("iij,jk->ik", (rng.standard_normal((3, 3, 4)), M.T)),
    ("ii,ij->j", (SQ, M)),
    ("ijk,ikl->jl", (A, rng.standard_normal((2, 4, 5)))),
    ("ij,kl->", (M, M)),
    ("ji,jk->ki", (M, rng.standard_normal((3, 2)))),
    (" ij , j -> i ", (M, V)),
    ("...,...->...", (M, M)),
    # implicit mode: the letters that appear once, sorted (capitals first), after any '...'
    ("ij,jk", (M, M.T)),
    ("ba,ac", (M, M.T)),
    ("Ba,aC", (M, M.T)),
    ("ii", (SQ,)),
    ("ij,ij", (M, M)),
    ("ji", (M,)),
    ("i...", (M,)),
    ("...ij,...jk", (A, rng.standard_normal((2, 4, 5)))),
    # three and more operands, contracted from the left
    ("ij,jk,kl->il", (M, M.T, M)),
    ("ij,jk,kl", (M, M.T, M)),
    ("i,i,i->", (V, V, V)),
    ("i,j,k->kji", (V, V[:2], V)),
    ("bij,bjk,bkl->bli", (A, rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 5, 3)))),
    ("ij,j,i,ii->", (SQ, V[:3], V[:3], SQ)),
    ("...i,i...,j->...j", (rng.standard_normal((2, 4)), rng.standard_normal((4, 2)), V)),
    ("ij,jl,lk->ik", (M, rng.standard_normal((4, 1)), rng.standard_normal((1, 2)))),
]


@pytest.mark.parametrize("subscripts, operands", EINSUMS)
def test_einsum_matches_numpy(subscripts, operands):
    out = tg.einsum(subscripts, *map(T, operands))
    expected = np.einsum(subscripts, *operands)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)
    via_numpy = np.einsum(subscripts, T(operands[0]), *operands[1:])
    assert isinstance(via_numpy, Tensor)
    np.testing.assert_allclose(via_numpy.data, expected, rtol=1e-12, atol=1e-14)


def test_einsum_keeps_integer_dtypes():
    a = np.arange(6).reshape(2, 3)
    out = tg.einsum("ij,kj->ik", T(a), T(a))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.data, np.einsum("ij,kj->ik", a, a))


def test_einsum_gradient_of_a_diagonal_and_a_contraction():
    x = Tensor(SQ, dtype=np.float64, requires_grad=True)
    y = Tensor(M, dtype=np.float64, requires_grad=True)
    tg.einsum("ii,ij->", x, y).backward()
    np.testing.assert_allclose(x.grad, np.diag(M.sum(1)), rtol=1e-13)
    np.testing.assert_allclose(y.grad, np.repeat(np.diag(SQ)[:, None], 4, 1), rtol=1e-13)


NUMPY_CALLS = {
    "tensordot": lambda m: np.tensordot(m, m, ([0], [1])),
    "dot": lambda m: np.dot(m, m),
    "inner": lambda m: np.inner(m, m),
    "outer": lambda m: np.outer(m, m[0]),
    "kron": lambda m: np.kron(m, m),
    "einsum": lambda m: np.einsum("ij,jk->ki", m, m),
}


@pytest.mark.parametrize("name", sorted(NUMPY_CALLS))
def test_numpy_functions_dispatch_and_are_recorded(name):
    m = SQ
    t = Tensor(m, dtype=np.float64, requires_grad=True)
    out = NUMPY_CALLS[name](t)
    assert isinstance(out, Tensor) and out.requires_grad
    np.testing.assert_allclose(out.data, NUMPY_CALLS[name](m), rtol=1e-13)
    tg.gradcheck(NUMPY_CALLS[name], m)


def test_an_ndarray_first_operand_dispatches_too():
    t = Tensor(M, dtype=np.float64, requires_grad=True)
    for ours, theirs in [(np.dot(SQ, t), np.dot(SQ, M)), (np.kron(V, t), np.kron(V, M))]:
        assert isinstance(ours, Tensor) and ours.requires_grad and ours.dtype == np.float64
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-13)


ERRORS = [
    (
        lambda: tg.tensordot(T(A), T(B), 3),
        ValueError,
        r"tensordot: axes=3 needs 0 <= axes <= 3|tensordot: axis",
    ),
    (lambda: tg.tensordot(T(A), T(B), 4), ValueError, r"tensordot: axes=4 needs 0 <= axes <= 3"),
    (
        lambda: tg.tensordot(T(A), T(B), ([0], [0, 1])),
        ValueError,
        r"tensordot: 1 axes of the first operand but 2",
    ),
    (
        lambda: tg.tensordot(T(A), T(B), ([0], [0])),
        ValueError,
        r"tensordot: axis 0 of \(2, 3, 4\) has size 2 but axis 0 of \(3, 4, 2\) has size 3",
    ),
    (lambda: tg.tensordot(T(A), T(B), ([5], [0])), AxisError, r"tensordot: axis 5 out of range"),
    (lambda: tg.tensordot(T(A), T(B), "x"), TypeError, r"tensordot: axes must be an int or a pair"),
    (
        lambda: tg.dot(T(A), T(A)),
        ValueError,
        r"dot: shapes \(2, 3, 4\) and \(2, 3, 4\) are not aligned",
    ),
    (
        lambda: tg.inner(T(M), T(SQ)),
        ValueError,
        r"inner: shapes \(3, 4\) and \(3, 3\) are not aligned",
    ),
    (lambda: T(M).dot(Tensor(V)), TypeError, r"dot: dtypes float64 and float32 differ"),
    (
        lambda: tg.einsum("ij,jk", T(M), T(M)),
        ValueError,
        r"einsum: subscript 'j' labels dimensions of sizes 4 and 3 in 'ij,jk'",
    ),
    (
        lambda: tg.einsum("ij,jk,kl->il", T(M), T(M.T), T(M.T)),
        ValueError,
        r"einsum: subscript 'k' labels dimensions of sizes 3 and 4 in 'ij,jk,kl->il'",
    ),
    (
        lambda: tg.einsum("ij,jk,kl->il", T(M), T(M.T)),
        ValueError,
        r"einsum: 'ij,jk,kl->il' describes 3 operands but 2 were given",
    ),
    (lambda: tg.einsum("ij->j->i", T(M)), ValueError, r"einsum: 'ij->j->i' has more than one '->'"),
    (
        lambda: tg.einsum("ij,jk->ik", T(M)),
        ValueError,
        r"einsum: 'ij,jk->ik' describes 2 operands but 1 were given",
    ),
    (
        lambda: tg.einsum("ijk->i", T(M)),
        ValueError,
        r"einsum: operand 0 has 2 dimensions but its subscripts 'ijk' name 3",
    ),
    (
        lambda: tg.einsum("ij,jk->ik", T(M), T(M)),
        ValueError,
        r"einsum: subscript 'j' labels dimensions of sizes 4 and 3",
    ),
    (lambda: tg.einsum("ij->ii", T(M)), ValueError, r"einsum: the output 'ii' repeats a subscript"),
    (
        lambda: tg.einsum("ij->k", T(M)),
        ValueError,
        r"einsum: output subscript 'k' appears in no operand",
    ),
    (
        lambda: tg.einsum("ii->i", T(M)),
        ValueError,
        r"einsum: subscript 'i' labels dimensions of sizes 3 and 4 in 'ii->i' \(shapes \(3, 4\)\)",
    ),
    (
        lambda: tg.einsum("ii->i", T(M[:1])),
        ValueError,
        r"einsum: the repeated subscript 'i' labels dimensions of sizes 1 and 4; a diagonal needs",
    ),
    (
        lambda: tg.einsum("i1->i", T(M)),
        ValueError,
        r"einsum: subscripts may be letters and '...' only",
    ),
    (
        lambda: tg.einsum(T(M), "ij->i"),
        TypeError,
        r"einsum: the first argument must be the subscripts string",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_errors_name_the_op_and_the_fix(call, error, message):
    with pytest.raises(error, match=message):
        call()
