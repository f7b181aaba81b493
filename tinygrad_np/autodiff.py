"""Function transforms that compose: grad, value_and_grad, vjp, jvp, hvp, jacobian, hessian.

Each takes a function of Tensors and returns Tensors (plain arrays and numbers are accepted as
inputs). They are built on ``autograd.grad(..., create_graph=True)``, so ``grad(grad(f))`` works
and a transform's results can be used inside a loss that is differentiated again (a gradient
penalty). A result that depends on no tensor requiring grad outside the transform comes back
detached (``requires_grad=False``); one that does (a closed-over parameter, an outer transform's
input) keeps its graph.

Forward mode (``jvp``) is the double-vjp construction: a vjp is linear in its cotangent u, so
differentiating ``vjp(u)`` with respect to u along the tangents gives J @ tangents. It costs about
three reverse passes and needs no second set of rules.
"""

from __future__ import annotations

import numpy as np

from . import autograd
from .engine import GRAD_ENABLED
from .tensor import Tensor, stack


def _primal(x, name: str) -> Tensor:
    """x as a Tensor to differentiate with respect to: a Tensor that requires grad is used as it
    is (so an outer transform sees the dependence); anything else becomes a fresh leaf."""
    if isinstance(x, Tensor):
        if x.requires_grad:
            return x
        data = x.data
    else:
        data = np.asarray(x)
        if data.dtype.kind != "f":
            data = data.astype(np.float32)  # numbers and lists: the library's default dtype
    if data.dtype.kind != "f":
        raise TypeError(
            f"{name}: can only differentiate with respect to floating tensors, got {data.dtype}; "
            f"pass a float array (or .astype(np.float32))"
        )
    return Tensor(data, requires_grad=True, dtype=data.dtype)


def _argnums(argnums, nargs: int, name: str) -> tuple[tuple[int, ...], bool]:
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise ValueError(
                f"{name}: argnums {argnums!r} does not name one of the {nargs} positional "
                f"arguments"
            )
    return tuple(a % nargs for a in nums), single


def _scalar(out, name: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: the function must return a Tensor, got {type(out).__name__}")
    if out.size != 1:
        raise ValueError(
            f"{name}: the function must return a scalar (size-1) Tensor, got shape {out.shape}; "
            f"reduce it (.sum(), .mean()) or use vjp/jacobian"
        )
    return out


def _grads(outputs, inputs, cotangents=None) -> list[Tensor]:
    """d(outputs)/d(inputs), recorded, with zeros for an input the outputs do not use."""
    outs = [o for o in outputs if o.requires_grad]
    cots = None if cotangents is None else [c for o, c in zip(outputs, cotangents) if o.requires_grad]
    if not outs:
        found = [None] * len(inputs)
    else:
        found = autograd.grad(outs, inputs, cots, create_graph=True, allow_unused=True)
    return [Tensor(np.zeros(x.shape, x.dtype), dtype=x.dtype) if g is None else g
            for x, g in zip(inputs, found)]


def _finish(t: Tensor, own) -> Tensor:
    """t, detached when its graph reaches no leaf that requires grad except the transform's own."""
    if not t.requires_grad or _reaches_outside(t, own):
        return t
    return t.detach()


def _reaches_outside(t: Tensor, own) -> bool:
    own_ids = {id(x) for x in own}
    seen, stack = {id(t)}, [t]
    while stack:
        node = stack.pop()
        if node._op is None:
            if node.requires_grad and id(node) not in own_ids:
                return True
            continue
        for p in node._parents:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return False


def _call(fn, args, argnums, name):
    nums, single = _argnums(argnums, len(args), name)
    args = list(args)
    own = []
    for a in nums:
        if not (isinstance(args[a], Tensor) and args[a].requires_grad):
            args[a] = _primal(args[a], name)
            own.append(args[a])
    token = GRAD_ENABLED.set(True)  # a transform differentiates even inside no_grad()
    try:
        out = fn(*args)
    finally:
        GRAD_ENABLED.reset(token)
    return out, [args[a] for a in nums], own, single


def value_and_grad(fn, argnums=0, has_aux: bool = False):
    """A function returning (fn(*args), gradient of fn with respect to args[argnums]).

    fn returns a scalar Tensor, or (scalar, aux) with has_aux=True (then the value is (scalar,
    aux)). argnums: an int (one gradient) or a tuple of ints (a tuple of gradients)."""

    def wrapped(*args, **kwargs):
        out, xs, own, single = _call(lambda *a: fn(*a, **kwargs), args, argnums, "value_and_grad")
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("value_and_grad(has_aux=True): fn must return (scalar, aux)")
            out, aux = out
        out = _scalar(out, "value_and_grad")
        gs = [_finish(g, own) for g in _grads([out], xs)]
        value = _finish(out, own)
        result = gs[0] if single else tuple(gs)
        return ((value, aux) if has_aux else value), result

    return wrapped


def grad(fn, argnums=0, has_aux: bool = False):
    """A function returning the gradient of fn (a scalar Tensor) with respect to args[argnums]:
    ``grad(f)(x)``, ``grad(grad(f))(x)``, ``grad(f, argnums=(0, 1))(x, y)``."""
    vg = value_and_grad(fn, argnums, has_aux)

    def wrapped(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapped


def vjp(fn, *primals):
    """(fn(*primals), vjp_fn): vjp_fn(cotangent) is the tuple of cotangent @ J, one per primal."""
    out, xs, own, _ = _call(fn, primals, tuple(range(len(primals))), "vjp")
    if not isinstance(out, Tensor):
        raise TypeError(f"vjp: the function must return a Tensor, got {type(out).__name__}")

    def vjp_fn(cotangent):
        cot = cotangent if isinstance(cotangent, Tensor) else Tensor._wrap(np.asarray(cotangent))
        if cot.shape != out.shape:
            raise ValueError(
                f"vjp: the cotangent has shape {cot.shape}, the output {out.shape}; give one of "
                f"the output's shape"
            )
        return tuple(_finish(g, own) for g in _grads([out], xs, [cot.astype(out.dtype)]))

    return _finish(out, own), vjp_fn


def jvp(fn, primals, tangents):
    """(fn(*primals), J @ tangents): forward mode, by the double-vjp construction."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one each")
    out, xs, own, _ = _call(fn, primals, tuple(range(len(primals))), "jvp")
    if not isinstance(out, Tensor):
        raise TypeError(f"jvp: the function must return a Tensor, got {type(out).__name__}")
    tans = []
    for x, t in zip(xs, tangents):
        t = t if isinstance(t, Tensor) else Tensor._wrap(np.asarray(t, x.dtype))
        if t.shape != x.shape:
            raise ValueError(f"jvp: a tangent has shape {t.shape}, its primal {x.shape}")
        tans.append(t.astype(x.dtype))
    u = Tensor(np.zeros(out.shape, out.dtype), requires_grad=True, dtype=out.dtype)
    if not out.requires_grad:
        return _finish(out, own), Tensor(np.zeros(out.shape, out.dtype), dtype=out.dtype)
    vjps = _grads([out], xs, [u])  # linear in u
    used = [(g, t) for g, t in zip(vjps, tans) if g.requires_grad]
    if not used:
        return _finish(out, own), Tensor(np.zeros(out.shape, out.dtype), dtype=out.dtype)
    (tangent_out,) = _grads([g for g, _ in used], [u], [t for _, t in used])
    return _finish(out, own), _finish(tangent_out, own + [u])


def hvp(fn, primals, tangents):
    """(fn(*primals), H @ tangents) for a scalar fn: the vjp of its gradient along tangents."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"hvp: {len(primals)} primals but {len(tangents)} tangents; give one each")
    out, xs, own, _ = _call(fn, primals, tuple(range(len(primals))), "hvp")
    out = _scalar(out, "hvp")
    gs = _grads([out], xs)
    tans = [t if isinstance(t, Tensor) else Tensor._wrap(np.asarray(t, x.dtype))
            for x, t in zip(xs, tangents)]
    hv = _grads(gs, xs, [t.astype(x.dtype) for x, t in zip(xs, tans)])
    hv = [_finish(h, own) for h in hv]
    return _finish(out, own), hv[0] if len(hv) == 1 else tuple(hv)


def jacobian(fn, argnums=0):
    """A function returning d fn(*args) / d args[argnums], of shape out.shape + arg.shape (a tuple
    of them for a tuple argnums): one reverse pass per output element, for small functions."""

    def wrapped(*args, **kwargs):
        out, xs, own, single = _call(lambda *a: fn(*a, **kwargs), args, argnums, "jacobian")
        if not isinstance(out, Tensor):
            raise TypeError(f"jacobian: the function must return a Tensor, got {type(out).__name__}")
        rows = [[] for _ in xs]
        for k in range(out.size):
            e = np.zeros(out.size, out.dtype)
            e[k] = 1
            for row, g in zip(rows, _grads([out], xs, [Tensor._wrap(e.reshape(out.shape))])):
                row.append(g.reshape(-1))
        jacs = []
        for x, row in zip(xs, rows):
            if row:
                jacs.append(_finish(stack(row).reshape(out.shape + x.shape), own))
            else:
                jacs.append(Tensor(np.zeros(out.shape + x.shape, x.dtype), dtype=x.dtype))
        return jacs[0] if single else tuple(jacs)

    return wrapped


def hessian(fn, argnums=0):
    """A function returning the Hessian of a scalar fn: jacobian(grad(fn)), of shape arg.shape +
    arg.shape; for a tuple argnums, the tuple of tuples of blocks H[i][j] = d2 fn / d args[i] d args[j]."""
    if isinstance(argnums, int):
        return jacobian(grad(fn, argnums), argnums)
    nums = tuple(argnums)

    def wrapped(*args, **kwargs):
        def block(i, j):
            part = lambda *a: grad(fn, nums)(*a, **kwargs)[i]  # noqa: E731
            return jacobian(part, nums[j])(*args)

        return tuple(tuple(block(i, j) for j in range(len(nums))) for i in range(len(nums)))

    return wrapped


