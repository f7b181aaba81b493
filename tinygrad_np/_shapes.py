"""Pure shape helpers shared by ops and Tensor: unbroadcast, axis normalisation. numpy only."""

from __future__ import annotations

import numpy as np
from numpy.exceptions import AxisError


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum grad down to shape: the adjoint of np.broadcast_to(x, grad.shape)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:  # leading axes that broadcasting added
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:  # size-1 axes that broadcasting stretched
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def normalize_axis(axis, ndim: int, op: str) -> tuple[int, ...]:
    """axis (None, int or tuple of ints, negatives allowed) -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, quickly
        return (axis % ndim,)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:  # numpy's AxisError: both a ValueError and an IndexError
            raise AxisError(
                f"{op}: axis {int(a)} out of range for a {ndim}-d tensor; "
                f"use an axis in [{-ndim}, {ndim - 1}]"
                if ndim
                else f"{op}: axis {int(a)} out of range for a 0-d tensor; use axis=None"
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def broadcast_shape(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """np.broadcast_shapes with an error that names the op and the shapes."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ValueError(
            f"{op}: shapes {listed} do not broadcast; trailing dimensions must be equal or 1 "
            f"(reshape or unsqueeze one operand)"
        ) from None


def axis_arg(axis, dim, default=None):
    """numpy's axis= or PyTorch's dim= (one of them)."""
    if dim is not None:
        if axis is not None and axis != default:
            raise TypeError("give axis= or dim=, not both")
        return dim
    return axis


def one_axis(axis, ndim: int, op: str) -> int:
    """One int axis, normalised (numpy's AxisError when out of range; a TypeError otherwise)."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    return normalize_axis(int(axis), ndim, op)[0]


def axis_list(axes) -> list:
    """An int or a sequence of them, as a list (moveaxis's source, tensordot's axes)."""
    return [axes] if isinstance(axes, (int, np.integer)) else list(axes)
