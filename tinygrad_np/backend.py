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


def svd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The thin SVD (U, S, Vh) of the last two axes, S descending (LAPACK's gesdd via numpy)."""
    return np.linalg.svd(x, full_matrices=False)


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


# --- the error function (numpy has none) ---

# W. J. Cody's rational Chebyshev approximations (Math. Comp. 23 (1969), 631-637; the
# coefficients of his CALERF): erf(x) = x P(x^2) / Q(x^2) for |x| <= 0.46875, erfc(x) =
# exp(-x^2) P(x) / Q(x) up to 4, and erfc(x) = exp(-x^2) / x (1/sqrt(pi) - z P(z) / Q(z)) with
# z = 1/x^2 beyond; within 1e-15 relative in float64 (measured against mpmath at 27,000 points:
# erf 4.5e-16, erfc 8.3e-16; tests/test_elementwise.py checks 2e-15 against math.erf/erfc).
_ERF_P = (3.16112374387056560, 113.864154151050156, 377.485237685302021, 3209.37758913846947)
_ERF_Q = (23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062)
_ERF_P0 = 0.185777706184603153  # the leading numerator coefficient
_MID_P = (
    0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131,
    881.952221241769090, 1712.04761263407058, 2051.07837782607147, 1230.33935479799725,
)  # fmt: skip
_MID_Q = (
    15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019,
    3290.79923573345963, 4362.61909014324716, 3439.36767414372164, 1230.33935480374942,
)  # fmt: skip
_MID_P0 = 2.15311535474403846e-8
_TAIL_P = (0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
           0.0160837851487422766, 0.000658749161529837803)  # fmt: skip
_TAIL_Q = (2.56852019228982242, 1.87295284992346725, 0.527905102951428412,
           0.0605183413124413191, 0.00233520497626869185)  # fmt: skip
_TAIL_P0 = 0.0163153871373020978
_INV_SQRT_PI = 0.56418958354775628695


def _ratio(z, p0, p, q):
    """(((p0 z + p1) z + ...) z + p_n) / ((((z + q1) z + ...) z + q_n): Cody's evaluation order
    (in place: these arrays are ours)."""
    num, den = p0 * z, z + q[0]
    np.add(num, p[0], out=num)
    for a, b in zip(p[1:-1], q[1:-1]):
        np.multiply(num, z, out=num)
        np.add(num, a, out=num)
        np.multiply(den, z, out=den)
        np.add(den, b, out=den)
    np.multiply(num, z, out=num)
    np.add(num, p[-1], out=num)
    np.multiply(den, z, out=den)
    np.add(den, q[-1], out=den)
    return np.divide(num, den, out=num)


def _flat_float(x: np.ndarray) -> np.ndarray:
    """x as a 1-D float array (integers: float64, as numpy's ufuncs): 0-d arithmetic would give
    numpy scalars, which the in-place steps cannot write into."""
    x = np.asarray(x)
    return (x if x.dtype.kind == "f" else x.astype(np.float64)).reshape(-1)


def erf(x: np.ndarray) -> np.ndarray:
    """erf(x) in x's float dtype: Cody's first interval for |x| <= 0.46875, 1 - erfc beyond.

    Beyond 4 the second interval's erfc is still within 1e-11 relative of erfc up to 7 (so 1e-27
    absolute, far below erf's rounding), and erfc(6) < 2e-17 rounds 1 - erfc to 1: |x| is capped
    at 6 and Cody's third interval is not needed. Both intervals are computed on every element
    and the answer picked with where: cheaper than boolean indexing at a layer's sizes.
    """
    shape, x = np.shape(x), _flat_float(x)
    y = np.abs(x)
    z = x * x
    np.minimum(z, 1.0, out=z)  # where inner is not used: keeps inf out of its ratio
    inner = x * _ratio(z, _ERF_P0, _ERF_P, _ERF_Q)
    y6 = np.minimum(y, 6.0)  # NaN stays NaN
    tail = _ratio(y6, _MID_P0, _MID_P, _MID_Q)
    np.multiply(tail, np.exp(-(y6 * y6)), out=tail)  # erfc(|x|): the rounding of y^2 costs < 1e-17
    outer = np.copysign(1 - tail, x)
    return np.where(y <= 0.46875, inner, outer).reshape(shape)


def erfc(x: np.ndarray) -> np.ndarray:
    """1 - erf(x) computed directly (no cancellation for large x), in x's float dtype: Cody's
    three intervals, each evaluated on its own elements only (the third needs 1/x^2)."""
    shape, x = np.shape(x), _flat_float(x)
    y = np.abs(x)
    out = np.empty_like(y)
    small = y <= 0.46875
    xs = x[small]
    out[small] = 1 - xs * _ratio(xs * xs, _ERF_P0, _ERF_P, _ERF_Q)
    big = ~small  # NaN included: it comes out NaN
    if big.any():
        yb = np.minimum(y[big], 30.0)  # erfc(30) is 0 even in float64 (so is erfc(inf)); NaN stays
        mid = yb <= 4.0
        r = np.empty_like(yb)
        r[mid] = _ratio(yb[mid], _MID_P0, _MID_P, _MID_Q)
        yt = yb[~mid]
        z = 1 / (yt * yt)
        r[~mid] = (_INV_SQRT_PI - z * _ratio(z, _TAIL_P0, _TAIL_P, _TAIL_Q)) / yt
        # exp(-y^2) as exp(-h^2) exp(-(y - h)(y + h)), h = y rounded down to 1/16: h^2 is exact,
        # so the rounding of y^2 (amplified by exp for large y) does not enter
        h = np.trunc(yb * 16) / 16
        r *= np.exp(-h * h) * np.exp(-(yb - h) * (yb + h))
        out[big] = np.where(x[big] < 0, 2 - r, r)
    return out.reshape(shape)


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


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """np.maximum(x, 0), bit for bit, 3-4x faster up to _SMALL elements: numpy 2.4's loop for a
    scalar operand is slower than its loop for two arrays, even an array of zeros. out: as
    np.maximum's (the jit's inplace pass passes x itself).

    (128, 128) float32: 5.6 -> 1.9 us; (128, 512): 20.7 -> 6.0 us.
    """
    if x.size > _SMALL:  # zeros this large would cost more memory than they save time
        return np.maximum(x, 0, out=out)
    return np.maximum(x, constant(0, x.size, x.dtype).reshape(x.shape), out=out)


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
