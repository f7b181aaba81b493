"""The primitives: each defines forward and backward on ndarrays, once. Never imports Tensor.

Contract (see Op): forward takes ndarrays (plus keyword-only attributes) and returns one ndarray of the
input dtype; backward(grad) returns one entry per input, exactly that input's shape, or None where
needs_grad is False. Ops never write into their inputs, into grad, or into what they returned.
"""

from __future__ import annotations

import numpy as np

from ._shapes import normalize_axis, unbroadcast

# --- numpy formulations of hot steps, faster than the obvious ones (each tested against them) ---


_SMALL = 1 << 17  # elements (512 KiB of float32): the largest constant array kept
_CONSTANTS: dict[tuple[int, np.dtype], np.ndarray] = {}  # (value, dtype) -> read-only 1-D array


def _constant(value: int, n: int, dtype: np.dtype) -> np.ndarray:
    """n copies of value, read-only: a view of one cached array per (value, dtype), grown to the
    largest n asked for up to _SMALL (np.ones costs 0.7 us, more than the sums that use it)."""
    if n > _SMALL:
        return np.full(n, value, dtype)
    flat = _CONSTANTS.get((value, dtype))
    if flat is None or flat.size < n:
        flat = _CONSTANTS[value, dtype] = np.full(n, value, dtype)
        flat.flags.writeable = False
    return flat[:n]


def _relu(x: np.ndarray) -> np.ndarray:
    """np.maximum(x, 0), bit for bit, 3-4x faster up to _SMALL elements: numpy 2.4's loop for a
    scalar operand is slower than its loop for two arrays, even an array of zeros.

    (128, 128) float32: 5.6 -> 1.9 us; (128, 512): 20.7 -> 6.0 us.
    """
    if x.size > _SMALL:  # zeros this large would cost more memory than they save time
        return np.maximum(x, 0)
    return np.maximum(x, _constant(0, x.size, x.dtype).reshape(x.shape))


def _column_sums(g: np.ndarray) -> np.ndarray:
    """g.sum(axis=0) of a 2-D g, as the matrix-vector product ones @ g.

    numpy's reduction over the rows costs 2.4 us for (128, 10) float32 and 10 us for (512, 128);
    BLAS takes 0.8 and 3.1. The sums differ by rounding only (numpy adds the rows one by one; BLAS
    keeps several partial sums, no less accurate).
    """
    return _constant(1, g.shape[0], g.dtype) @ g


def _row_sums(x: np.ndarray) -> np.ndarray:
    """x.sum(axis=1) of a 2-D x, as x @ ones (2.6 -> 0.9 us for (128, 10) float32)."""
    return x @ _constant(1, x.shape[1], x.dtype)


def _row_max(x: np.ndarray) -> np.ndarray:
    """x.max(axis=1, keepdims=True) for a 2-D x, the same values, faster for short rows.

    numpy reduces along a short contiguous axis one row at a time (about 6 us for (128, 10)
    float32); with at least 32 rows and at most 32 columns, reducing the columns of a transposed
    copy is 2-7x faster. max is exact, so both give identical results.
    """
    if x.shape[0] >= 32 and x.shape[1] <= 32:
        return x.T.copy().max(axis=0)[:, None]
    return x.max(axis=1, keepdims=True)


class Op:
    """One call of a primitive. forward() may keep arrays on self for backward().

    Subclass it to add an op, then apply it to tensors with ``MyOp.apply(*tensors, **attrs)``.
    """

    keeps_dtype = True  # the engine checks that float inputs give outputs and grads of their dtype
    _trusted = False  # see __init_subclass__

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The engine checks the type, shape and dtype of every gradient an op returns. The ops in
        # this module skip that per-gradient check (about 0.15 us each): the test suite runs it
        # over every one of them instead (tests/test_ops_grad.py). Subclasses elsewhere get it.
        cls._trusted = cls.__module__ == __name__

    def __init__(self, needs_grad: tuple[bool, ...]):
        self.needs_grad = needs_grad  # one flag per input; skip work for inputs that need no grad

    def forward(self, *inputs: np.ndarray, **attrs) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError(f"{type(self).__name__}.backward is not defined")

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run this op on Tensors (constants are wrapped), recording it for backward()."""
        from .tensor import Tensor  # the op contract stays numpy-only; this is the one bridge

        return Tensor._apply(cls, *(Tensor._lift(x) for x in inputs), **attrs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# --- unary ---


class Neg(Op):
    """out = -x;  dx = -g"""

    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Exp(Op):
    """out = exp(x);  dx = g * out"""

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class Log(Op):
    """out = log(x);  dx = g / x"""

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, grad):
        return (grad / self.x,)


class ReLU(Op):
    """out = max(x, 0);  dx = g * (x > 0)   (relu'(0) = 0, as PyTorch)"""

    def forward(self, x):
        self.out = _relu(x)
        return self.out

    def backward(self, grad):
        return (grad * (self.out > 0),)


class Tanh(Op):
    """out = tanh(x);  dx = g * (1 - out^2)"""

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad):
        return (grad * (1 - self.out * self.out),)


class Sigmoid(Op):
    """out = 1 / (1 + exp(-x)) computed as (1 + tanh(x/2)) / 2, finite everywhere;  dx = g * out * (1 - out)"""

    def forward(self, x):
        self.out = 0.5 * np.tanh(0.5 * x) + 0.5
        return self.out

    def backward(self, grad):
        return (grad * self.out * (1 - self.out),)


class Cast(Op):
    """out = x.astype(dtype);  dx = g.astype(x.dtype)"""

    keeps_dtype = False

    def forward(self, x, *, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return (grad.astype(self.in_dtype),)


# --- binary (an input that needs a gradient comes broadcast to the output shape; constants need not) ---


class Add(Op):
    """out = x + y;  dx = g,  dy = g"""

    def forward(self, x, y):
        return x + y

    def backward(self, grad):
        return grad, grad  # the same array twice: the engine never writes into it


class Mul(Op):
    """out = x * y;  dx = g * y,  dy = g * x"""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, grad):
        return (
            grad * self.y if self.needs_grad[0] else None,
            grad * self.x if self.needs_grad[1] else None,
        )


class Div(Op):
    """out = x / y;  dx = g / y,  dy = -g * out / y"""

    def forward(self, x, y):
        self.y = y
        self.out = x / y
        return self.out

    def backward(self, grad):
        gx = grad / self.y
        return (gx if self.needs_grad[0] else None, -gx * self.out if self.needs_grad[1] else None)


class Pow(Op):
    """out = x ** y;  dx = g * y * x^(y-1),  dy = g * out * log(x)   (dy = 0 where x = 0 and y >= 0, as PyTorch)"""

    def forward(self, x, y):
        self.x, self.y = x, y
        self.out = x**y
        return self.out

    def backward(self, grad):
        x, y = self.x, self.y
        gx = gy = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_grad[0]:  # y = 0 has a zero gradient even at x = 0, as PyTorch
                gx = np.where(y == 0, 0, grad * y * x ** (y - 1)).astype(x.dtype, copy=False)
            if self.needs_grad[1]:
                gy = np.where((x == 0) & (y >= 0), 0, grad * self.out * np.log(x)).astype(
                    x.dtype, copy=False
                )
        return gx, gy


class Maximum(Op):
    """out = max(x, y);  dx = g * ((x > y) + (x == y) / 2),  dy likewise   (ties split evenly, as PyTorch)"""

    def forward(self, x, y):
        self.x, self.y = x, y
        return np.maximum(x, y)

    def backward(self, grad):
        x, y = self.x, self.y
        half = grad * 0.5
        gx = np.where(x > y, grad, np.where(x == y, half, 0)) if self.needs_grad[0] else None
        gy = np.where(y > x, grad, np.where(x == y, half, 0)) if self.needs_grad[1] else None
        return gx, gy


class Where(Op):
    """out = where(cond, x, y);  dx = where(cond, g, 0),  dy = where(cond, 0, g)   (cond carries no grad)"""

    def forward(self, x, y, *, cond):
        self.cond = cond
        return np.where(cond, x, y)

    def backward(self, grad):
        zero = np.zeros((), grad.dtype)
        return (
            np.where(self.cond, grad, zero) if self.needs_grad[0] else None,
            np.where(self.cond, zero, grad) if self.needs_grad[1] else None,
        )


# --- reduce ---


class Sum(Op):
    """out = x.sum(axis, keepdims);  dx = g broadcast back to x.shape"""

    def forward(self, x, *, axis=None, keepdims=False):
        self.in_shape = x.shape
        self.axis = normalize_axis(axis, x.ndim, "sum")
        self.keepdims = keepdims
        return np.asarray(x.sum(axis=self.axis, keepdims=keepdims))

    def backward(self, grad):
        if not self.keepdims:
            grad = np.expand_dims(grad, self.axis)
        return (np.broadcast_to(grad, self.in_shape),)


class Max(Op):
    """out = x.max(axis, keepdims);  dx = g * (x == max) / count(x == max)   (ties share evenly, as torch.amax)"""

    def forward(self, x, *, axis=None, keepdims=False):
        self.axis = normalize_axis(axis, x.ndim, "max")
        if x.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
        self.x, self.keepdims = x, keepdims
        self.out = np.asarray(x.max(axis=self.axis, keepdims=True))
        kept = tuple(n for i, n in enumerate(x.shape) if i not in self.axis)
        return self.out if keepdims else self.out.reshape(kept)

    def backward(self, grad):
        if not self.keepdims:
            grad = np.expand_dims(grad, self.axis)
        mask = (self.x == self.out).astype(self.x.dtype)
        count = mask.sum(axis=self.axis, keepdims=True)
        return (mask * (grad / count),)


# --- movement ---


class Reshape(Op):
    """out = x.reshape(shape);  dx = g.reshape(x.shape)"""

    def forward(self, x, *, shape):
        self.in_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape {x.shape} ({x.size} elements) to {tuple(shape)}; "
                f"the sizes must match (use -1 for one inferred dimension)"
            ) from None

    def backward(self, grad):
        return (grad.reshape(self.in_shape),)


class Transpose(Op):
    """out = x.transpose(axes);  dx = g.transpose(argsort(axes))"""

    def forward(self, x, *, axes):
        if sorted(a % x.ndim if -x.ndim <= a < x.ndim else a for a in axes) != list(range(x.ndim)):
            raise ValueError(
                f"transpose: axes {tuple(axes)} are not a permutation of the {x.ndim} axes of {x.shape}"
            )
        self.inverse = tuple(np.argsort([a % x.ndim for a in axes]))
        return x.transpose(axes)

    def backward(self, grad):
        return (grad.transpose(self.inverse),)


class Expand(Op):
    """out = broadcast_to(x, shape);  dx = unbroadcast(g, x.shape)"""

    def forward(self, x, *, shape):
        self.in_shape = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(
                f"expand: cannot broadcast {x.shape} to {tuple(shape)}; only size-1 dimensions "
                f"stretch and new dimensions go in front"
            ) from None

    def backward(self, grad):
        return (unbroadcast(grad, self.in_shape),)


class Index(Op):
    """out = x[index];  dx = zeros_like(x) with g scattered back, repeated indices summed"""

    def forward(self, x, *, index):
        self.in_shape, self.index = x.shape, index
        idx = index if isinstance(index, tuple) else (index,)
        self.basic = all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in idx)
        return x[index]

    def backward(self, grad):
        dx = np.zeros(self.in_shape, grad.dtype)
        if self.basic:  # basic indexing selects each element at most once
            dx[self.index] = grad
        else:
            np.add.at(dx, self.index, grad)
        return (dx,)


class Concatenate(Op):
    """out = concatenate(xs, axis);  dxi = the slice of g that xi filled"""

    def forward(self, *xs, axis):
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
        self.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=axis)

    def backward(self, grad):
        parts = np.split(grad, self.bounds, axis=self.axis)
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


class MatMul(Op):
    """out = x @ w (np.matmul: 1-D, 2-D, batched);  dx = g @ w^T,  dw = x^T @ g, summed over broadcast batch dims"""

    def forward(self, x, w):
        self.x, self.w = x, w
        try:
            return np.matmul(x, w)
        except ValueError:  # explain numpy's refusal in terms of shapes and a fix
            raise ValueError(matmul_error(x.shape, w.shape)) from None

    def backward(self, grad):
        x, w = self.x, self.w
        if x.ndim == 2 and w.ndim == 2:  # the common case, without reshaping
            return (
                grad @ w.T if self.needs_grad[0] else None,
                x.T @ grad if self.needs_grad[1] else None,
            )
        x2 = x[None, :] if x.ndim == 1 else x  # promote 1-D operands as np.matmul does
        w2 = w[:, None] if w.ndim == 1 else w
        g2 = grad.reshape(grad.shape[:-1] + (1,) + grad.shape[-1:]) if x.ndim == 1 else grad
        g2 = g2[..., None] if w.ndim == 1 else g2
        gx = gw = None
        if self.needs_grad[0]:
            gx = unbroadcast(np.matmul(g2, np.swapaxes(w2, -1, -2)), x2.shape).reshape(x.shape)
        if self.needs_grad[1]:
            gw = unbroadcast(np.matmul(np.swapaxes(x2, -1, -2), g2), w2.shape).reshape(w.shape)
        return gx, gw


# --- fused (each tested against the composite it replaces) ---


class Linear(Op):
    """out = x @ w + b  (x (..., k), w (k, m), b (m,));  dx = g @ w^T,  dw = x^T @ g,  db = sum of g's rows

    Tensor records this one node for ``x @ W + b`` (the matmul's product is passed in, so nothing is
    computed twice) instead of MatMul, Expand and Add.
    """

    def forward(self, x, w, b, *, product=None):
        self.x, self.w = x, w
        return (np.matmul(x, w) if product is None else product) + b

    def backward(self, grad):
        x, w = self.x, self.w
        g2 = grad.reshape(-1, grad.shape[-1]) if grad.ndim != 2 else grad
        gx = gw = gb = None
        if self.needs_grad[0]:
            gx = grad @ w.T
        if self.needs_grad[1]:
            gw = (x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x).T @ g2
        if self.needs_grad[2]:
            gb = _column_sums(g2)
        return gx, gw, gb


class LinearReLU(Linear):
    """out = relu(x @ w + b);  the Linear gradients of g * (out > 0)   (relu'(0) = 0)

    Tensor records this one node for ``(x @ W + b).relu()``; preact is the recorded x @ W + b.
    """

    def forward(self, x, w, b, *, preact):
        self.x, self.w = x, w
        self.out = _relu(preact)
        return self.out

    def backward(self, grad):
        return super().backward(grad * (self.out > 0))


def _bad_labels(labels: np.ndarray, classes: int):
    bad = int(np.flatnonzero((labels < 0) | (labels >= classes))[0])
    raise ValueError(
        f"cross_entropy: label {int(labels[bad])} at position {bad} is outside "
        f"[0, {classes}); labels must index the {classes} classes"
    )


class CrossEntropy(Op):
    """out = mean_i(logsumexp(x_i) - x_i[labels_i]);  dx = g * (softmax(x) - onehot(labels)) / n

    The fused form of ``-log_softmax(x)[arange(n), labels].mean()``: one pass, finite for any finite
    logits (the max is subtracted before exp).
    """

    def forward(self, x, *, labels):
        if x.ndim != 2:
            raise ValueError(
                f"cross_entropy: expected logits of shape (batch, classes), got {x.shape}"
            )
        if x.shape[0] == 0:
            raise ValueError(
                f"cross_entropy: an empty batch (logits of shape {x.shape}) has no mean loss; "
                f"give at least one row"
            )
        labels = np.asarray(labels)
        if labels.shape != (x.shape[0],) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"cross_entropy: expected integer labels of shape ({x.shape[0]},), got "
                f"{labels.dtype} {labels.shape}"
            )
        if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
            _bad_labels(labels, x.shape[1])
        rows = np.arange(x.shape[0])
        shifted = x - _row_max(x)
        try:
            picked = shifted[rows, labels]  # raises for a label >= classes (negatives were refused)
        except IndexError:
            _bad_labels(labels, x.shape[1])
        probs = np.exp(shifted)
        sums = _row_sums(probs)
        probs /= sums[:, None]  # in place: probs is ours
        self.probs, self.rows, self.labels = probs, rows, labels
        loss = (np.log(sums) - picked).sum() / x.shape[0]
        return np.asarray(loss, dtype=x.dtype)

    def backward(self, grad):
        scale = float(grad) / len(self.labels)  # a Python float keeps float32 float32
        dx = self.probs * scale  # a new array: probs stays intact for another backward()
        dx[self.rows, self.labels] -= scale
        return (dx,)
