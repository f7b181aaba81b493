"""Convolution, pooling and batch normalisation on Tensors, with PyTorch's names and arguments.

conv2d, max_pool2d and avg_pool2d are rules (ops.py, kernels in windows.py); conv1d is conv2d on a
height of one; adaptive_avg_pool2d and batch_norm are composites. Each checks its arguments here and
names itself in the error.
"""

from __future__ import annotations

import numpy as np

from .. import ops, windows
from ..engine import captured
from ..tensor import Tensor, apply


def _pair(value, what: str, name: str, low: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= low for v in pair):
        raise ValueError(f"{name}: {what} must be an int >= {low} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _tensor(x, name: str, what: str, ndims, dtype=None) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x, dtype=dtype)
    if x.ndim not in ndims:
        shapes = " or ".join(what_shape for what_shape in ndims.values())
        raise ValueError(f"{name}: expected {what} of shape {shapes}, got {x.shape}")
    return x


def _same_dtype(name: str, x: Tensor, *others) -> None:
    for t in others:
        if t is not None and t.dtype != x.dtype:
            raise TypeError(
                f"{name}: input is {x.dtype} but a parameter is {t.dtype} (no silent upcasts); "
                f"cast one with .astype(np.{x.dtype})"
            )


def _batched(x: Tensor, ndim: int):
    """x with a batch axis (unbatched input as PyTorch allows), and how to undo it."""
    if x.ndim == ndim:
        return x, lambda out: out
    return x.reshape((1,) + x.shape), lambda out: out.reshape(out.shape[1:])


def _conv_padding(padding, kernel, dilation, stride, name: str):
    """padding as ((top, bottom), (left, right)): an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(f"{name}: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"{name}: padding='same' needs stride 1 (as PyTorch), got stride {stride}")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)  # the extra row/column after, as PyTorch
    ph, pw = _pair(padding, "padding", name, 0)
    return (ph, ph), (pw, pw)


def _check_fits(name: str, x_shape, kernel, geometry) -> tuple[int, int]:
    oh, ow = windows.output_hw(x_shape, kernel, geometry)
    if oh < 1 or ow < 1:
        stride, padding, dilation = geometry
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ValueError(
            f"{name}: the input's spatial size {tuple(x_shape[2:])} with padding {padding} is "
            f"smaller than the (dilated) kernel {span}; pad it or use a smaller kernel"
        )
    return oh, ow


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """Cross-correlation of input (N, C, H, W) or (C, H, W) with weight (O, C/groups, KH, KW),
    plus bias (O,): PyTorch's conv2d, padding an int, a pair, 'valid' or 'same'."""
    name = "conv2d"
    x = _tensor(input, name, "input", {4: "(N, C, H, W)", 3: "(C, H, W)"})
    w = _tensor(weight, name, "weight", {4: "(out_channels, in_channels/groups, KH, KW)"}, x.dtype)
    b = None if bias is None else _tensor(bias, name, "bias", {1: "(out_channels,)"}, x.dtype)
    _same_dtype(name, x, w, b)
    x, unbatch = _batched(x, 4)
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    o, cg, kh, kw = w.shape
    if x.shape[1] != cg * groups or o % groups:
        raise ValueError(
            f"{name}: input has {x.shape[1]} channels and weight {w.shape} with groups={groups} "
            f"expects {cg * groups} (weight.shape[1] * groups), and out_channels {o} must divide "
            f"by groups"
        )
    if b is not None and b.shape != (o,):
        raise ValueError(f"{name}: bias must have shape ({o},) for weight {w.shape}, got {b.shape}")
    stride = _pair(stride, "stride", name, 1)
    dilation = _pair(dilation, "dilation", name, 1)
    geometry = (stride, _conv_padding(padding, (kh, kw), dilation, stride, name), dilation)
    _check_fits(name, x.shape, (kh, kw), geometry)
    out = apply(ops.Conv2d, x, w, geometry=geometry, groups=int(groups))
    if b is not None:
        out = out + b.reshape((1, o, 1, 1))
    return unbatch(out)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """Cross-correlation of input (N, C, L) or (C, L) with weight (O, C/groups, K): conv2d on a
    height of one."""
    name = "conv1d"
    x = _tensor(input, name, "input", {3: "(N, C, L)", 2: "(C, L)"})
    w = _tensor(weight, name, "weight", {3: "(out_channels, in_channels/groups, K)"}, x.dtype)
    x, unbatch = _batched(x, 3)

    def one(v, what):
        if isinstance(v, str):
            return v
        v = v[0] if isinstance(v, (tuple, list)) and len(v) == 1 else v
        if not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name}: {what} must be an int, got {v!r}")
        return (1, int(v)) if what != "padding" else (0, int(v))

    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise ValueError(f"{name}: padding must be 'valid', 'same' or an int, got {padding!r}")
    out = conv2d(
        x.reshape((x.shape[0], x.shape[1], 1, x.shape[2])),
        w.reshape((w.shape[0], w.shape[1], 1, w.shape[2])),
        bias,
        one(stride, "stride"),
        one(padding, "padding"),
        one(dilation, "dilation"),
        groups,
    )
    return unbatch(out.reshape((out.shape[0], out.shape[1], out.shape[3])))


def _pool_geometry(name, x_shape, kernel_size, stride, padding, dilation=1):
    kernel = _pair(kernel_size, "kernel_size", name, 1)
    stride = kernel if stride is None or stride == () else _pair(stride, "stride", name, 1)
    pad = _pair(padding, "padding", name, 0)
    dilation = _pair(dilation, "dilation", name, 1)
    if any(p > k // 2 for p, k in zip(pad, kernel)):
        raise ValueError(
            f"{name}: padding {pad} must be at most half the kernel {kernel} (as PyTorch)"
        )
    geometry = (stride, ((pad[0], pad[0]), (pad[1], pad[1])), dilation)
    _check_fits(name, x_shape, kernel, geometry)
    return kernel, geometry


def _no_ceil_mode(name: str, ceil_mode: bool) -> None:
    if ceil_mode:
        raise NotImplementedError(
            f"{name}: ceil_mode=True is not supported; pad the input so the windows fit instead"
        )


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> Tensor:
    """The maximum of each window of input (N, C, H, W) or (C, H, W), padding never winning; the
    gradient goes to each window's first maximum (row-major within the window), as PyTorch."""
    name = "max_pool2d"
    _no_ceil_mode(name, ceil_mode)
    x, unbatch = _batched(_tensor(input, name, "input", {4: "(N, C, H, W)", 3: "(C, H, W)"}), 4)
    kernel, geometry = _pool_geometry(name, x.shape, kernel_size, stride, padding, dilation)
    return unbatch(apply(ops.MaxPool2d, x, kernel=kernel, geometry=geometry))


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad: bool = True,
    divisor_override=None,
) -> Tensor:
    """The mean of each window of input (N, C, H, W) or (C, H, W), padding counted as zeros in
    the divisor unless count_include_pad=False; divisor_override replaces the divisor."""
    name = "avg_pool2d"
    _no_ceil_mode(name, ceil_mode)
    x, unbatch = _batched(_tensor(input, name, "input", {4: "(N, C, H, W)", 3: "(C, H, W)"}), 4)
    kernel, geometry = _pool_geometry(name, x.shape, kernel_size, stride, padding)
    if divisor_override is not None:
        if not divisor_override > 0:
            raise ValueError(f"{name}: divisor_override must be positive, got {divisor_override!r}")
        divisor = float(divisor_override)
    else:
        divisor = windows.avg_pool_divisor(x.shape, kernel, geometry, count_include_pad)
    return unbatch(apply(ops.AvgPool2d, x, kernel=kernel, geometry=geometry, divisor=divisor))


def _adaptive_matrix(size: int, out: int, dtype) -> np.ndarray:
    """(out, size): row i averages input positions floor(i*size/out) to ceil((i+1)*size/out)."""
    m = np.zeros((out, size), dtype)
    for i in range(out):
        lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """input (N, C, H, W) or (C, H, W) averaged over output_size windows as PyTorch picks them
    (None in output_size keeps that size). Windows that tile the input are avg_pool2d; otherwise
    the averages are two products with constant averaging matrices (the windows are separable)."""
    name = "adaptive_avg_pool2d"
    x, unbatch = _batched(_tensor(input, name, "input", {4: "(N, C, H, W)", 3: "(C, H, W)"}), 4)
    pair = (output_size, output_size) if not isinstance(output_size, (tuple, list)) else output_size
    if len(pair) != 2:
        raise ValueError(f"{name}: output_size must be an int or a pair, got {output_size!r}")
    h, w = x.shape[2:]
    oh, ow = (h if pair[0] is None else pair[0]), (w if pair[1] is None else pair[1])
    _pair((oh, ow), "output_size", name, 1)
    if h % oh == 0 and w % ow == 0:
        k = (h // oh, w // ow)
        return unbatch(avg_pool2d(x, k, k))
    rows, cols = _adaptive_matrix(h, oh, x.dtype), _adaptive_matrix(w, ow, x.dtype)
    return unbatch(Tensor(rows, dtype=x.dtype) @ x @ Tensor(cols.T, dtype=x.dtype))


class _Stats:
    """Running statistics given as ndarrays: a holder the update writes through (a jit capture
    keeps it by reference, so a replay updates the same arrays)."""

    def __init__(self, data: np.ndarray):
        self.data = data


def _update_running(mean_stats, var_stats, x, axes, n: int, momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * batch, the variance unbiased (n/(n-1))."""
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes)
    m = mean_stats.data.dtype.type(momentum)
    mean_stats.data *= 1 - m
    mean_stats.data += m * mean.reshape(-1).astype(mean_stats.data.dtype)
    unbiased = var.reshape(-1) * (n / max(n - 1, 1))
    var_stats.data *= 1 - m
    var_stats.data += m * unbiased.astype(var_stats.data.dtype)


def _buffer(stats, name: str, what: str, channels: int):
    if stats is None:
        return None
    holder = stats if isinstance(stats, Tensor) else _Stats(stats)
    if not isinstance(holder.data, np.ndarray) or holder.data.shape != (channels,):
        raise ValueError(
            f"{name}: {what} must be a Tensor or array of shape ({channels},), got "
            f"{getattr(holder.data, 'shape', type(stats).__name__)}"
        )
    return holder


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias per channel (axis 1) of input (N, C, ...).

    training: the batch's mean and biased variance (the fused rule ops.BatchNorm), and the running
    statistics (Tensors or arrays, updated in place) move by momentum toward the batch's mean and
    unbiased variance, as PyTorch. Otherwise running_mean and running_var normalise (a composite)."""
    name = "batch_norm"
    x = _tensor(input, name, "input", {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"})
    c = x.shape[1]
    w = None if weight is None else _tensor(weight, name, "weight", {1: "(C,)"}, x.dtype)
    b = None if bias is None else _tensor(bias, name, "bias", {1: "(C,)"}, x.dtype)
    _same_dtype(name, x, w, b)
    for what, t in (("weight", w), ("bias", b)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"{name}: {what} must have shape ({c},) for input {x.shape}, got {t.shape}")
    rm = _buffer(running_mean, name, "running_mean", c)
    rv = _buffer(running_var, name, "running_var", c)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, c) + (1,) * (x.ndim - 2)
    if training:
        n = x.size // c
        if n < 2:
            raise ValueError(
                f"{name}: training needs more than one value per channel to take a variance, "
                f"got input {x.shape}"
            )
        if (rm is None) != (rv is None):
            raise ValueError(f"{name}: give both running_mean and running_var, or neither")
        if rm is not None and momentum:
            captured(_update_running, rm, rv, x.data, axes, n, momentum, effect="state")
        ones = Tensor(np.ones(c), dtype=x.dtype) if w is None else w
        return apply(ops.BatchNorm, x, ones, Tensor(np.zeros(c), dtype=x.dtype) if b is None else b, eps=eps)
    else:
        if rm is None or rv is None:
            raise ValueError(
                f"{name}: evaluation (training=False) normalises with running_mean and "
                f"running_var; give them, or pass training=True"
            )
        mean = Tensor(rm.data, dtype=x.dtype).reshape(shape) if not isinstance(rm, Tensor) else rm.reshape(shape)
        var = Tensor(rv.data, dtype=x.dtype).reshape(shape) if not isinstance(rv, Tensor) else rv.reshape(shape)
        out = (x - mean) * (var + eps) ** -0.5
    if w is not None:
        out = out * w.reshape(shape)
    if b is not None:
        out = out + b.reshape(shape)
    return out
