"""Elementwise maths and statistics composed from Tensor's primitives: a mixin of Tensor.

Every method here is built from operations that already have gradients (so it needs no backward of
its own) and uses only Tensor methods and operators, so this module needs no Tensor import.
"""

from __future__ import annotations

import math

import numpy as np

from ._shapes import normalize_axis
from .engine import captured


class Composites:
    __slots__ = ()

    def square(self):
        """x * x."""
        return self * self

    def reciprocal(self):
        """1 / x."""
        return 1.0 / self

    def rsqrt(self):
        """1 / sqrt(x)."""
        return 1.0 / self.sqrt()

    def exp2(self):
        """2 ** x."""
        return (self * math.log(2.0)).exp()

    def log2(self):
        """log(x) / log(2)."""
        return self.log() * (1 / math.log(2.0))

    def log10(self):
        """log(x) / log(10)."""
        return self.log() * (1 / math.log(10.0))

    def logaddexp(self, other):
        """log(exp(x) + exp(y)), stably: the larger of the two is factored out (as a constant)."""
        other = self._lift(other, self.dtype)  # a constant takes this tensor's dtype
        m = captured(_finite_maximum, self.data, other.data, self.dtype)
        return ((self - m).exp() + (other - m).exp()).log() + m

    def var(
        self,
        axis=None,
        ddof: int = 0,
        keepdims: bool = False,
        *,
        correction=None,
        dim=None,
        keepdim=None,
    ):
        """The variance along axis, dividing by n - ddof (numpy's ddof; PyTorch's correction=,
        dim= and keepdim= also accepted)."""
        return self._variance("var", axis, ddof, keepdims, correction, dim, keepdim)

    def std(
        self,
        axis=None,
        ddof: int = 0,
        keepdims: bool = False,
        *,
        correction=None,
        dim=None,
        keepdim=None,
    ):
        """sqrt(var(...)), with var's arguments."""
        return self._variance("std", axis, ddof, keepdims, correction, dim, keepdim).sqrt()

    def _variance(self, name, axis, ddof, keepdims, correction, dim, keepdim):
        """var's computation; name: the op the user called, for its errors."""
        axis = dim if dim is not None else axis
        keepdims = keepdim if keepdim is not None else keepdims
        ddof = correction if correction is not None else ddof
        axes = normalize_axis(axis, self.ndim, name)
        n = math.prod(self.shape[a] for a in axes)
        if n - ddof <= 0:
            raise ValueError(
                f"{name}: {n} element{'s' * (n != 1)} along the axis and ddof={ddof} leave no "
                f"degree of freedom; use a smaller ddof"
            )
        centred = self - self.mean(axes, keepdims=True)
        return (centred * centred).sum(axes, keepdims) * (1.0 / (n - ddof))


def _finite_maximum(x: np.ndarray, y: np.ndarray, dtype) -> np.ndarray:
    """maximum(x, y) with non-finite values as 0: logaddexp's stabilising shift."""
    m = np.maximum(x, y)
    return np.where(np.isfinite(m), m, 0).astype(dtype)
