"""Constructors with numpy's names and arguments. Integer results keep numpy's integer dtype;
floating results are float32 unless dtype= says otherwise; random ones draw from an explicit
np.random.Generator (a fresh unseeded one when rng is None)."""

from __future__ import annotations

import numpy as np

from .tensor import Tensor


def _make(data: np.ndarray, dtype, requires_grad: bool) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def arange(start, stop=None, step=1, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """np.arange: integers stay int64, a float start, stop or step gives float32."""
    data = np.arange(start, stop, step) if stop is not None else np.arange(start, step=step)
    return _make(data, dtype, requires_grad)


def linspace(
    start,
    stop,
    num: int = 50,
    endpoint: bool = True,
    *,
    dtype=np.float32,
    requires_grad: bool = False,
) -> Tensor:
    return _make(np.linspace(start, stop, num, endpoint=endpoint), dtype, requires_grad)


def eye(
    n: int, m: int | None = None, k: int = 0, *, dtype=np.float32, requires_grad: bool = False
) -> Tensor:
    return _make(np.eye(n, m, k), dtype, requires_grad)


def full(shape, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """An array of fill_value: float32 for a float (unless dtype=), numpy's dtype for an int or bool."""
    return _make(np.full(shape, fill_value), dtype, requires_grad)


def empty(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Uninitialised values (np.empty): write before you read. shape: ints, or one tuple."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return _make(np.empty(shape, dtype), dtype, requires_grad)


def _like(t, fill_value, dtype, requires_grad: bool) -> Tensor:
    t = t if isinstance(t, Tensor) else Tensor(t)
    dtype = t.dtype if dtype is None else np.dtype(dtype)
    return _make(np.full(t.shape, fill_value, dtype), dtype, requires_grad)


def zeros_like(t, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return _like(t, 0, dtype, requires_grad)


def ones_like(t, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return _like(t, 1, dtype, requires_grad)


def full_like(t, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    return _like(t, fill_value, dtype, requires_grad)


def randint(
    low, high=None, size=None, *, rng: np.random.Generator | None = None, dtype=np.int64
) -> Tensor:
    """Integers in [low, high) (or [0, low)), as Generator.integers."""
    rng = np.random.default_rng() if rng is None else rng
    return _make(rng.integers(low, high, size, dtype=dtype), dtype, False)


def normal(
    mean=0.0,
    std=1.0,
    size=None,
    *,
    rng: np.random.Generator | None = None,
    dtype=np.float32,
    requires_grad: bool = False,
) -> Tensor:
    """Normal samples of the given mean and standard deviation, as Generator.normal."""
    if np.any(np.asarray(std) < 0):
        raise ValueError(f"normal: std must be >= 0, got {std}")
    rng = np.random.default_rng() if rng is None else rng
    return _make(rng.normal(mean, std, size), dtype, requires_grad)
