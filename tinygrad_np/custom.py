"""The bases for ops users add: ``Rule`` (derivatives of any order) and ``Op`` (the first engine's
ndarray form, first order only), each with ``apply`` to run it on Tensors.

    class Softplus(tg.Rule):
        def forward(self, xp, x):
            return xp.log(1 + xp.exp(x))

        def vjp(self, xp, g, out, x):
            return (g * (1 - xp.exp(-out)),)

    y = Softplus.apply(t)
"""

from __future__ import annotations

from . import ops
from .tensor import Tensor, apply


class _Applies:
    @classmethod
    def apply(cls, *inputs, **attrs) -> Tensor:
        """Run this op on Tensors (constants are wrapped), recording it for backward()."""
        return apply(cls, *inputs, **attrs)


class Rule(_Applies, ops.Rule):
    """An op defined once against the namespace xp it is given: forward(self, xp, *inputs,
    **attrs) returns the output; vjp(self, xp, g, out, *inputs) returns one gradient per input
    (None where self.needs_grad is False). Use the inputs' operators and xp's functions (exp, log,
    tanh, where, maximum, matmul, reshape, transpose, swapaxes, broadcast_to, expand_dims, sum_to,
    astype); then the vjp is recorded under create_graph and can be differentiated again."""


class Op(_Applies, ops.Op):
    """An op with forward(self, *arrays) and backward(self, grad) on ndarrays (state on self):
    first order only; a second derivative through it raises ops.HigherOrderError."""
