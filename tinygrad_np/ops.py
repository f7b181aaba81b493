"""The primitives, each one rule: forward and vjp written once against an array namespace xp.

The engine hands a rule the namespace it runs under: backend.py (numpy: ndarrays in and out, the fast
first-order path) or differentiable.py (Tensors: the vjp is recorded, so it can be differentiated
again). A rule computes with its operands' operators and xp's functions only, so the same code serves
both. Never imports Tensor.

Contract (see Rule): forward(xp, *inputs, **attrs) returns one array of the input dtype;
vjp(xp, g, out, *inputs) returns one entry per input, exactly that input's shape, or None where
needs_grad is False. Attributes (axes, shapes) may be kept on self; arrays that vjp needs are its
arguments, never state, except a residual that only backend's kernels read (CrossEntropy's
probabilities: differentiable.py recomputes it from the inputs). Rules never write into their
inputs, into g, or into what they returned.
"""

from __future__ import annotations

import numpy as np

from ._shapes import normalize_axis

TWO_OVER_SQRT_PI = 1.1283791670955126  # erf'(0)


class Rule:
    """One call of a primitive: forward(xp, *inputs, **attrs) -> out, vjp(xp, g, out, *inputs).

    Subclass ``tinygrad_np.Rule`` (which adds ``apply``) to add an op with derivatives of any order.
    """

    keeps_dtype = True  # the engine checks that float inputs give outputs and grads of their dtype
    is_rule = True  # forward takes xp first (False: the ndarray-only Op below)
    _trusted = False  # see __init_subclass__

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The engine checks the type, shape and dtype of every gradient a rule returns. The rules in
        # this module skip that per-gradient check (about 0.15 us each): the test suite runs it
        # over every one of them instead (tests/test_ops_grad.py). Subclasses elsewhere get it.
        cls._trusted = cls.__module__ == __name__

    def __init__(self, needs_grad: tuple[bool, ...]):
        self.needs_grad = needs_grad  # one flag per input; skip work for inputs that need no grad

    def forward(self, xp, *inputs, **attrs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def vjp(self, xp, g, out, *inputs) -> tuple:
        raise NotImplementedError(f"{type(self).__name__}.vjp is not defined")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class HigherOrderError(RuntimeError):
    """A second derivative was asked of an op whose backward is ndarray code (an Op, not a Rule)."""


class Op(Rule):
    """The first engine's form of an op: forward(*arrays) and backward(grad) on ndarrays, keeping
    what backward needs on self. It runs first order; a derivative of its backward raises
    HigherOrderError (write it as a Rule instead)."""

    is_rule = False

    def forward(self, *inputs: np.ndarray, **attrs) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def backward(self, grad: np.ndarray) -> tuple:
        raise NotImplementedError(f"{type(self).__name__}.backward is not defined")

    def vjp(self, xp, g, out, *inputs) -> tuple:
        if xp.differentiable:
            name = type(self).__name__
            raise HigherOrderError(
                f"{name} is an Op whose backward() is ndarray code, so its gradient cannot be "
                f"differentiated again (create_graph=True, tg.grad of a gradient, hessian). "
                f"Write it as a tinygrad_np.Rule: forward(self, xp, *inputs) and "
                f"vjp(self, xp, g, out, *inputs) using the operators and xp's functions "
                f"(README: Adding an op)"
            )
        return self.backward(g)


# --- unary ---


class Neg(Rule):
    """out = -x;  dx = -g"""

    def forward(self, xp, x):
        return -x

    def vjp(self, xp, g, out, x):
        return (-g,)


class Exp(Rule):
    """out = exp(x);  dx = g * out"""

    def forward(self, xp, x):
        return xp.exp(x)

    def vjp(self, xp, g, out, x):
        return (g * out,)


class Log(Rule):
    """out = log(x);  dx = g / x"""

    def forward(self, xp, x):
        return xp.log(x)

    def vjp(self, xp, g, out, x):
        return (g / x,)


class ReLU(Rule):
    """out = max(x, 0);  dx = g * (x > 0)   (relu'(0) = 0, as PyTorch; relu'' = 0)"""

    def forward(self, xp, x):
        return xp.relu(x)

    def vjp(self, xp, g, out, x):
        return (g * (out > 0),)


class Tanh(Rule):
    """out = tanh(x);  dx = g * (1 - out^2)"""

    def forward(self, xp, x):
        return xp.tanh(x)

    def vjp(self, xp, g, out, x):
        return (g * (1 - out * out),)


class Sigmoid(Rule):
    """out = 1 / (1 + exp(-x)) computed as (1 + tanh(x/2)) / 2, finite everywhere;  dx = g * out * (1 - out)"""

    def forward(self, xp, x):
        return 0.5 * xp.tanh(0.5 * x) + 0.5

    def vjp(self, xp, g, out, x):
        return (g * out * (1 - out),)


class Sin(Rule):
    """out = sin(x);  dx = g * cos(x)"""

    def forward(self, xp, x):
        return xp.sin(x)

    def vjp(self, xp, g, out, x):
        return (g * xp.cos(x),)


class Cos(Rule):
    """out = cos(x);  dx = -g * sin(x)"""

    def forward(self, xp, x):
        return xp.cos(x)

    def vjp(self, xp, g, out, x):
        return (-g * xp.sin(x),)


class Arcsin(Rule):
    """out = arcsin(x);  dx = g / sqrt(1 - x^2)   (inf at |x| = 1, as PyTorch)"""

    def forward(self, xp, x):
        return xp.arcsin(x)

    def vjp(self, xp, g, out, x):
        return (g * (1 - x * x) ** -0.5,)


class Arctan(Rule):
    """out = arctan(x);  dx = g / (1 + x^2)"""

    def forward(self, xp, x):
        return xp.arctan(x)

    def vjp(self, xp, g, out, x):
        return (g / (1 + x * x),)


class Arcsinh(Rule):
    """out = arcsinh(x);  dx = g / sqrt(x^2 + 1)"""

    def forward(self, xp, x):
        return xp.arcsinh(x)

    def vjp(self, xp, g, out, x):
        return (g * (x * x + 1) ** -0.5,)


class Arccosh(Rule):
    """out = arccosh(x) (x >= 1);  dx = g / sqrt(x^2 - 1)"""

    def forward(self, xp, x):
        return xp.arccosh(x)

    def vjp(self, xp, g, out, x):
        return (g * (x * x - 1) ** -0.5,)


class Arctanh(Rule):
    """out = arctanh(x) (|x| < 1);  dx = g / (1 - x^2)"""

    def forward(self, xp, x):
        return xp.arctanh(x)

    def vjp(self, xp, g, out, x):
        return (g / (1 - x * x),)


class Expm1(Rule):
    """out = exp(x) - 1, exact near 0;  dx = g * (out + 1)"""

    def forward(self, xp, x):
        return xp.expm1(x)

    def vjp(self, xp, g, out, x):
        return (g * (out + 1),)


class Log1p(Rule):
    """out = log(1 + x), exact near 0;  dx = g / (1 + x)"""

    def forward(self, xp, x):
        return xp.log1p(x)

    def vjp(self, xp, g, out, x):
        return (g / (1 + x),)


class Erf(Rule):
    """out = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt;  dx = g * 2/sqrt(pi) * exp(-x^2)"""

    def forward(self, xp, x):
        return xp.erf(x)

    def vjp(self, xp, g, out, x):
        return (g * (TWO_OVER_SQRT_PI * xp.exp(-(x * x))),)


class Erfc(Rule):
    """out = erfc(x) = 1 - erf(x), exact for large x;  dx = -g * 2/sqrt(pi) * exp(-x^2)"""

    def forward(self, xp, x):
        return xp.erfc(x)

    def vjp(self, xp, g, out, x):
        return (g * (-TWO_OVER_SQRT_PI * xp.exp(-(x * x))),)


class Step(Rule):
    """out = floor, ceil, round (half to even), trunc or sign of x;  dx = 0   (as PyTorch)"""

    KINDS = ("floor", "ceil", "round", "trunc", "sign")

    def forward(self, xp, x, *, kind):
        if kind not in self.KINDS:
            raise ValueError(f"step: unknown kind {kind!r}; choose one of {list(self.KINDS)}")
        if kind != "sign" and x.dtype.kind in "iub":
            return x + 0  # integers are their own floor (numpy would return float64)
        return getattr(xp, "rint" if kind == "round" else kind)(x)

    def vjp(self, xp, g, out, x):
        return (xp.zeros_like(g),)


class Cast(Rule):
    """out = x.astype(dtype);  dx = g.astype(x.dtype)"""

    keeps_dtype = False

    def forward(self, xp, x, *, dtype):
        return xp.astype(x, dtype)

    def vjp(self, xp, g, out, x):
        return (xp.astype(g, x.dtype),)


# --- binary (an input that needs a gradient comes broadcast to the output shape; constants need not) ---


class Add(Rule):
    """out = x + y;  dx = g,  dy = g"""

    def forward(self, xp, x, y):
        return x + y

    def vjp(self, xp, g, out, x, y):
        return g, g  # the same array twice: the engine never writes into it


class Mul(Rule):
    """out = x * y;  dx = g * y,  dy = g * x"""

    def forward(self, xp, x, y):
        return x * y

    def vjp(self, xp, g, out, x, y):
        return (
            g * y if self.needs_grad[0] else None,
            g * x if self.needs_grad[1] else None,
        )


class Div(Rule):
    """out = x / y;  dx = g / y,  dy = -g * out / y"""

    def forward(self, xp, x, y):
        return x / y

    def vjp(self, xp, g, out, x, y):
        gx = g / y
        return (gx if self.needs_grad[0] else None, -gx * out if self.needs_grad[1] else None)


class Pow(Rule):
    """out = x ** y;  dx = g * y * x^(y-1),  dy = g * out * log(x)   (dy = 0 where x = 0 and y >= 0, as PyTorch)"""

    def forward(self, xp, x, y):
        return x**y

    def vjp(self, xp, g, out, x, y):
        gx = gy = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_grad[0]:  # y = 0 has a zero gradient even at x = 0, as PyTorch
                # (masked only at x = 0, where x^(y-1) is inf: elsewhere g * 0 * x^-1 is 0 already,
                # and its derivative in y, g / x, stays on the graph for the second order)
                gx = xp.where((x == 0) & (y == 0), 0, g * y * x ** (y - 1))
            if self.needs_grad[1]:
                gy = xp.where((x == 0) & (y >= 0), 0, g * out * xp.log(x))
        return gx, gy


class Maximum(Rule):
    """out = max(x, y);  dx = g * ((x > y) + (x == y) / 2),  dy likewise   (ties split evenly, as PyTorch)"""

    def forward(self, xp, x, y):
        return xp.maximum(x, y)

    def vjp(self, xp, g, out, x, y):
        half = g * 0.5
        gx = xp.where(x > y, g, xp.where(x == y, half, 0)) if self.needs_grad[0] else None
        gy = xp.where(y > x, g, xp.where(x == y, half, 0)) if self.needs_grad[1] else None
        return gx, gy


class Arctan2(Rule):
    """out = arctan2(y, x) (the angle of the point (x, y));  dy = g * x / r^2,  dx = -g * y / r^2"""

    def forward(self, xp, y, x):
        return xp.arctan2(y, x)

    def vjp(self, xp, g, out, y, x):
        scale = g / (x * x + y * y)
        return (
            scale * x if self.needs_grad[0] else None,
            -scale * y if self.needs_grad[1] else None,
        )


class Hypot(Rule):
    """out = sqrt(x^2 + y^2) without overflow;  dx = g * x / out,  dy = g * y / out"""

    def forward(self, xp, x, y):
        return xp.hypot(x, y)

    def vjp(self, xp, g, out, x, y):
        scale = g / out
        return (
            scale * x if self.needs_grad[0] else None,
            scale * y if self.needs_grad[1] else None,
        )


class Where(Rule):
    """out = where(cond, x, y);  dx = where(cond, g, 0),  dy = where(cond, 0, g)   (cond carries no grad)"""

    def forward(self, xp, x, y, *, cond):
        self.cond = cond  # an attribute: a bool array fixed at record time, not differentiated
        return xp.where(cond, x, y)

    def vjp(self, xp, g, out, x, y):
        return (
            xp.where(self.cond, g, 0) if self.needs_grad[0] else None,
            xp.where(self.cond, 0, g) if self.needs_grad[1] else None,
        )


# --- reduce ---


class Sum(Rule):
    """out = x.sum(axis, keepdims);  dx = g broadcast back to x.shape"""

    def forward(self, xp, x, *, axis=None, keepdims=False):
        self.axis = normalize_axis(axis, x.ndim, "sum")
        self.keepdims = keepdims
        return x.sum(axis=self.axis, keepdims=keepdims)

    def vjp(self, xp, g, out, x):
        if not self.keepdims:
            g = xp.expand_dims(g, self.axis)
        return (xp.broadcast_to(g, x.shape),)


class Max(Rule):
    """out = x.max(axis, keepdims);  dx = g * (x == max) / count(x == max)   (ties share evenly, as torch.amax)"""

    def forward(self, xp, x, *, axis=None, keepdims=False):
        self.axis = normalize_axis(axis, x.ndim, "max")
        if x.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
        self.keepdims = keepdims
        return x.max(axis=self.axis, keepdims=keepdims)

    def vjp(self, xp, g, out, x):
        if not self.keepdims:
            g, out = xp.expand_dims(g, self.axis), xp.expand_dims(out, self.axis)
        mask = xp.astype(x == out, x.dtype)  # a constant: the winners do not move under small steps
        count = mask.sum(axis=self.axis, keepdims=True)
        return (mask * (g / count),)


# --- movement ---


class Reshape(Rule):
    """out = x.reshape(shape);  dx = g.reshape(x.shape)"""

    def forward(self, xp, x, *, shape):
        try:
            return xp.reshape(x, shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape {x.shape} ({x.size} elements) to {tuple(shape)}; "
                f"the sizes must match (use -1 for one inferred dimension)"
            ) from None

    def vjp(self, xp, g, out, x):
        return (xp.reshape(g, x.shape),)


class Transpose(Rule):
    """out = x.transpose(axes);  dx = g.transpose(argsort(axes))"""

    def forward(self, xp, x, *, axes):
        if sorted(a % x.ndim if -x.ndim <= a < x.ndim else a for a in axes) != list(range(x.ndim)):
            raise ValueError(
                f"transpose: axes {tuple(axes)} are not a permutation of the {x.ndim} axes of {x.shape}"
            )
        self.inverse = tuple(int(a) for a in np.argsort([a % x.ndim for a in axes]))
        return xp.transpose(x, axes)

    def vjp(self, xp, g, out, x):
        return (xp.transpose(g, self.inverse),)


class Expand(Rule):
    """out = broadcast_to(x, shape);  dx = sum_to(g, x.shape), the sum over the broadcast axes"""

    def forward(self, xp, x, *, shape):
        try:
            return xp.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(
                f"expand: cannot broadcast {x.shape} to {tuple(shape)}; only size-1 dimensions "
                f"stretch and new dimensions go in front"
            ) from None

    def vjp(self, xp, g, out, x):
        return (xp.sum_to(g, x.shape),)


class Index(Rule):
    """out = x[index];  dx = zeros_like(x) with g scattered back, repeated indices summed"""

    def forward(self, xp, x, *, index):
        self.index, self.basic = index, xp.is_basic(index)
        return x[index]

    def vjp(self, xp, g, out, x):
        return (xp.scatter(g, self.index, x.shape, self.basic),)


class Scatter(Rule):
    """out = zeros(shape) with g added at index (Index's vjp);  dg = dout[index]"""

    def forward(self, xp, g, *, index, shape):
        self.index = index
        return xp.scatter(g, index, shape, xp.is_basic(index))

    def vjp(self, xp, g, out, x):
        return (g[self.index],)


class Concatenate(Rule):
    """out = concatenate(xs, axis);  dxi = the slice of g that xi filled"""

    def forward(self, xp, *xs, axis):
        if not xs:
            raise ValueError("concatenate: needs at least one tensor")
        ndim = xs[0].ndim
        axis = normalize_axis(axis, ndim, "concatenate")[0] if ndim else 0
        for i, x in enumerate(xs):
            rest = lambda s: s[:axis] + s[axis + 1 :]
            if x.ndim != ndim or rest(x.shape) != rest(xs[0].shape) or not ndim:
                raise ValueError(
                    f"concatenate: tensor {i} has shape {x.shape}, tensor 0 has {xs[0].shape}; all "
                    f"need the same rank (at least 1) and the same sizes except along axis {axis}"
                )
        self.axis = axis
        self.bounds = [int(b) for b in np.cumsum([x.shape[axis] for x in xs])[:-1]]
        return np.concatenate(xs, axis=axis)

    def vjp(self, xp, g, out, *xs):
        parts = xp.split(g, self.bounds, self.axis)
        return tuple(p if need else None for p, need in zip(parts, self.needs_grad))


# --- linear algebra ---


def matmul_error(a: tuple[int, ...], b: tuple[int, ...]) -> str:
    """What is wrong with a @ b, and how to fix it."""
    if not a or not b:
        return f"matmul: got {a} @ {b}; a 0-d operand has no matrix dimensions, use * to scale"
    k = b[-2] if len(b) > 1 else b[0]
    if a[-1] != k:
        return (
            f"matmul: expected (..., n, k) @ (..., k, m), got {a} @ {b}: inner dimensions "
            f"{a[-1]} and {k} differ; transpose an operand (.T) or fix its size"
        )
    return f"matmul: batch dimensions of {a} @ {b} do not broadcast ({a[:-2]} vs {b[:-2]})"


class MatMul(Rule):
    """out = x @ w (np.matmul: 1-D, 2-D, batched);  dx = g @ w^T,  dw = x^T @ g, summed over broadcast batch dims"""

    def forward(self, xp, x, w):
        try:
            return xp.matmul(x, w)
        except ValueError:  # explain numpy's refusal in terms of shapes and a fix
            raise ValueError(matmul_error(x.shape, w.shape)) from None

    def vjp(self, xp, g, out, x, w):
        if x.ndim == 2 and w.ndim == 2:  # the common case, without reshaping
            return (
                g @ w.T if self.needs_grad[0] else None,
                x.T @ g if self.needs_grad[1] else None,
            )
        # promote 1-D operands as np.matmul does: x (k,) -> (1, k), w (k,) -> (k, 1)
        x2 = xp.reshape(x, (1,) + x.shape) if x.ndim == 1 else x
        w2 = xp.reshape(w, w.shape + (1,)) if w.ndim == 1 else w
        g2 = xp.reshape(g, g.shape[:-1] + (1,) + g.shape[-1:]) if x.ndim == 1 else g
        g2 = xp.reshape(g2, g2.shape + (1,)) if w.ndim == 1 else g2
        gx = gw = None
        if self.needs_grad[0]:
            gx = xp.sum_to(xp.matmul(g2, xp.swapaxes(w2, -1, -2)), x2.shape)
            gx = xp.reshape(gx, x.shape)
        if self.needs_grad[1]:
            gw = xp.sum_to(xp.matmul(xp.swapaxes(x2, -1, -2), g2), w2.shape)
            gw = xp.reshape(gw, w.shape)
        return gx, gw


class Svd(Rule):
    """One factor of the thin SVD x = U diag(S) Vh, x (..., m, n), k = min(m, n): part "U" (..., m, k),
    "S" (..., k), descending, or "Vh" (..., k, n).  dx for S: U diag(g) Vh; for U and Vh
    (Townsend, "Differentiating the singular value decomposition", 2016), with F_ij =
    1/(s_j^2 - s_i^2) off the diagonal: U (F o (U^T g - g^T U)) S Vh + (I - U U^T) g S^-1 Vh for U,
    U S (F o (Vh g^T - g Vh^T)) Vh + U S^-1 g (I - Vh^T Vh) for Vh. Those need distinct singular
    values (and nonzero ones where m != n); U and Vh are unique only up to the signs of their
    columns, so only functions that do not see those signs (norms, U diag(w) Vh) are defined.

    vjp takes the factors from xp.svd(x): under the differentiable namespace they are Svd nodes of
    x themselves, so the gradient is differentiable again (the second derivative of a singular
    value uses U's and Vh's vjps).
    """

    PARTS = ("U", "S", "Vh")

    def forward(self, xp, x, *, part):
        if part not in self.PARTS:
            raise ValueError(f"svd: unknown part {part!r}; choose one of {list(self.PARTS)}")
        if x.ndim < 2:
            raise ValueError(f"svd: needs a matrix (at least 2 dimensions), got shape {x.shape}")
        self.part = part
        u, s, vh = xp.svd(x)
        return u if part == "U" else s if part == "S" else vh

    def vjp(self, xp, g, out, x):
        u, s, vh = xp.svd(x)
        if self.part == "S":
            return ((u * xp.expand_dims(g, -2)) @ vh,)
        m, n = x.shape[-2:]
        k = min(m, n)
        eye = np.eye(k, dtype=x.dtype)
        s2 = s * s
        f = 1.0 / (xp.expand_dims(s2, -2) - xp.expand_dims(s2, -1) + eye) * (1 - eye)
        if self.part == "U":
            a = xp.swapaxes(u, -1, -2) @ g  # U^T g
            inner = f * (a - xp.swapaxes(a, -1, -2)) * xp.expand_dims(s, -2)
            gx = u @ (inner @ vh)
            if m > k:  # the part of g outside U's columns
                gx = gx + ((g - u @ a) / xp.expand_dims(s, -2)) @ vh
            return (gx,)
        b = vh @ xp.swapaxes(g, -1, -2)  # V^T gV, with gV = g^T
        inner = xp.expand_dims(s, -1) * (f * (b - xp.swapaxes(b, -1, -2)))
        gx = u @ (inner @ vh)
        if n > k:  # the part of g outside Vh's rows
            gx = gx + (u / xp.expand_dims(s, -2)) @ (g - (g @ xp.swapaxes(vh, -1, -2)) @ vh)
        return (gx,)


# --- fused (each tested against the composite it replaces) ---


class Linear(Rule):
    """out = x @ w + b  (x (..., k), w (k, m), b (m,));  dx = g @ w^T,  dw = x^T @ g,  db = sum of g's rows

    Tensor records this one node for ``x @ W + b`` (the matmul's product is passed in, so nothing is
    computed twice) instead of MatMul, Expand and Add.
    """

    def forward(self, xp, x, w, b, *, product=None):
        return (xp.matmul(x, w) if product is None else product) + b

    def vjp(self, xp, g, out, x, w, b):
        g2 = xp.reshape(g, (-1, g.shape[-1])) if g.ndim != 2 else g
        gx = gw = gb = None
        if self.needs_grad[0]:
            gx = g @ w.T
        if self.needs_grad[1]:
            gw = (xp.reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x).T @ g2
        if self.needs_grad[2]:
            gb = xp.column_sums(g2)
        return gx, gw, gb


class LinearReLU(Linear):
    """out = relu(x @ w + b);  the Linear gradients of g * (out > 0)   (relu'(0) = 0)

    Tensor records this one node for ``(x @ W + b).relu()``; preact is the recorded x @ W + b.
    """

    def forward(self, xp, x, w, b, *, preact):
        return xp.relu(preact)

    def vjp(self, xp, g, out, x, w, b):
        return super().vjp(xp, g * (out > 0), out, x, w, b)


_UNSIGNED: dict[np.dtype, np.dtype] = {}  # an integer dtype -> the unsigned one of its size


def check_labels(labels, n: int, classes: int) -> np.ndarray:
    """labels as an integer array of shape (n,), each in [0, classes), else ValueError naming the
    first bad one: cross_entropy's check, in its rule and in the jit's planned kernel."""
    if type(labels) is not np.ndarray:
        labels = np.asarray(labels)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"cross_entropy: expected integer labels of shape ({n},), got {labels.dtype} "
            f"{labels.shape}"
        )
    unsigned = _UNSIGNED.get(labels.dtype)
    if unsigned is None:
        unsigned = _UNSIGNED[labels.dtype] = np.dtype(labels.dtype.str.replace("i", "u"))
    # one reduction for both ends: a negative label, seen as unsigned, is >= classes too
    if labels.view(unsigned).max() >= classes:
        _bad_labels(labels, classes)
    return labels


def _bad_labels(labels: np.ndarray, classes: int):
    bad = int(np.flatnonzero((labels < 0) | (labels >= classes))[0])
    raise ValueError(
        f"cross_entropy: label {int(labels[bad])} at position {bad} is outside "
        f"[0, {classes}); labels must index the {classes} classes"
    )


class CrossEntropy(Rule):
    """out = mean_i(logsumexp(x_i) - x_i[labels_i]);  dx = g * (softmax(x) - onehot(labels)) / n

    The fused form of ``-log_softmax(x)[arange(n), labels].mean()``: one pass, finite for any finite
    logits (the max is subtracted before exp). The probabilities are kept as a residual for
    backend's gradient kernel; differentiable.py recomputes them from x.
    """

    def forward(self, xp, x, *, labels):
        if x.ndim != 2:
            raise ValueError(
                f"cross_entropy: expected logits of shape (batch, classes), got {x.shape}"
            )
        if x.shape[0] == 0:
            raise ValueError(
                f"cross_entropy: an empty batch (logits of shape {x.shape}) has no mean loss; "
                f"give at least one row"
            )
        labels = check_labels(labels, *x.shape)
        shifted = x - xp.row_max(x)
        rows = np.arange(x.shape[0])
        picked = shifted[rows, labels]
        probs = np.exp(shifted)
        sums = xp.row_sums(probs)
        probs /= sums[:, None]  # in place: probs is ours
        self.probs, self.rows, self.labels = probs, rows, labels
        loss = (np.log(sums) - picked).sum() / x.shape[0]
        return np.asarray(loss, dtype=x.dtype)

    def vjp(self, xp, g, out, x):
        return (xp.cross_entropy_grad(g, x, self.labels, self.rows, self.probs),)


# --- scans ---


class Cumsum(Rule):
    """out = cumsum(x, axis) (axis an int);  dx = flip(cumsum(flip(g, axis), axis), axis), the
    sums of g from each position to the end"""

    def forward(self, xp, x, *, axis):
        self.axis = normalize_axis(axis, x.ndim, "cumsum")[0]
        return xp.cumsum(x, self.axis)

    def vjp(self, xp, g, out, x):
        a = self.axis
        return (xp.flip(xp.cumsum(xp.flip(g, a), a), a),)


# --- windows: convolution and pooling over (N, C, H, W) ---
#
# A geometry is (stride, padding, dilation): stride and dilation (rows, cols), padding ((top,
# bottom), (left, right)); nn.functional checks the arguments and builds it. The three convolution
# rules are one bilinear map and its two adjoints, so each one's vjp is written with the others and
# derivatives of every order stay convolutions.


class Conv2d(Rule):
    """out = conv2d(x, w) (cross-correlation, as PyTorch);  dx = conv2d_input_grad(g, w),  dw = conv2d_weight_grad(x, g)"""

    def forward(self, xp, x, w, *, geometry, groups):
        self.geometry, self.groups = geometry, groups
        # the unfolded x, a residual for backend's weight gradient (differentiable.py unfolds anew)
        self.cols = [] if self.needs_grad[1] and groups == 1 else None
        return xp.conv2d(x, w, geometry, groups, self.cols)

    def vjp(self, xp, g, out, x, w):
        geo, groups = self.geometry, self.groups
        cols = self.cols[0] if self.cols else None
        return (
            xp.conv2d_input_grad(g, w, x.shape, geo, groups) if self.needs_grad[0] else None,
            xp.conv2d_weight_grad(x, g, w.shape, geo, groups, cols) if self.needs_grad[1] else None,
        )


class Conv2dInputGrad(Rule):
    """out = conv2d_input_grad(g, w) (a transposed convolution);  dg = conv2d(dout, w),  dw = conv2d_weight_grad(dout, g)"""

    def forward(self, xp, g, w, *, x_shape, geometry, groups):
        self.geometry, self.groups = geometry, groups
        return xp.conv2d_input_grad(g, w, x_shape, geometry, groups)

    def vjp(self, xp, d, out, g, w):
        geo, groups = self.geometry, self.groups
        return (
            xp.conv2d(d, w, geo, groups) if self.needs_grad[0] else None,
            xp.conv2d_weight_grad(d, g, w.shape, geo, groups) if self.needs_grad[1] else None,
        )


class Conv2dWeightGrad(Rule):
    """out = conv2d_weight_grad(x, g);  dx = conv2d_input_grad(g, dout),  dg = conv2d(x, dout)"""

    def forward(self, xp, x, g, *, w_shape, geometry, groups):
        self.geometry, self.groups = geometry, groups
        return xp.conv2d_weight_grad(x, g, w_shape, geometry, groups)

    def vjp(self, xp, d, out, x, g):
        geo, groups = self.geometry, self.groups
        return (
            xp.conv2d_input_grad(g, d, x.shape, geo, groups) if self.needs_grad[0] else None,
            xp.conv2d(x, d, geo, groups) if self.needs_grad[1] else None,
        )


class MaxPool2d(Rule):
    """out = the maximum of each window;  dx = g sent to each window's first maximum (row-major
    order within the window, as PyTorch), summed where windows overlap"""

    def forward(self, xp, x, *, kernel, geometry):
        self.kernel, self.geometry = kernel, geometry
        return xp.max_pool2d(x, kernel, geometry)

    def vjp(self, xp, g, out, x):
        return (xp.max_pool2d_grad(g, x, out, self.kernel, self.geometry),)


class AvgPool2d(Rule):
    """out = the sum of each window / divisor;  dx = avg_pool2d_transpose(g)"""

    def forward(self, xp, x, *, kernel, geometry, divisor):
        self.kernel, self.geometry, self.divisor = kernel, geometry, divisor
        return xp.avg_pool2d(x, kernel, geometry, divisor)

    def vjp(self, xp, g, out, x):
        return (xp.avg_pool2d_transpose(g, x.shape, self.kernel, self.geometry, self.divisor),)


class AvgPool2dTranspose(Rule):
    """out = each window's g / divisor added to its elements (AvgPool2d's vjp);  dg = avg_pool2d(dout)"""

    def forward(self, xp, g, *, x_shape, kernel, geometry, divisor):
        self.kernel, self.geometry, self.divisor = kernel, geometry, divisor
        return xp.avg_pool2d_transpose(g, x_shape, kernel, geometry, divisor)

    def vjp(self, xp, d, out, g):
        return (xp.avg_pool2d(d, self.kernel, self.geometry, self.divisor),)


class BatchNorm(Rule):
    """out = (x - mean) / sqrt(var + eps) * w + b, mean and biased var of each channel (axis 1) over
    the batch and the other axes (training-mode batch norm);
    dx = w / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat)),  dw = sum(g * xhat),  db = sum(g)

    The fused form of the composite (F.batch_norm with training=True), tested against it: four
    passes forward and eight backward instead of about twenty-five.
    """

    def forward(self, xp, x, w, b, *, eps):
        self.axes = (0,) + tuple(range(2, x.ndim))
        self.shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        self.eps = eps
        xc = x - x.mean(axis=self.axes, keepdims=True)
        inv = (((xc * xc).mean(axis=self.axes, keepdims=True)) + eps) ** -0.5
        self.residual = (xc, inv)  # for backend's vjp; differentiable.py's recomputes them
        return xc * (inv * xp.reshape(w, self.shape)) + xp.reshape(b, self.shape)

    def vjp(self, xp, g, out, x, w, b):
        axes, shape = self.axes, self.shape
        if xp.differentiable:
            xc = x - x.mean(axis=axes, keepdims=True)
            inv = ((xc * xc).mean(axis=axes, keepdims=True) + self.eps) ** -0.5
        else:
            xc, inv = self.residual
        xhat = xc * inv
        g_sum = g.sum(axis=axes, keepdims=True)
        gx_sum = (g * xhat).sum(axis=axes, keepdims=True)
        gx = gw = gb = None
        if self.needs_grad[0]:
            scale = 1.0 / (x.size // x.shape[1])
            gx = (g - g_sum * scale - xhat * (gx_sum * scale)) * (inv * xp.reshape(w, shape))
        if self.needs_grad[1]:
            gw = xp.reshape(gx_sum, w.shape)
        if self.needs_grad[2]:
            gb = xp.reshape(g_sum, b.shape)
        return gx, gw, gb
