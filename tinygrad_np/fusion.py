"""Record-time fusion: the rules that record a chain of ops as one fused node, in one place.

A rule looks at the operands of an op about to be recorded (their own recorded nodes) and
returns the fused Tensor, or None to record the op as asked. ``DISPATCH[op_cls]`` applies the
rules registered for op_cls in order; ``Tensor`` calls it for the ops that have rules, before
broadcasting, and knows nothing of what they match.

- ``x @ W + b`` (W 2-D, b of shape (m,), same dtype): one ``Linear`` node, reusing the product;
- ``(x @ W + b).relu()``: one ``LinearReLU`` node on the same inputs, reusing the pre-activation.

The product (or the pre-activation) is reused, not recomputed or modified; if it is used
elsewhere too, its own node still serves those uses. Rules apply only while gradients are
recorded (under no_grad there is no graph to fuse). The jit's passes (``jit.PASSES``) fuse
further on the captured program, where a whole step is visible.
"""

from __future__ import annotations

from . import backend, ops
from .engine import CAPTURING, GRAD_ENABLED
from .tensor import record, run  # tensor.py imports this module at its end, after defining them

RULES: dict[type, list] = {}  # op class -> its rules, in the order registered
# op class -> one callable trying them all (the rule itself when there is one): what Tensor calls,
# a dict lookup and one call on the hot path (x @ W + b runs every layer of every step)
DISPATCH: dict[type, object] = {}


def rule(op_cls):
    """Register a fusion rule for op_cls (a decorator)."""

    def register(fn):
        RULES.setdefault(op_cls, []).append(fn)
        DISPATCH[op_cls] = _chain(RULES[op_cls])
        return fn

    return register


def _chain(fns):
    if len(fns) == 1:
        return fns[0]
    fns = tuple(fns)

    def first_match(*operands):
        for fn in fns:
            out = fn(*operands)
            if out is not None:
                return out
        return None

    return first_match


@rule(ops.Add)
def linear(a, b):
    """x @ W + b, in either order, as one Linear node."""
    out = _linear(a, b) if type(getattr(a, "_op", None)) is ops.MatMul else None
    if out is None and type(getattr(b, "_op", None)) is ops.MatMul:
        out = _linear(b, a)  # b + x @ W, or (v @ U) + (x @ W) with a 1-D v @ U as the bias
    return out


def _linear(product, bias):
    if not hasattr(bias, "_op"):  # a Tensor, not an array or a number
        return None
    x, w = product._parents
    w_shape, b_shape = w.data.shape, bias.data.shape
    if (
        len(w_shape) != 2
        or len(b_shape) != 1
        or b_shape[0] != w_shape[1]
        or bias.data.dtype is not product.data.dtype
        or not GRAD_ENABLED.get()
    ):
        return None
    op = ops.Linear(product._op.needs_grad + (bias.requires_grad,))
    if CAPTURING.now is None:  # spelled out, not a helper: this runs for every layer of a step
        data = op.forward(backend, x.data, w.data, bias.data, product=product.data)
    else:
        data = run(op, (x, w, bias), product=product.data)
    return record(op, data, (x, w, bias))


@rule(ops.ReLU)
def linear_relu(t):
    """(x @ W + b).relu() as one LinearReLU node on the Linear node's inputs."""
    if type(t._op) is not ops.Linear or not GRAD_ENABLED.get():
        return None
    op = ops.LinearReLU(t._op.needs_grad)  # the same inputs as the Linear node
    x, w, b = t._parents
    if CAPTURING.now is None:
        data = op.forward(backend, x.data, w.data, b.data, preact=t.data)
    else:
        data = run(op, t._parents, preact=t.data)
    return record(op, data, t._parents)
