"""The Tensor namespace: backend.py's names on Tensors, so a rule's vjp is itself recorded.

Under ``autograd.grad(..., create_graph=True)`` and the function transforms, the engine's walk hands
each rule this namespace and the Tensors themselves (the upstream gradient, the output node, the
inputs). Every operation a vjp performs is then a recorded Tensor operation, so the gradient it
returns can be differentiated again, to any order. Only what rules' vjps call lives here.
"""

from __future__ import annotations

import numpy as np

from . import ops, windows
from ._shapes import normalize_axis
from .tensor import Tensor, apply, where  # noqa: F401  (where: the namespace's where)

differentiable = True  # results are Tensors on the graph
ndarray = Tensor  # the type every gradient a rule returns must have here


def value(x: Tensor) -> np.ndarray:
    """The ndarray behind x: what detect_anomaly() checks."""
    return x.data


def exp(x: Tensor) -> Tensor:
    return x.exp()


def log(x: Tensor) -> Tensor:
    return x.log()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def sin(x: Tensor) -> Tensor:
    return x.sin()


def cos(x: Tensor) -> Tensor:
    return x.cos()


def zeros_like(x: Tensor) -> Tensor:
    """Zeros of x's shape and dtype: a constant (the derivative of a step function)."""
    return Tensor(np.zeros(x.shape, x.dtype), dtype=x.dtype)


def maximum(x: Tensor, y) -> Tensor:
    return x.maximum(y)


def relu(x: Tensor) -> Tensor:
    return x.relu()


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return a.matmul(b)


def reshape(x: Tensor, shape) -> Tensor:
    return x.reshape(shape)


def transpose(x: Tensor, axes) -> Tensor:
    return x.transpose(axes)


def swapaxes(x: Tensor, a: int, b: int) -> Tensor:
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return x.transpose(axes)


def broadcast_to(x: Tensor, shape) -> Tensor:
    return x.expand(tuple(shape))


def expand_dims(x: Tensor, axis) -> Tensor:
    """x with size-1 axes inserted at the positions axis (of the result), as np.expand_dims."""
    axes = normalize_axis(axis, x.ndim + (1 if isinstance(axis, int) else len(axis)), "expand_dims")
    sizes = iter(x.shape)
    return x.reshape(tuple(1 if i in axes else next(sizes) for i in range(x.ndim + len(axes))))


def sum_to(g: Tensor, shape) -> Tensor:
    """g summed down to shape: the adjoint of broadcast_to (backend's is _shapes.unbroadcast)."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(tuple(range(lead)) + stretched, keepdims=True).reshape(shape)


def cumsum(x: Tensor, axis: int) -> Tensor:
    return apply(ops.Cumsum, x, axis=axis)


def flip(x: Tensor, axis: int) -> Tensor:
    return x.flip(axis)


def svd(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The thin SVD's factors as recorded Svd nodes of x (each differentiable again)."""
    return tuple(apply(ops.Svd, x, part=part) for part in ops.Svd.PARTS)


def astype(x: Tensor, dtype) -> Tensor:
    return x.astype(dtype)


def split(x: Tensor, bounds, axis: int) -> list[Tensor]:
    """x cut along axis before each of bounds: the adjoint of concatenate."""
    edges = [0, *bounds, x.shape[axis]]
    lead = (slice(None),) * axis
    return [x[lead + (slice(a, b),)] for a, b in zip(edges[:-1], edges[1:])]


def scatter(g: Tensor, index, shape, basic: bool) -> Tensor:
    """zeros(shape) with g added at index, recorded (its own vjp gathers: ops.Scatter)."""
    return apply(ops.Scatter, g, index=index, shape=tuple(shape))


def column_sums(g: Tensor) -> Tensor:
    return g.sum(axis=0)


def cross_entropy_grad(g: Tensor, x: Tensor, labels: np.ndarray, rows, probs) -> Tensor:
    """g * (softmax(x) - onehot(labels)) / n, with softmax recomputed from x on the graph (the
    forward's probabilities are a constant to this namespace)."""
    n = len(labels)
    onehot = np.zeros(x.shape, x.dtype)
    onehot[rows, labels] = 1
    return (x.softmax(axis=-1) - onehot) * (g * (1.0 / n))


def conv2d(x: Tensor, w: Tensor, geometry, groups: int, keep=None) -> Tensor:
    return apply(ops.Conv2d, x, w, geometry=geometry, groups=groups)


def conv2d_input_grad(g: Tensor, w: Tensor, x_shape, geometry, groups: int) -> Tensor:
    return apply(ops.Conv2dInputGrad, g, w, x_shape=tuple(x_shape), geometry=geometry, groups=groups)


def conv2d_weight_grad(x: Tensor, g: Tensor, w_shape, geometry, groups: int, cols=None) -> Tensor:
    return apply(ops.Conv2dWeightGrad, x, g, w_shape=tuple(w_shape), geometry=geometry, groups=groups)


def max_pool2d_grad(g: Tensor, x: Tensor, out: Tensor, kernel, geometry) -> Tensor:
    """g sent to each window's first maximum, recorded: a scatter to indices that are a constant
    (from x's values, as Max's mask), whose own vjp gathers."""
    index = windows.max_pool2d_index(x.data, kernel, geometry).reshape(-1)
    return apply(ops.Scatter, g.reshape(-1), index=index, shape=(x.size,)).reshape(x.shape)


def avg_pool2d(x: Tensor, kernel, geometry, divisor) -> Tensor:
    return apply(ops.AvgPool2d, x, kernel=kernel, geometry=geometry, divisor=divisor)


def avg_pool2d_transpose(g: Tensor, x_shape, kernel, geometry, divisor) -> Tensor:
    return apply(
        ops.AvgPool2dTranspose, g, x_shape=tuple(x_shape), kernel=kernel, geometry=geometry,
        divisor=divisor,
    )
