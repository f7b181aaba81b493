"""Trigonometric, hyperbolic, log-family, rounding and two-operand elementwise ops: a mixin of Tensor.

Each method applies a rule from ops.py or composes Tensor operations; numpy's names, PyTorch's
gradients at kinks (rounding and sign have zero gradient). No Tensor import: methods use self.
"""

from __future__ import annotations

import math

import numpy as np

from . import ops
from .engine import CAPTURING, captured


class Elementwise:
    __slots__ = ()

    # --- trigonometric and hyperbolic ---

    def sin(self):
        return self._apply(ops.Sin, self)

    def cos(self):
        return self._apply(ops.Cos, self)

    def tan(self):
        """sin(x) / cos(x)."""
        return self.sin() / self.cos()

    def arcsin(self):
        return self._apply(ops.Arcsin, self)

    def arccos(self):
        """pi/2 - arcsin(x)."""
        return math.pi / 2 - self.arcsin()

    def arctan(self):
        return self._apply(ops.Arctan, self)

    def sinh(self):
        """(exp(x) - exp(-x)) / 2."""
        return (self.exp() - (-self).exp()) * 0.5

    def cosh(self):
        """(exp(x) + exp(-x)) / 2."""
        return (self.exp() + (-self).exp()) * 0.5

    def arcsinh(self):
        return self._apply(ops.Arcsinh, self)

    def arccosh(self):
        return self._apply(ops.Arccosh, self)

    def arctanh(self):
        return self._apply(ops.Arctanh, self)

    # PyTorch's spellings
    asin, acos, atan, asinh, acosh, atanh = arcsin, arccos, arctan, arcsinh, arccosh, arctanh

    # --- the log family ---

    def expm1(self):
        """exp(x) - 1, exact near 0."""
        return self._apply(ops.Expm1, self)

    def log1p(self):
        """log(1 + x), exact near 0."""
        return self._apply(ops.Log1p, self)

    # --- the error function ---

    def erf(self):
        """The error function, 2/sqrt(pi) * integral_0^x exp(-t^2) dt (accurate to float64
        rounding; numpy has none)."""
        return self._apply(ops.Erf, self)

    def erfc(self):
        """1 - erf(x), computed directly: exact where erf(x) is close to 1."""
        return self._apply(ops.Erfc, self)

    # --- rounding and sign: zero gradient everywhere (as PyTorch) ---

    def floor(self):
        return self._apply(ops.Step, self, kind="floor")

    def ceil(self):
        return self._apply(ops.Step, self, kind="ceil")

    def round(self):
        """To the nearest integer, halves to even (as numpy and PyTorch)."""
        return self._apply(ops.Step, self, kind="round")

    def trunc(self):
        return self._apply(ops.Step, self, kind="trunc")

    def sign(self):
        return self._apply(ops.Step, self, kind="sign")

    # --- two operands ---

    def _other(self, other):
        return self._lift(other, self.dtype if self.dtype.kind == "f" else None)

    def remainder(self, other):
        """x - y * floor(x / y): the sign of y (numpy's mod, Python's %, torch.remainder);
        dx = g, dy = -g * floor(x / y)."""
        other = self._other(other)
        return self - other * (self / other).floor()

    mod = remainder

    def __mod__(self, other):
        return self.remainder(other)

    def __rmod__(self, other):
        return self._other(other).remainder(self)

    def fmod(self, other):
        """x - y * trunc(x / y): the sign of x (C's fmod, torch.fmod)."""
        other = self._other(other)
        return self - other * (self / other).trunc()

    def arctan2(self, other):
        """The angle of the point (other, self): numpy's arctan2(y=self, x=other)."""
        y, x = self._pair(self._other(other), "arctan2")
        return self._apply(ops.Arctan2, y, x)

    atan2 = arctan2

    def hypot(self, other):
        """sqrt(x^2 + y^2), without overflow."""
        x, y = self._pair(self._other(other), "hypot")
        return self._apply(ops.Hypot, x, y)

    def fmax(self, other):
        """Elementwise max that ignores a NaN operand (numpy's fmax); the gradient goes to the
        operand chosen, split at ties as maximum's."""
        return self._nan_aware(other, "fmax", "maximum")

    def fmin(self, other):
        """Elementwise min that ignores a NaN operand (numpy's fmin); ties split as minimum's."""
        return self._nan_aware(other, "fmin", "minimum")

    def _nan_aware(self, other, name: str, pick: str):
        """pick(x, y) with each NaN of one operand replaced by the other operand's value."""
        x, y = self._pair(self._other(other), name)
        shape = np.broadcast_shapes(x.shape, y.shape)
        x_nan = captured(_isnan, x.data, shape)
        y_nan = captured(_isnan, y.data, shape)
        # a jit capture takes the general path: the next call's operands may hold NaN
        if CAPTURING.now is not None or x_nan.any() or y_nan.any():
            x, y = (
                self._apply(ops.Where, y, x, cond=x_nan),
                self._apply(ops.Where, x, y, cond=y_nan),
            )
        return getattr(x, pick)(y)


def _isnan(x: np.ndarray, shape) -> np.ndarray:
    return np.broadcast_to(np.isnan(x), shape)
