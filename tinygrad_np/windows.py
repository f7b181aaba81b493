"""Strided-window kernels on numpy: convolution and pooling over (N, C, H, W) arrays.

The backend (backend.py) exports these; the rules in ops.py call them through xp. A geometry is
``(stride, padding, dilation)``: stride and dilation (rows, cols), padding ((top, bottom), (left,
right)). Windows are views made with as_strided, never copies, until a kernel needs a matrix.

Layout, chosen by benchmarks/bench_conv.py: a convolution is one matrix product of the unfolded
input (N*OH*OW, C*KH*KW) with the weights (C*KH*KW, O): one large GEMM beats one per sample, and
the unfolded rows are contiguous so BLAS reads them at full speed. Its input gradient folds the
product back with one strided add per kernel offset (KH*KW adds), cheaper than np.add.at.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def out_size(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int) -> int:
    """Output length along one axis: floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1."""
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def output_hw(shape, kernel, geometry) -> tuple[int, int]:
    stride, padding, dilation = geometry
    return tuple(
        out_size(shape[2 + i], kernel[i], stride[i], padding[i], dilation[i]) for i in range(2)
    )


def _padded(x: np.ndarray, padding, value=0.0) -> np.ndarray:
    if not any(padding[0]) and not any(padding[1]):
        return x
    return np.pad(x, ((0, 0), (0, 0), padding[0], padding[1]), constant_values=value)


def _windows(xpad: np.ndarray, kernel, out_hw, geometry) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) view of the windows of a padded input."""
    stride, _, dilation = geometry
    n, c = xpad.shape[:2]
    sn, sc, sh, sw = xpad.strides
    return as_strided(
        xpad,
        (n, c, *out_hw, *kernel),
        (sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1]),
        writeable=False,
    )


def _offsets(kernel, out_hw, geometry):
    """(i, j, rows, cols) for each kernel offset: the slices of the padded input it reads."""
    stride, _, dilation = geometry
    for i in range(kernel[0]):
        r = i * dilation[0]
        rows = slice(r, r + stride[0] * (out_hw[0] - 1) + 1, stride[0])
        for j in range(kernel[1]):
            c = j * dilation[1]
            yield i, j, rows, slice(c, c + stride[1] * (out_hw[1] - 1) + 1, stride[1])


def _unfold(x: np.ndarray, kernel, geometry) -> tuple[np.ndarray, tuple[int, int]]:
    """The im2col matrix of x: (N*OH*OW, C*KH*KW), rows in (n, oh, ow) order."""
    out_hw = output_hw(x.shape, kernel, geometry)
    win = _windows(_padded(x, geometry[1]), kernel, out_hw, geometry)
    n, c = x.shape[:2]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_hw[0] * out_hw[1], -1), out_hw


def _group_slices(total: int, groups: int):
    size = total // groups
    return [slice(k * size, (k + 1) * size) for k in range(groups)]


def conv2d(x: np.ndarray, w: np.ndarray, geometry, groups: int) -> np.ndarray:
    """out[n, o] = sum over c, i, j of x_padded[n, c, oh*s + i*d, ow*s + j*d] * w[o, c, i, j]."""
    n = x.shape[0]
    o = w.shape[0]
    kernel = w.shape[2:]
    if groups == 1:
        cols, out_hw = _unfold(x, kernel, geometry)
        out = cols @ w.reshape(o, -1).T
    else:
        out_hw = output_hw(x.shape, kernel, geometry)
        out = np.empty((n * out_hw[0] * out_hw[1], o), x.dtype)
        for cs, os in zip(_group_slices(x.shape[1], groups), _group_slices(o, groups)):
            cols, _ = _unfold(x[:, cs], kernel, geometry)
            out[:, os] = cols @ w[os].reshape(os.stop - os.start, -1).T
    return np.ascontiguousarray(out.reshape(n, *out_hw, o).transpose(0, 3, 1, 2))


def _rows(g: np.ndarray) -> np.ndarray:
    """(N, O, OH, OW) -> (N*OH*OW, O): g in the unfolded matrix's row order."""
    return g.transpose(0, 2, 3, 1).reshape(-1, g.shape[1])


def _fold(cols: np.ndarray, x_shape, kernel, out_hw, geometry) -> np.ndarray:
    """The adjoint of _unfold: each row's entries added back into the window it came from."""
    n, c, h, w = x_shape
    (pt, pb), (pl, pr) = geometry[1]
    dxpad = np.zeros((n, c, h + pt + pb, w + pl + pr), cols.dtype)
    blocks = cols.reshape(n, *out_hw, c, *kernel).transpose(0, 3, 4, 5, 1, 2)  # N C KH KW OH OW
    for i, j, rows, cols_ in _offsets(kernel, out_hw, geometry):
        dxpad[:, :, rows, cols_] += blocks[:, :, i, j]
    return dxpad[:, :, pt : pt + h, pl : pl + w]


def conv2d_input_grad(g: np.ndarray, w: np.ndarray, x_shape, geometry, groups: int) -> np.ndarray:
    """The adjoint of conv2d in x (a transposed convolution): dx for an output gradient g."""
    kernel, out_hw = w.shape[2:], g.shape[2:]
    g2 = _rows(g)
    if groups == 1:
        return _fold(g2 @ w.reshape(w.shape[0], -1), x_shape, kernel, out_hw, geometry)
    dx = np.empty(x_shape, g.dtype)
    n, c, h, wd = x_shape
    for cs, os in zip(_group_slices(c, groups), _group_slices(w.shape[0], groups)):
        cols = g2[:, os] @ w[os].reshape(os.stop - os.start, -1)
        dx[:, cs] = _fold(cols, (n, cs.stop - cs.start, h, wd), kernel, out_hw, geometry)
    return dx


def conv2d_weight_grad(x: np.ndarray, g: np.ndarray, w_shape, geometry, groups: int) -> np.ndarray:
    """The adjoint of conv2d in w: dw for an output gradient g (sum over n, oh, ow)."""
    kernel = w_shape[2:]
    g2 = _rows(g)
    if groups == 1:
        cols, _ = _unfold(x, kernel, geometry)
        return (g2.T @ cols).reshape(w_shape)
    dw = np.empty(w_shape, g.dtype)
    for cs, os in zip(_group_slices(x.shape[1], groups), _group_slices(w_shape[0], groups)):
        cols, _ = _unfold(x[:, cs], kernel, geometry)
        dw[os] = (g2[:, os].T @ cols).reshape(dw[os].shape)
    return dw


def max_pool2d(x: np.ndarray, kernel, geometry) -> np.ndarray:
    """The maximum of each window (padding is -inf, so it never wins)."""
    out_hw = output_hw(x.shape, kernel, geometry)
    xpad = _padded(x, geometry[1], -np.inf)
    out = None
    for _, _, rows, cols in _offsets(kernel, out_hw, geometry):
        v = xpad[:, :, rows, cols]
        out = v.copy() if out is None else np.maximum(out, v, out=out)  # maximum propagates NaN
    return out


def max_pool2d_index(x: np.ndarray, kernel, geometry) -> np.ndarray:
    """For each window, the flat index into x of its first maximum in row-major window order (a
    NaN counts as the maximum): where max pooling sends the window's gradient, as PyTorch does."""
    n, c, h, w = x.shape
    out_hw = output_hw(x.shape, kernel, geometry)
    (pt, _), (pl, _) = geometry[1]
    xpad = _padded(x, geometry[1], -np.inf)
    best = arg = None
    for k, (_, _, rows, cols) in enumerate(_offsets(kernel, out_hw, geometry)):
        v = xpad[:, :, rows, cols]
        if best is None:
            best, arg = v.copy(), np.zeros(v.shape, np.intp)
            continue
        wins = (v > best) | (np.isnan(v) & ~np.isnan(best))
        best[wins] = v[wins]
        arg[wins] = k
    stride, _, dilation = geometry
    oh = np.arange(out_hw[0]).reshape(-1, 1) * stride[0] - pt
    ow = np.arange(out_hw[1]) * stride[1] - pl
    r = oh + (arg // kernel[1]) * dilation[0]
    q = ow + (arg % kernel[1]) * dilation[1]
    base = (np.arange(n).reshape(-1, 1, 1, 1) * c + np.arange(c).reshape(1, -1, 1, 1)) * (h * w)
    return base + r * w + q


def avg_pool_divisor(x_shape, kernel, geometry, count_include_pad: bool):
    """What each window's sum is divided by: KH*KW, or (count_include_pad=False) the number of
    its elements inside the input, an (OH, OW) array."""
    if count_include_pad:
        return float(kernel[0] * kernel[1])
    out_hw = output_hw(x_shape, kernel, geometry)
    counts = []
    for a in range(2):
        stride, dilation, size = geometry[0][a], geometry[2][a], x_shape[2 + a]
        start = np.arange(out_hw[a]) * stride - geometry[1][a][0]
        taps = start[:, None] + np.arange(kernel[a]) * dilation
        counts.append(((taps >= 0) & (taps < size)).sum(axis=1))
    return np.outer(*counts)


def avg_pool2d(x: np.ndarray, kernel, geometry, divisor) -> np.ndarray:
    """The sum of each window divided by divisor (padding counts as zeros)."""
    out_hw = output_hw(x.shape, kernel, geometry)
    xpad = _padded(x, geometry[1])
    out = None
    for _, _, rows, cols in _offsets(kernel, out_hw, geometry):
        v = xpad[:, :, rows, cols]
        out = v.copy() if out is None else np.add(out, v, out=out)
    return _divide(out, divisor)


def _divide(a: np.ndarray, divisor) -> np.ndarray:
    if isinstance(divisor, float):
        a *= a.dtype.type(1.0 / divisor)
        return a
    return a / divisor.astype(a.dtype)


def avg_pool2d_transpose(g: np.ndarray, x_shape, kernel, geometry, divisor) -> np.ndarray:
    """The adjoint of avg_pool2d: each window's g / divisor added back to every element in it."""
    n, c, h, w = x_shape
    (pt, pb), (pl, pr) = geometry[1]
    share = _divide(g.copy(), divisor)
    dxpad = np.zeros((n, c, h + pt + pb, w + pl + pr), g.dtype)
    for _, _, rows, cols in _offsets(kernel, g.shape[2:], geometry):
        dxpad[:, :, rows, cols] += share
    return dxpad[:, :, pt : pt + h, pl : pl + w]
