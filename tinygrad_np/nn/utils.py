"""Gradient clipping, between backward() and step(): it edits each parameter's .grad in place,
which is supported (a leaf's .grad is an array the leaf owns)."""

from __future__ import annotations

import math

import numpy as np

from ..backend import constant
from ..engine import captured
from ..tensor import Tensor


def _with_grads(parameters) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    """Scale the gradients so that their joint norm is at most max_norm; return the norm before.

    As torch.nn.utils.clip_grad_norm_: the scale is max_norm / (norm + 1e-6), applied only when it
    is below 1; norm_type may be inf (the largest absolute value).
    """
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    # one kernel in a jit capture: replay clips the gradients of that call
    return captured(_clip_norm, params, max_norm, norm_type, error_if_nonfinite, effect="state")


def _clip_norm(params, max_norm, norm_type, error_if_nonfinite) -> float:
    grads = [p.grad for p in _with_grads(params)]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.abs(g).max(initial=0.0)) for g in grads)
    else:
        total = sum(_power_sum(g, norm_type) for g in grads) ** (1.0 / norm_type)
    if not math.isfinite(total) and error_if_nonfinite:
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of the gradients is {total}; the gradients cannot "
            f"be clipped (pass error_if_nonfinite=False to scale them anyway)"
        )
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= np.asarray(scale, g.dtype)  # in place, in the gradient's dtype
    return total


def _power_sum(g: np.ndarray, p: float) -> float:
    """sum(|g|^p) in float64, as a BLAS dot product: numpy's own float32 sum rounds differently
    with the array's address (its vector loop starts at an aligned element), which made the clip
    scale, and so the whole run, depend on where the allocator put a gradient."""
    a = np.abs(g).ravel().astype(np.float64)
    if p == 2:
        return float(np.dot(a, a))
    return float(np.dot(a**p, constant(1, a.size, np.dtype(np.float64))))


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clip every gradient element to [-clip_value, clip_value], in place."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    captured(_clip_value, params, clip_value, effect="state")


def _clip_value(params, clip_value) -> None:
    for p in _with_grads(params):
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
