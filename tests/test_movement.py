"""Movement ops (tinygrad_np/movement.py and the stacking functions) beyond the case table: numpy's
values on the same data, integer and bool dtypes kept, the numpy functions that dispatch to them,
PyTorch's aliases, and the errors (naming the op called, the shapes or axis, and the fix)."""

import numpy as np
import pytest
from numpy.exceptions import AxisError

import tinygrad_np as tg
from tinygrad_np import Tensor

X = np.arange(24.0).reshape(2, 3, 4)

# (our call, numpy's call) on the same array
SAME = {
    "flip": (lambda t: t.flip(), lambda a: np.flip(a)),
    "flip_axes": (lambda t: t.flip((0, 2)), lambda a: np.flip(a, (0, 2))),
    "roll_flat": (lambda t: t.roll(5), lambda a: np.roll(a, 5)),
    "roll_axes": (
        lambda t: t.roll((1, -1, 7), (0, 2, 2)),
        lambda a: np.roll(a, (1, -1, 7), (0, 2, 2)),
    ),
    "swapaxes": (lambda t: t.swapaxes(0, -1), lambda a: np.swapaxes(a, 0, -1)),
    "moveaxis": (lambda t: t.moveaxis([0, 1], [-1, 0]), lambda a: np.moveaxis(a, [0, 1], [-1, 0])),
    "tile": (lambda t: t.tile((2, 1, 1, 2)), lambda a: np.tile(a, (2, 1, 1, 2))),
    "tile_short_reps": (lambda t: t.tile((2, 3)), lambda a: np.tile(a, (2, 3))),
    "repeat_flat": (lambda t: t.repeat(2), lambda a: np.repeat(a, 2)),
    "repeat_counts": (lambda t: t.repeat([1, 0, 2], axis=1), lambda a: np.repeat(a, [1, 0, 2], 1)),
    "tril": (lambda t: t.tril(), lambda a: np.tril(a)),
    "triu_k": (lambda t: t.triu(-1), lambda a: np.triu(a, -1)),
    "tril_1d": (lambda t: t[0, 0].tril(1), lambda a: np.tril(a[0, 0], 1)),
    "diagonal": (lambda t: t.diagonal(), lambda a: np.diagonal(a)),
    "diagonal_axes": (lambda t: t.diagonal(1, 2, 0), lambda a: np.diagonal(a, 1, 2, 0)),
    "diagonal_past_the_edge": (lambda t: t.diagonal(9), lambda a: np.diagonal(a, 9)),
    "diag_of_matrix": (lambda t: t[1].diag(-1), lambda a: np.diag(a[1], -1)),
    "diag_of_vector": (lambda t: t[0, 0].diag(2), lambda a: np.diag(a[0, 0], 2)),
    "take_along_axis": (
        lambda t: t.take_along_axis(np.argsort(-X, axis=2), axis=2),
        lambda a: np.take_along_axis(a, np.argsort(-X, axis=2), axis=2),
    ),
    "take_along_axis_broadcast": (
        lambda t: t[:, :2].take_along_axis(np.array([[[3], [0]]]), axis=2),
        lambda a: np.take_along_axis(a[:, :2], np.array([[[3], [0]]]), axis=2),
    ),
    "take_along_axis_none": (
        lambda t: t.take_along_axis(np.array([0, 23, 5]), None),
        lambda a: np.take_along_axis(a, np.array([0, 23, 5]), None),
    ),
    "pad_constant": (
        lambda t: t.pad(((0, 1), (2, 0), (1, 1)), constant_values=-1),
        lambda a: np.pad(a, ((0, 1), (2, 0), (1, 1)), constant_values=-1),
    ),
    "pad_per_side_values": (
        lambda t: t.pad(1, constant_values=((1, 2), (3, 4), (5, 6))),
        lambda a: np.pad(a, 1, constant_values=((1, 2), (3, 4), (5, 6))),
    ),
    "pad_reflect": (lambda t: t.pad((2, 3), "reflect"), lambda a: np.pad(a, (2, 3), "reflect")),
    "pad_edge": (
        lambda t: t.pad(((1, 0), (0, 0), (0, 2)), "edge"),
        lambda a: np.pad(a, ((1, 0), (0, 0), (0, 2)), "edge"),
    ),
    "pad_symmetric": (lambda t: t.pad(2, "symmetric"), lambda a: np.pad(a, 2, "symmetric")),
    "pad_wrap": (lambda t: t.pad(5, "wrap"), lambda a: np.pad(a, 5, "wrap")),
}


@pytest.mark.parametrize("name", sorted(SAME))
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
def test_values_and_dtypes_match_numpy(name, dtype):
    ours, theirs = SAME[name]
    a = (X % 5 == 0) if dtype is np.bool_ else X.astype(dtype)
    out, expected = ours(Tensor(a, dtype=dtype)), theirs(a)
    assert isinstance(out, Tensor)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize(
    "name, sections",
    [
        ("split", 2),
        ("split", [1, 3]),
        ("split", [3, 1]),
        ("split", [-3, -1]),
        ("array_split", 3),
        ("array_split", 7),
    ],
)
def test_split_returns_numpy_parts(name, sections):
    parts = getattr(Tensor(X), name)(sections, axis=2)
    expected = getattr(np, name)(X, sections, axis=2)
    assert isinstance(parts, list) and len(parts) == len(expected)
    for p, e in zip(parts, expected):
        assert p.shape == e.shape
        np.testing.assert_array_equal(p.data, e)


def test_chunk_follows_torch_and_may_give_fewer_parts():
    parts = Tensor(np.arange(6.0)).chunk(4)  # ceil(6 / 4) = 2 per part: three parts
    assert [p.data.tolist() for p in parts] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert [p.shape for p in Tensor(X).chunk(2, dim=1)] == [(2, 2, 4), (2, 1, 4)]


def test_gather_is_torchs_gather():
    index = np.array([[[0, 3], [1, 1]]])  # smaller than X along axes 0 and 1
    out = Tensor(X).gather(2, index)
    expected = np.take_along_axis(X[:1, :2], index, axis=2)
    np.testing.assert_array_equal(out.data, expected)


def test_gradients_add_up_where_elements_are_copied():
    x = Tensor(np.array([1.0, 2.0, 3.0]), dtype=np.float64, requires_grad=True)
    (x.repeat([2, 0, 1]).sum() + x.pad(2, "reflect").sum() + x.tile(2).sum()).backward()
    # repeat: 2, 0, 1; reflect [3 2 1 2 3 2 1]: 2, 3, 2; tile: 2, 2, 2
    np.testing.assert_array_equal(x.grad, [6.0, 5.0, 5.0])
    y = Tensor(np.ones((2, 3)), dtype=np.float64, requires_grad=True)
    y.take_along_axis(np.array([[0, 0, 0], [2, 1, 2]]), axis=1).sum().backward()
    np.testing.assert_array_equal(y.grad, [[3.0, 0.0, 0.0], [0.0, 1.0, 2.0]])


def test_aliases():
    t = Tensor(X)
    np.testing.assert_array_equal(t.permute(2, 0, 1).data, X.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.view(4, -1).data, X.reshape(4, 6))
    np.testing.assert_array_equal(t.flip(dims=(1,)).data, np.flip(X, 1))
    np.testing.assert_array_equal(t.roll(1, dims=0).data, np.roll(X, 1, 0))
    np.testing.assert_array_equal(t.repeat_interleave(2, dim=1).data, np.repeat(X, 2, 1))
    np.testing.assert_array_equal(t.swapdims(0, 1).data, np.swapaxes(X, 0, 1))
    np.testing.assert_array_equal(t.movedim(0, 2).data, np.moveaxis(X, 0, 2))
    np.testing.assert_array_equal(t.diagonal(dim1=1, dim2=2).data, np.diagonal(X, 0, 1, 2))
    np.testing.assert_array_equal(t.pad(1, value=2.0).data, np.pad(X, 1, constant_values=2.0))
    np.testing.assert_array_equal(tg.cat([t, t], dim=2).data, np.concatenate([X, X], 2))


@pytest.mark.parametrize("name", ["vstack", "hstack", "dstack", "column_stack"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 2)])
def test_stacking_functions_match_numpy(name, shape):
    a, b = np.arange(1.0, 1 + int(np.prod(shape))).reshape(shape), np.full(shape, -1.0)
    out = getattr(tg, name)([Tensor(a, dtype=np.float64), Tensor(b, dtype=np.float64)])
    expected = getattr(np, name)([a, b])
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)
    # an ndarray among the inputs takes the tensors' dtype
    mixed = getattr(np, name)([Tensor(a), b])
    assert isinstance(mixed, Tensor) and mixed.dtype == np.float32
    np.testing.assert_array_equal(mixed.data, expected.astype(np.float32))


@pytest.mark.parametrize("name", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast_matches_numpy(name):
    for a in (np.float64(2.0), np.arange(3.0), np.ones((2, 3)), np.ones((1, 2, 3, 1))):
        out, expected = getattr(tg, name)(Tensor(a)), getattr(np, name)(a)
        assert out.shape == expected.shape
    several = getattr(tg, name)(Tensor(1.0), Tensor([1.0, 2.0]))
    assert [t.shape for t in several] == [e.shape for e in getattr(np, name)(1.0, [1.0, 2.0])]


NUMPY_CALLS = {
    "flip": lambda m: np.flip(m, 1),
    "roll": lambda m: np.roll(m, 2, axis=0),
    "tile": lambda m: np.tile(m, (1, 2)),
    "repeat": lambda m: np.repeat(m, 2, axis=1),
    "pad": lambda m: np.pad(m, 1, mode="edge"),
    "swapaxes": lambda m: np.swapaxes(m, 0, 1),
    "moveaxis": lambda m: np.moveaxis(m, 0, -1),
    "tril": lambda m: np.tril(m, 1),
    "triu": lambda m: np.triu(m),
    "diagonal": lambda m: np.diagonal(m, 1),
    "diag": lambda m: np.diag(m),
    "take_along_axis": lambda m: np.take_along_axis(m, np.array([[2], [0], [1]]), axis=1),
    "split": lambda m: np.concatenate(np.split(m, 3, axis=1), axis=0),
    "array_split": lambda m: np.concatenate(np.array_split(m, 2), axis=0) * 2,
    "atleast_3d": lambda m: np.atleast_3d(m),
}


@pytest.mark.parametrize("name", sorted(NUMPY_CALLS))
def test_numpy_functions_dispatch_and_are_recorded(name):
    m = np.arange(9.0).reshape(3, 3) + 1
    t = Tensor(m, dtype=np.float64, requires_grad=True)
    out = NUMPY_CALLS[name](t)
    assert isinstance(out, Tensor) and out.requires_grad
    np.testing.assert_array_equal(out.data, NUMPY_CALLS[name](m))
    tg.gradcheck(NUMPY_CALLS[name], m)


ERRORS = [
    (lambda t: t.flip(3), AxisError, r"flip: axis 3 out of range for a 3-d tensor"),
    (lambda t: t.roll(1, 5), AxisError, r"roll: axis 5 out of range"),
    (lambda t: t.roll((1, 2), (0, 1, 2)), ValueError, r"roll: shift \(1, 2\) and axis \(0, 1, 2\)"),
    (lambda t: t.swapaxes(0, 3), AxisError, r"swapaxes: axis 3 out of range"),
    (lambda t: t.moveaxis(0, (1, 2)), ValueError, r"moveaxis: source 0 and destination"),
    (lambda t: t.moveaxis(-4, 0), AxisError, r"moveaxis: axis -4 out of range"),
    (lambda t: t.tile((2, -1)), ValueError, r"tile: reps \(2, -1\) must be non-negative"),
    (
        lambda t: t.repeat([1, 2], axis=1),
        ValueError,
        r"repeat: 2 repeats for the 3 elements along axis 1 of shape \(2, 3, 4\)",
    ),
    (lambda t: t.repeat(1.5), TypeError, r"repeat: repeats must be an int"),
    (
        lambda t: t.split(3, axis=2),
        ValueError,
        r"split: 3 sections do not divide axis 2 of shape \(2, 3, 4\) .*use array_split",
    ),
    (lambda t: t.split(2, axis=-4), AxisError, r"split: axis -4 out of range"),
    (
        lambda t: t.array_split(0),
        ValueError,
        r"array_split: the number of sections must be positive",
    ),
    (lambda t: t.chunk(0), ValueError, r"chunk: chunks must be a positive int"),
    (lambda t: t[0, 0, 0].tril(), ValueError, r"tril: needs at least 1 dimension"),
    (
        lambda t: t[0, 0].diagonal(),
        ValueError,
        r"diagonal: needs at least 2 dimensions, got shape \(4,\); use diag",
    ),
    (lambda t: t.diagonal(0, 1, -2), ValueError, r"diagonal: axis1 and axis2 are both axis 1"),
    (
        lambda t: t.diag(),
        ValueError,
        r"diag: needs a 1-D tensor .* got shape \(2, 3, 4\); use diagonal",
    ),
    (
        lambda t: t.take_along_axis(np.zeros((2, 3), np.int64), 1),
        ValueError,
        r"take_along_axis: indices of shape \(2, 3\) need as many dimensions as the tensor",
    ),
    (
        lambda t: t.take_along_axis(np.zeros((2, 3, 1)), 2),
        IndexError,
        r"take_along_axis: indices must be integers, got float64; use .astype",
    ),
    (
        lambda t: t.take_along_axis(np.full((1, 1, 1), 4), 2),
        IndexError,
        r"take_along_axis: an index is out of range for axis 2 of size 4",
    ),
    (
        lambda t: t.take_along_axis(np.zeros((3, 1, 1), np.int64), 2),
        ValueError,
        r"take_along_axis: indices of shape \(3, 1, 1\) do not broadcast",
    ),
    (
        lambda t: t.gather(1, np.zeros((3, 1, 1), np.int64)),
        ValueError,
        r"gather: index of shape \(3, 1, 1\) .* none larger except along dim 1",
    ),
    (
        lambda t: t.pad(((1, 1), (1, 1))),
        ValueError,
        r"pad: pad_width .* does not fit a 3-d tensor of shape \(2, 3, 4\)",
    ),
    (lambda t: t.pad(-1), ValueError, r"pad: pad_width -1 must be non-negative"),
    (lambda t: t.pad(1, "mean"), ValueError, r"pad: mode 'mean' is not supported; use 'constant'"),
    (lambda t: t[:, :0].pad(1, "reflect"), ValueError, r"pad: axis 1 of shape \(2, 0, 4\)"),
    (lambda t: tg.vstack([]), ValueError, r"vstack: needs at least one tensor"),
    (
        lambda t: tg.hstack([t, t[0]]),
        ValueError,
        r"hstack: tensor 1 has shape \(3, 4\), tensor 0 has \(2, 3, 4\)",
    ),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_errors_name_the_op_and_the_fix(call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor(X))


def test_concatenate_and_stack_give_constants_the_tensors_dtype_and_refuse_mixed_floats():
    a = Tensor(np.ones(2, np.float32), requires_grad=True)
    for join in (tg.concatenate, tg.stack):
        assert join([a, np.zeros(2)]).dtype == np.float32  # a float64 constant follows the tensor
        assert join([Tensor(np.arange(2)), a]).dtype == np.float32  # int tensors take the float
        with pytest.raises(TypeError, match=rf"{join.__name__}: dtypes float32 and float64 differ"):
            join([a, Tensor(np.zeros(2), dtype=np.float64)])
    out = tg.concatenate([a, np.zeros(2)])
    out.sum().backward()
    assert a.grad.dtype == np.float32 and a.grad.tolist() == [1.0, 1.0]
    assert tg.concatenate([np.arange(2), np.arange(3)]).dtype == np.int64
