"""The backward engine and the recording modes: no_grad, detect_anomaly. Never imports Tensor.

walk() goes through the graph a Tensor recorded (attributes data, grad, requires_grad, _op,
_parents) in reverse topological order, iteratively, freeing gradients as they are consumed, with
the rules running on the namespace it is given: backend (first order) or the Tensor namespace
(differentiable.py, for higher order). run_backward is Tensor.backward's first-order walk.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
import sys

import numpy as np

from . import backend

GRAD_ENABLED = contextvars.ContextVar("tinygrad_np_grad_enabled", default=True)


def _sole_refs() -> int:
    """sys.getrefcount of an object held by one local variable only (differs across CPython versions)."""
    probe = np.empty(0)
    return sys.getrefcount(probe)


_SOLE_REFS = _sole_refs()
RELEASED = "released"  # marks a node whose op was freed by backward(); its graph cannot be re-run
_FREED = (
    "backward(): this graph was freed by an earlier backward(); run the forward again, or "
    "pass retain_graph=True the first time"
)


class AnomalyError(FloatingPointError):
    """Raised under detect_anomaly() by the first op whose forward or backward made a NaN or inf."""


ANOMALY = contextvars.ContextVar("tinygrad_np_detect_anomaly", default=False)


class _Flag(contextlib.ContextDecorator):
    """Set a context variable to `value` inside a with-block or a decorated call (nestable)."""

    var: contextvars.ContextVar
    value: bool

    def __init__(self):
        self._tokens = []

    def __enter__(self):
        self._tokens.append(self.var.set(self.value))
        return self

    def __exit__(self, *exc):
        self.var.reset(self._tokens.pop())
        return False


class detect_anomaly(_Flag):
    """Check every op's output and gradients inside; the first NaN or inf raises AnomalyError naming
    the op, forward or backward, and its input shapes. Slower: use it to find where things blow up."""

    var, value = ANOMALY, True


def check_finite(
    value: np.ndarray, op: str, inputs, phase: str = "forward", index: int = 0
) -> None:
    """Under detect_anomaly(): raise if value (an op's output, or its gradient for input `index`)
    holds NaN or inf; inputs are the op's inputs (forward) or its upstream gradient (backward)."""
    if value.dtype.kind != "f" or np.isfinite(value).all():
        return
    kind = "NaN" if np.isnan(value).any() else "inf"
    already = not all(x.dtype.kind != "f" or np.isfinite(x).all() for x in inputs)
    if phase == "forward":
        where = (
            f"{op}.forward produced {kind} (output shape {value.shape}) from inputs of shapes "
            + ", ".join(str(x.shape) for x in inputs)
            + ("; an input was already non-finite" if already else "")
        )
    else:
        where = (
            f"{op}.backward produced {kind} in the gradient of input {index} (shape "
            f"{value.shape}) from an upstream gradient of shape {inputs[0].shape}"
            + (" that was already non-finite" if already else "")
        )
    raise AnomalyError(f"detect_anomaly: {where}")


class JitError(RuntimeError):
    """A step that tinygrad_np.jit cannot capture or replay as called; the message says why and the fix."""


class _Capturing:
    """The jit capture in progress (a jit.Capture), or None. The engine, Tensor, the optimizers and
    the layers that draw random numbers check it and, while it is set, run their array work as
    recorded kernels (jit.py); a kernel runs with it unset, so nothing inside is recorded twice."""

    now = None


CAPTURING = _Capturing()


def captured(fn, *args, effect: bool | str = False, **kwargs):
    """fn(*args, **kwargs), recorded as one kernel when a jit capture runs (effect: it changes
    state - a .grad, a parameter, an optimizer buffer, a random generator - so it always replays;
    effect="state": it reads or writes tensors' .grad or .data, so the capture checks before it
    that nothing edited them by hand, and takes what it leaves as known)."""
    cap = CAPTURING.now
    if cap is None:
        return fn(*args, **kwargs)
    return cap.call(fn, args, kwargs, effect)


def is_grad_enabled() -> bool:
    """False inside no_grad()."""
    return GRAD_ENABLED.get()


class no_grad(_Flag):
    """Record no graph inside: ``with no_grad(): ...``, ``@no_grad()`` or ``@no_grad``."""

    var, value = GRAD_ENABLED, False

    def __init__(self, func=None):
        super().__init__()
        self._func = func
        if func is not None:
            functools.update_wrapper(self, func)

    def __call__(self, *args, **kwargs):
        if self._func is None:  # used as @no_grad(): decorate the function we are given
            return super().__call__(*args, **kwargs)
        with self:
            return self._func(*args, **kwargs)


def run_backward(root, grad: np.ndarray, retain_graph: bool) -> None:
    """Accumulate d(root)/d(leaf) * grad into the .grad of every leaf that requires grad.

    The first-order walk (Tensor.backward): the rules run on xp, the numpy namespace, and nothing
    is recorded; a leaf adopts the gradient array that nothing else holds instead of copying it.
    """
    if root._op is None:  # a leaf: its gradient is grad itself
        captured(accumulate, root, grad.copy(), effect=True)
        return
    leaf_grads = walk([root], [grad], backend, retain_graph)
    cap = CAPTURING.now
    if cap is not None:  # replay decides adoption itself, by the same test (jit.py)
        for leaf, g in leaf_grads.items():
            cap.deliver(leaf, g)
        return
    while leaf_grads:
        leaf, g = leaf_grads.popitem()
        deliver(leaf, g)


def walk(roots, grads, xp, retain_graph: bool, wanted=()) -> dict:
    """The backward walk, for any namespace: returns {tensor: gradient} for the leaves that require
    grad and for the tensors in wanted (intermediates included: the total that reached them).

    roots[i] receives grads[i]; each op node's rule runs vjp(xp, g, out, *inputs) once, after every
    use of its output has sent its gradient. Under backend, g, out and the inputs are ndarrays;
    under differentiable.py they are the Tensors themselves, so each vjp is recorded as it runs.
    Gradients are freed as they are consumed; unless retain_graph, so is the graph.
    """
    pending = {}  # op node -> its gradient so far; tensors hash by identity
    found = {}  # leaf (or wanted tensor) -> its gradient so far
    for root, g in zip(roots, grads):
        into = found if root._op is None else pending
        prev = into.get(root)
        into[root] = g if prev is None else prev + g
    on_tensors = xp.differentiable
    kind = xp.ndarray
    anomaly = ANOMALY.get()
    cap = None if on_tensors else CAPTURING.now
    for node in _toposort(pending):
        g = pending.pop(node, None)  # pop: free each gradient once consumed
        if g is None:
            continue
        if wanted and node in wanted:
            found[node] = g
        op = node._op
        parents = node._parents
        n = len(parents)
        if on_tensors:
            grads = op.vjp(xp, g, node, *parents)
        elif cap is not None:
            grads = cap.call(vjp_kernel, (op, g, node.data, *[p.data for p in parents]), {}, False)
        elif n == 1:  # spelled out for one to three inputs: 0.15 us a node less
            grads = op.vjp(xp, g, node.data, parents[0].data)
        elif n == 2:
            grads = op.vjp(xp, g, node.data, parents[0].data, parents[1].data)
        elif n == 3:
            grads = op.vjp(xp, g, node.data, parents[0].data, parents[1].data, parents[2].data)
        else:
            grads = op.vjp(xp, g, node.data, *[p.data for p in parents])
        if anomaly:
            for i, pg in enumerate(grads if type(grads) is tuple else ()):
                if isinstance(pg, kind):
                    check_finite(xp.value(pg), type(op).__name__, [xp.value(g)], "backward", i)
        if type(grads) is not tuple or len(grads) != n:
            raise RuntimeError(
                f"{_method(op)} must return a tuple with one "
                f"entry per input ({n}), got {type(grads).__name__}"
            )
        checked = not op._trusted
        for parent, pg in zip(parents, grads):
            if not parent.requires_grad:
                continue
            if type(pg) is not kind or (
                checked and (pg.shape != parent.data.shape or pg.dtype != parent.data.dtype)
            ):
                pg = _as_grad(op, parents, grads, parent, pg, kind)
            into = found if parent._op is None else pending
            prev = into.get(parent)
            if prev is None:
                into[parent] = pg
            elif cap is None:
                into[parent] = prev + pg  # out of place: pg may be shared
            else:
                into[parent] = cap.call(operator.add, (prev, pg), {}, False)
        grads = pg = g = None  # drop our references, so leaves can adopt their arrays
        if not retain_graph:
            node._op, node._parents = RELEASED, ()
    return found


def vjp_kernel(op, g, out, *inputs):
    """op's vjp on numpy, with a numpy scalar gradient (a full reduction's) made an array: the
    kernel a jit capture records for one node of the backward walk."""
    grads = op.vjp(backend, g, out, *inputs)
    if type(grads) is tuple:
        grads = tuple(np.asarray(x) if isinstance(x, np.generic) else x for x in grads)
    return grads


def deliver(leaf, g: np.ndarray) -> None:
    """Give leaf its gradient g: adopt g when nothing else refers to it, else add a copy
    (the end of run_backward, and of a jit replay; g is held by the caller and this frame)."""
    if (
        leaf.grad is None
        and g.base is None
        and sys.getrefcount(g) <= _SOLE_REFS + 1
        and g.flags.writeable
    ):
        leaf.grad = g
    else:
        accumulate(leaf, g)


def accumulate(leaf, g: np.ndarray) -> None:
    """leaf.grad += g, out of place, leaving leaf.grad an array the leaf owns."""
    total = g.copy() if leaf.grad is None else leaf.grad + g
    # a 0-d gradient can arrive as, or sum to, a numpy scalar: .grad stays an ndarray
    leaf.grad = total if type(total) is np.ndarray else np.asarray(total)


def _as_grad(op, parents, grads, parent, pg, kind):
    """The gradient pg for parent, which failed the fast check: a numpy scalar from a full
    reduction (for a 0-d input) becomes an array; anything that breaks the contract raises."""
    if isinstance(pg, np.generic) and kind is np.ndarray:
        pg = np.asarray(pg)
    if isinstance(pg, kind) and pg.shape == parent.shape and pg.dtype == parent.dtype:
        return pg
    name, method = type(op).__name__, _method(op)
    i = next(i for i, (p, q) in enumerate(zip(parents, grads)) if p is parent and q is pg)
    if pg is None:
        raise RuntimeError(f"{method} returned None for input {i}, which needs a gradient")
    if not isinstance(pg, kind):
        raise RuntimeError(
            f"{method} returned a {type(pg).__name__} for input {i}; "
            f"return {'an ndarray' if kind is np.ndarray else 'a ' + kind.__name__} of the "
            f"input's shape and dtype"
        )
    if pg.shape != parent.shape or pg.dtype != parent.dtype:
        raise RuntimeError(
            f"{method} returned a grad of shape {pg.shape} ({pg.dtype}) for "
            f"input {i} of shape {parent.shape} ({parent.dtype}): a bug in {name}"
        )
    return pg


def _method(op) -> str:
    """The method that made op's gradients, for errors: Rule.vjp, or an Op's backward."""
    return f"{type(op).__name__}.{'vjp' if op.is_rule else 'backward'}"


def _toposort(roots) -> list:
    """Op nodes reachable from roots through tensors that require grad, every node before the nodes
    it was computed from: depth-first searches sharing one seen set, each with a stack of parent
    iterators (no recursion). A root that another root was computed from comes after it."""
    order, seen = [], set()
    for root in roots:
        if root in seen:
            continue
        if root._op is RELEASED:
            raise RuntimeError(_FREED)
        seen.add(root)
        stack = [(root, iter(root._parents))]
        while stack:
            node, parents = stack[-1]
            for p in parents:
                if p.requires_grad and p._op is not None and p not in seen:  # leaves need no order
                    if p._op is RELEASED:
                        raise RuntimeError(_FREED)
                    seen.add(p)
                    stack.append((p, iter(p._parents)))
                    break
            else:  # every parent is placed: node comes before them
                stack.pop()
                order.append(node)
    order.reverse()
    return order
