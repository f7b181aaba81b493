"""Strided-window kernels on numpy: convolution and pooling over (N, C, H, W) arrays.

The backend (backend.py) exports these; the rules in ops.py call them through xp. A geometry is
``(stride, padding, dilation)``: stride and dilation (rows, cols), padding ((top, bottom), (left,
right)). Windows are views made with as_strided, never copies, until a kernel needs a matrix.

Layout, chosen by benchmarks/bench_conv.py: a convolution is one matrix product of the weights
(O, C*KH*KW) with the unfolded input (C*KH*KW, N*OH*OW): one large GEMM beats one per sample, and
unfolding with the output positions innermost copies along image rows. Its input gradient folds
the product back with one strided add per kernel offset (KH*KW adds), cheaper than np.add.at.
"""

from __future__ import annotations

import sys

import numpy as np
from numpy.lib.stride_tricks import as_strided

_POOLED = 1 << 20  # bytes: smaller temporaries come from numpy's own cache of small blocks


class Scratch:
    """Arrays for the kernels' large temporaries, reused once nothing else refers to them.

    A fresh array of tens of MB costs more than the copy that fills it on these machines (each
    page is faulted in and zeroed by the kernel: 235 ms against 36 ms for a 58 MB unfold), so
    the kernels take their large outputs and temporaries from here. An array is handed out again
    only when the pool's own references are the only ones left (sys.getrefcount), so a value
    still held anywhere (by a Tensor, a view, a jit slot, a rule's residual) is never reused; at
    most `keep` arrays per shape and dtype are kept.
    """

    def __init__(self, keep: int = 4):
        self.keep = keep
        self.arrays: dict[tuple, list[np.ndarray]] = {}

    def empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        if dtype.itemsize * int(np.prod(shape)) < _POOLED:
            return np.empty(shape, dtype)
        kept = self.arrays.setdefault((shape, dtype), [])
        for a in kept:
            if sys.getrefcount(a) == 3:  # the list, the loop variable, getrefcount's argument
                return a
        a = np.empty(shape, dtype)
        if len(kept) < self.keep:
            kept.append(a)
        return a

    def zeros(self, shape, dtype) -> np.ndarray:
        a = self.empty(shape, dtype)
        a.fill(0)
        return a


SCRATCH = Scratch()


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
    (pt, pb), (pl, pr) = padding
    n, c, h, w = x.shape
    out = SCRATCH.empty((n, c, h + pt + pb, w + pl + pr), x.dtype)
    out[:, :, :pt] = value
    out[:, :, pt + h :] = value
    out[:, :, pt : pt + h, :pl] = value
    out[:, :, pt : pt + h, pl + w :] = value
    out[:, :, pt : pt + h, pl : pl + w] = x
    return out


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
    """The im2col matrix of x: (C*KH*KW, N*OH*OW), columns in (n, oh, ow) order. Copied with the
    output positions innermost, so the copy runs along image rows (a (kh, kw)-innermost copy is
    3-4x slower: its inner loops are 3 elements long)."""
    out_hw = output_hw(x.shape, kernel, geometry)
    win = _windows(_padded(x, geometry[1]), kernel, out_hw, geometry)
    n, c = x.shape[:2]
    cols = SCRATCH.empty((c * kernel[0] * kernel[1], n * out_hw[0] * out_hw[1]), x.dtype)
    np.copyto(cols.reshape(c, *kernel, n, *out_hw), win.transpose(1, 4, 5, 0, 2, 3))
    return cols, out_hw


def _group_slices(total: int, groups: int):
    size = total // groups
    return [slice(k * size, (k + 1) * size) for k in range(groups)]


def _channels_first(g: np.ndarray) -> np.ndarray:
    """(N, O, OH, OW) -> (O, N*OH*OW): g in the unfolded matrix's column order."""
    n, o, oh, ow = g.shape
    out = SCRATCH.empty((o, n * oh * ow), g.dtype)
    np.copyto(out.reshape(o, n, oh, ow), g.transpose(1, 0, 2, 3))
    return out


def _batch_first(out: np.ndarray, n: int, out_hw) -> np.ndarray:
    """(O, N*OH*OW) -> a contiguous (N, O, OH, OW)."""
    result = SCRATCH.empty((n, out.shape[0], *out_hw), out.dtype)
    np.copyto(result, out.reshape(-1, n, *out_hw).transpose(1, 0, 2, 3))
    return result


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b of two matrices, into a scratch array."""
    return np.matmul(a, b, out=SCRATCH.empty((a.shape[0], b.shape[1]), np.result_type(a, b)))


def conv2d(x: np.ndarray, w: np.ndarray, geometry, groups: int, keep=None) -> np.ndarray:
    """out[n, o] = sum over c, i, j of x_padded[n, c, oh*s + i*d, ow*s + j*d] * w[o, c, i, j].
    keep: a list that receives the unfolded x, for conv2d_weight_grad (groups=1 only)."""
    n, o, kernel = x.shape[0], w.shape[0], w.shape[2:]
    if groups == 1:
        cols, out_hw = _unfold(x, kernel, geometry)
        if keep is not None:
            keep.append(cols)
        return _batch_first(_product(w.reshape(o, -1), cols), n, out_hw)
    out_hw = output_hw(x.shape, kernel, geometry)
    out = np.empty((o, n * out_hw[0] * out_hw[1]), x.dtype)
    for cs, os in zip(_group_slices(x.shape[1], groups), _group_slices(o, groups)):
        cols, _ = _unfold(x[:, cs], kernel, geometry)
        out[os] = w[os].reshape(os.stop - os.start, -1) @ cols
    return _batch_first(out, n, out_hw)


def _fold(cols: np.ndarray, x_shape, kernel, out_hw, geometry) -> np.ndarray:
    """The adjoint of _unfold, (C*KH*KW, N*OH*OW) -> (N, C, H, W): each column's entries added
    back into the window it came from, one strided add per kernel offset, in (C, N, H, W) order so
    both sides of each add run along image rows."""
    n, c, h, w = x_shape
    (pt, pb), (pl, pr) = geometry[1]
    dxpad = SCRATCH.zeros((c, n, h + pt + pb, w + pl + pr), cols.dtype)
    blocks = cols.reshape(c, *kernel, n, *out_hw)
    for i, j, rows, cols_ in _offsets(kernel, out_hw, geometry):
        dxpad[:, :, rows, cols_] += blocks[:, i, j]
    dx = SCRATCH.empty(x_shape, cols.dtype)
    np.copyto(dx, dxpad[:, :, pt : pt + h, pl : pl + w].transpose(1, 0, 2, 3))
    return dx


def conv2d_input_grad(g: np.ndarray, w: np.ndarray, x_shape, geometry, groups: int) -> np.ndarray:
    """The adjoint of conv2d in x (a transposed convolution): dx for an output gradient g."""
    kernel, out_hw = w.shape[2:], g.shape[2:]
    stride, padding, dilation = geometry
    reach = [d * (k - 1) for k, d in zip(kernel, dilation)]
    if groups == 1 and stride == (1, 1) and all(max(p) <= r for p, r in zip(padding, reach)):
        # at stride 1, the full correlation of g with the flipped kernel: an unfold (copies)
        # and one product, about twice as fast as the product and a fold's strided adds
        full = tuple((r - p[0], r - p[1]) for p, r in zip(padding, reach))
        flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        return conv2d(g, flipped, ((1, 1), full, dilation), 1)
    g2 = _channels_first(g)
    if groups == 1:
        return _fold(w.reshape(w.shape[0], -1).T @ g2, x_shape, kernel, out_hw, geometry)
    dx = np.empty(x_shape, g.dtype)
    n, c, h, wd = x_shape
    for cs, os in zip(_group_slices(c, groups), _group_slices(w.shape[0], groups)):
        cols = w[os].reshape(os.stop - os.start, -1).T @ g2[os]
        dx[:, cs] = _fold(cols, (n, cs.stop - cs.start, h, wd), kernel, out_hw, geometry)
    return dx


def conv2d_weight_grad(
    x: np.ndarray, g: np.ndarray, w_shape, geometry, groups: int, cols=None
) -> np.ndarray:
    """The adjoint of conv2d in w: dw for an output gradient g (sum over n, oh, ow). cols: x
    unfolded already (conv2d's, kept by the forward), else unfolded here."""
    kernel = w_shape[2:]
    g2 = _channels_first(g)
    if groups == 1:
        cols = _unfold(x, kernel, geometry)[0] if cols is None else cols
        return (g2 @ cols.T).reshape(w_shape)
    dw = np.empty(w_shape, g.dtype)
    for cs, os in zip(_group_slices(x.shape[1], groups), _group_slices(w_shape[0], groups)):
        cols, _ = _unfold(x[:, cs], kernel, geometry)
        dw[os] = (g2[os] @ cols.T).reshape(dw[os].shape)
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


def max_pool2d_grad(g: np.ndarray, x: np.ndarray, out: np.ndarray, kernel, geometry) -> np.ndarray:
    """dx of max pooling: each window's g added to its first maximum (max_pool2d_index's choice),
    found by comparing each kernel offset's slice with out, the windows not yet served first; no
    index arrays and no np.add.at (a NaN maximum takes the index path)."""
    if np.isnan(out).any():
        flat = np.zeros(x.size, g.dtype)
        np.add.at(flat, max_pool2d_index(x, kernel, geometry).reshape(-1), g.reshape(-1))
        return flat.reshape(x.shape)
    n, c, h, w = x.shape
    (pt, pb), (pl, pr) = geometry[1]
    xpad = _padded(x, geometry[1], -np.inf)
    dxpad = np.zeros(xpad.shape, g.dtype)
    open_ = np.ones(out.shape, bool)  # windows whose maximum is not found yet
    zero = g.dtype.type(0)
    for _, _, rows, cols in _offsets(kernel, g.shape[2:], geometry):
        hit = xpad[:, :, rows, cols] == out
        hit &= open_
        dxpad[:, :, rows, cols] += np.where(hit, g, zero)
        open_ &= ~hit
    return dxpad[:, :, pt : pt + h, pl : pl + w]


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
