"""The numpy namespace: what a rule's ``xp`` is on the fast first-order path. numpy only.

A rule (ops.py) computes with its operands' operators (``g * y``, ``x @ w``, ``x.T``) and with the
functions of the namespace it is handed. This module is that namespace for ndarrays: numpy's own
functions, plus the hot formulations that beat the obvious numpy (each tested against it in
tests/test_fast_paths.py). They live here, once; differentiable.py gives the same names on Tensors.
"""

from __future__ import annotations

import numpy as np

from ._shapes import unbroadcast
from .windows import (  # noqa: F401  (the convolution and pooling kernels)
    avg_pool2d,
    avg_pool2d_transpose,
    conv2d,
    conv2d_input_grad,
    conv2d_weight_grad,
    max_pool2d,
    max_pool2d_grad,
)

differentiable = False  # results are plain arrays: nothing is recorded, no higher order
ndarray = np.ndarray  # the type every gradient a rule returns must have here

exp = np.exp
log = np.log
tanh = np.tanh
sin, cos, arcsin, arctan, arctan2, hypot = np.sin, np.cos, np.arcsin, np.arctan, np.arctan2, np.hypot
arcsinh, arccosh, arctanh, expm1, log1p = np.arcsinh, np.arccosh, np.arctanh, np.expm1, np.log1p
floor, ceil, rint, trunc, sign = np.floor, np.ceil, np.rint, np.trunc, np.sign
zeros_like = np.zeros_like
where = np.where
maximum = np.maximum
matmul = np.matmul
reshape = np.reshape
transpose = np.transpose
swapaxes = np.swapaxes
broadcast_to = np.broadcast_to
expand_dims = np.expand_dims
sum_to = unbroadcast  # the adjoint of broadcast_to: Expand's vjp (and batched matmul's)


def cumsum(x: np.ndarray, axis: int) -> np.ndarray:
    return np.cumsum(x, axis=axis)


def flip(x: np.ndarray, axis: int) -> np.ndarray:
    return np.flip(x, axis)


def value(x: np.ndarray) -> np.ndarray:
    """The ndarray behind x (here x itself): what detect_anomaly() checks."""
    return x


def astype(x: np.ndarray, dtype) -> np.ndarray:
    return x.astype(dtype, copy=False)


def split(x: np.ndarray, bounds, axis: int) -> list[np.ndarray]:
    """x cut along axis before each of bounds: the adjoint of concatenate."""
    return np.split(x, bounds, axis=axis)


def is_basic(index) -> bool:
    """True when index uses only ints, slices, None and ...: each element is selected at most once."""
    idx = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in idx)


def scatter(g: np.ndarray, index, shape, basic: bool) -> np.ndarray:
    """zeros(shape) with g added at index (repeated indices summed): the adjoint of x[index].
    basic: is_basic(index), which the caller knows already."""
    out = np.zeros(shape, g.dtype)
    if basic:
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


# --- hot formulations, faster than the obvious numpy (each tested against it) ---

_SMALL = 1 << 17  # elements (512 KiB of float32): the largest constant array kept
_CONSTANTS: dict[tuple[int, np.dtype], np.ndarray] = {}  # (value, dtype) -> read-only 1-D array


def constant(value: int, n: int, dtype: np.dtype) -> np.ndarray:
    """n copies of value, read-only: a view of one cached array per (value, dtype), grown to the
    largest n asked for up to _SMALL (np.ones costs 0.7 us, more than the sums that use it)."""
    if n > _SMALL:
        return np.full(n, value, dtype)
    flat = _CONSTANTS.get((value, dtype))
    if flat is None or flat.size < n:
        flat = _CONSTANTS[value, dtype] = np.full(n, value, dtype)
        flat.flags.writeable = False
    return flat[:n]


def relu(x: np.ndarray) -> np.ndarray:
    """np.maximum(x, 0), bit for bit, 3-4x faster up to _SMALL elements: numpy 2.4's loop for a
    scalar operand is slower than its loop for two arrays, even an array of zeros.

    (128, 128) float32: 5.6 -> 1.9 us; (128, 512): 20.7 -> 6.0 us.
    """
    if x.size > _SMALL:  # zeros this large would cost more memory than they save time
        return np.maximum(x, 0)
    return np.maximum(x, constant(0, x.size, x.dtype).reshape(x.shape))


def column_sums(g: np.ndarray) -> np.ndarray:
    """g.sum(axis=0) of a 2-D g, as the matrix-vector product ones @ g.

    numpy's reduction over the rows costs 2.4 us for (128, 10) float32 and 10 us for (512, 128);
    BLAS takes 0.8 and 3.1. The sums differ by rounding only (numpy adds the rows one by one; BLAS
    keeps several partial sums, no less accurate).
    """
    return constant(1, g.shape[0], g.dtype) @ g


def row_sums(x: np.ndarray) -> np.ndarray:
    """x.sum(axis=1) of a 2-D x, as x @ ones (2.6 -> 0.9 us for (128, 10) float32)."""
    return x @ constant(1, x.shape[1], x.dtype)


def row_max(x: np.ndarray) -> np.ndarray:
    """x.max(axis=1, keepdims=True) for a 2-D x, the same values, faster for short rows.

    numpy reduces along a short contiguous axis one row at a time (about 6 us for (128, 10)
    float32); with at least 32 rows and at most 32 columns, reducing the columns of a transposed
    copy is 2-7x faster. max is exact, so both give the same values (a maximum of zeros of both
    signs may come out as either zero: harmless as the shift cross-entropy subtracts).
    """
    if x.shape[0] >= 32 and x.shape[1] <= 32:
        return x.T.copy().max(axis=0)[:, None]
    return x.max(axis=1, keepdims=True)


def cross_entropy_grad(g, x, labels: np.ndarray, rows: np.ndarray, probs: np.ndarray):
    """g * (softmax(x) - onehot(labels)) / n, from the probabilities the forward already made
    (rows: arange(n), also the forward's)."""
    scale = float(g) / len(labels)  # a Python float keeps float32 float32
    dx = probs * scale  # a new array: probs stays intact for another backward()
    dx[rows, labels] -= scale
    return dx
