"""Reductions, scans, sorting and norms: a mixin of Tensor.

cumsum is a rule (ops.Cumsum); the rest is composed from recorded Tensor operations, so gradients
of any order come free: prod and cumprod multiply pairwise (a product tree, a doubling scan), exact
at zeros, never dividing by x. Index results (argmax, argsort) and truth values (any, all) are
Tensors that carry no gradient. numpy's names and arguments; PyTorch's dim=/keepdim= accepted.
No Tensor import: methods use self.
"""

from __future__ import annotations

import math

import numpy as np

from . import ops
from ._shapes import axis_arg, normalize_axis, one_axis


def _keep(keepdims, keepdim):
    return keepdims if keepdim is None else keepdim


class Reductions:
    __slots__ = ()

    # --- scans ---

    def cumsum(self, axis=None, *, dim=None):
        """Running sums along axis (of the flattened tensor when None), as np.cumsum; integer and
        bool tensors give numpy's integer result."""
        axis = axis_arg(axis, dim)
        if axis is None:
            return self.reshape(-1).cumsum(0)
        if self.ndim == 0:
            raise ValueError("cumsum: a 0-d tensor has no axis; use axis=None")
        return self._apply(ops.Cumsum, self, axis=axis)

    def cumprod(self, axis=None, *, dim=None):
        """Running products along axis (flattened when None), as np.cumprod: a doubling scan of
        pairwise products (log2(n) steps), exact where elements are zero."""
        axis = axis_arg(axis, dim)
        if axis is None:
            return self.reshape(-1).cumprod(0)
        if self.ndim == 0:
            raise ValueError("cumprod: a 0-d tensor has no axis; use axis=None")
        a = one_axis(axis, self.ndim, "cumprod")
        if self.dtype.kind != "f":  # no gradient: numpy's values and integer dtype
            return self._wrap(np.cumprod(self.data, axis=a))
        n, out, step = self.shape[a], self, 1
        lead = (slice(None),) * a
        while step < n:
            ones = np.ones(self.shape[:a] + (step,) + self.shape[a + 1 :], self.dtype)
            shifted = ops_concat(self, [self._lift(ones), out[lead + (slice(0, n - step),)]], a)
            out = out * shifted
            step *= 2
        return out if out is not self else self.reshape(self.shape)

    def diff(self, n: int = 1, axis: int = -1, prepend=None, append=None):
        """The n-th differences along axis, out[i] = x[i + 1] - x[i] applied n times, as np.diff
        (prepend/append: values joined before/after along axis first)."""
        if n < 0:
            raise ValueError(f"diff: order n={n} must be non-negative")
        if self.ndim == 0:
            raise ValueError("diff: needs at least 1 dimension, got a 0-d tensor")
        a = one_axis(axis, self.ndim, "diff")
        x = self
        if prepend is not None or append is not None:
            edge = self.shape[:a] + (1,) + self.shape[a + 1 :]
            parts = [
                v if v.ndim else v.expand(edge)
                for v in (self._lift(e, self.dtype) for e in (prepend, append) if e is not None)
            ]
            parts.insert(0 if prepend is None else 1, self)
            others = lambda s: s[:a] + s[a + 1 :]  # noqa: E731
            for v in parts:
                if v.ndim != self.ndim or others(v.shape) != others(self.shape):
                    raise ValueError(
                        f"diff: prepend/append of shape {v.shape} does not fit the tensor of shape "
                        f"{self.shape} along axis {a}; give a scalar or an array with the "
                        f"tensor's sizes on the other axes"
                    )
            x = ops_concat(self, parts, a)
        lead = (slice(None),) * a
        for _ in range(n):
            hi, lo = x[lead + (slice(1, None),)], x[lead + (slice(None, -1),)]
            x = hi.ne(lo) if x.dtype.kind == "b" else hi - lo  # bools: not_equal, as numpy
        return x

    # --- products and traces ---

    def prod(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """The product over axis, as np.prod: a tree of pairwise products, exact where elements are
        zero (the gradient of each element is the product of the others, with no division)."""
        axes = normalize_axis(axis_arg(axis, dim), self.ndim, "prod")
        keepdims = _keep(keepdims, keepdim)
        if self.dtype.kind != "f":
            return self._wrap(np.prod(self.data, axis=axes, keepdims=keepdims))
        rest = [i for i in range(self.ndim) if i not in axes]
        n = math.prod(self.shape[a] for a in axes)
        out_shape = tuple(1 if i in axes else s for i, s in enumerate(self.shape))
        if not keepdims:
            out_shape = tuple(self.shape[i] for i in rest)
        if n == 0:  # the empty product is 1, still on the graph
            return self.sum(axes, keepdims) * 0.0 + 1.0
        x = self.transpose(rest + list(axes)).reshape(tuple(self.shape[i] for i in rest) + (n,))
        while x.shape[-1] > 1:
            if x.shape[-1] % 2:
                ones = self._lift(np.ones(x.shape[:-1] + (1,), self.dtype))
                x = ops_concat(self, [x, ones], x.ndim - 1)
            x = x[..., 0::2] * x[..., 1::2]
        return x.reshape(out_shape)

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1):
        """The sum of the diagonal at offset of the (axis1, axis2) planes, as np.trace."""
        if self.ndim < 2:
            raise ValueError(f"trace: needs at least 2 dimensions, got shape {self.shape}")
        return self.diagonal(offset, axis1, axis2).sum(-1)

    # --- truth values and indices: no gradient ---

    def any(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """Whether any element along axis is nonzero: a bool tensor with no gradient."""
        axes = normalize_axis(axis_arg(axis, dim), self.ndim, "any")
        return self._wrap(np.any(self.data, axis=axes, keepdims=_keep(keepdims, keepdim)))

    def all(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """Whether every element along axis is nonzero: a bool tensor with no gradient."""
        axes = normalize_axis(axis_arg(axis, dim), self.ndim, "all")
        return self._wrap(np.all(self.data, axis=axes, keepdims=_keep(keepdims, keepdim)))

    def argmax(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """The index of the largest element along axis (of the flattened tensor when None), the
        first one at ties, as np.argmax: an int64 tensor with no gradient."""
        return self._arg(np.argmax, "argmax", axis_arg(axis, dim), _keep(keepdims, keepdim))

    def argmin(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """The index of the smallest element along axis, the first at ties, as np.argmin."""
        return self._arg(np.argmin, "argmin", axis_arg(axis, dim), _keep(keepdims, keepdim))

    def _arg(self, fn, name, axis, keepdims):
        a = None if axis is None else one_axis(axis, max(self.ndim, 1), name)
        if self.size == 0 or (a is not None and self.shape[a] == 0):
            raise ValueError(f"{name}: a tensor of shape {self.shape} has no elements to compare")
        return self._wrap(np.asarray(fn(self.data, axis=a, keepdims=keepdims), np.int64))

    # --- sorting ---

    def argsort(self, axis=-1, descending: bool = False, *, dim=None):
        """The indices that sort along axis (flattened when None): stable, so tied elements keep
        their order (also with descending=True, as torch's stable sort): int64, no gradient."""
        axis = axis_arg(axis, dim, -1)
        data = self.data.reshape(-1) if axis is None else self.data
        if data.ndim == 0:
            raise ValueError("argsort: a 0-d tensor has no axis to sort along; use axis=None")
        a = 0 if axis is None else one_axis(axis, self.ndim, "argsort")
        if not descending:
            return self._wrap(np.argsort(data, axis=a, kind="stable").astype(np.int64))
        # descending and stable: sort the reversed data ascending, reverse, map the indices back
        order = np.flip(np.argsort(np.flip(data, a), axis=a, kind="stable"), a)
        return self._wrap((data.shape[a] - 1 - order).astype(np.int64))

    def sort(self, axis=-1, descending: bool = False, *, dim=None):
        """The values sorted along axis (flattened when None), as np.sort: take_along_axis of the
        stable argsort, so each output's gradient goes to the element it came from (tied elements
        in their original order)."""
        axis = axis_arg(axis, dim, -1)
        x = self.reshape(-1) if axis is None else self
        if x.ndim == 0:
            raise ValueError("sort: a 0-d tensor has no axis to sort along; use axis=None")
        a = 0 if axis is None else axis
        return x.take_along_axis(x.argsort(a, descending).data, a)

    # --- norms ---

    def norm(self, ord=None, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """np.linalg.norm: a vector norm along one axis (ord None or 2, 1, inf, -inf, 0, any p),
        a matrix norm over two axes (ord None or 'fro', 1, -1, inf, -inf, and by the singular
        values 2 (the largest), -2 (the smallest), 'nuc' (their sum)), and for axis None the
        2-norm of all elements (ord None) or the vector/matrix norm of a 1-D/2-D tensor. The
        gradient of a 2-norm or p-norm (p >= 1) of zeros is 0 (as PyTorch); that of a singular
        value is U[:, i] Vh[i] (ties of the largest or smallest shared evenly, as torch.amax);
        its second derivative needs distinct singular values."""
        axis = axis_arg(axis, dim)
        keepdims = _keep(keepdims, keepdim)
        if self.dtype.kind != "f":
            raise TypeError(f"norm: needs a floating tensor, got {self.dtype}; cast with .astype()")
        if axis is None:
            if ord is None:
                out = self.reshape(-1)._pnorm(2, 0)
                return out.reshape((1,) * self.ndim) if keepdims else out
            if self.ndim not in (1, 2):
                raise ValueError(
                    f"norm: ord={ord!r} with axis=None needs a 1-D or 2-D tensor, got shape "
                    f"{self.shape}; give axis= (one axis: a vector norm, two: a matrix norm)"
                )
            axis = tuple(range(self.ndim))
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        if len(axes) == 1:
            a = one_axis(axes[0], self.ndim, "norm")
            if isinstance(ord, str):
                raise ValueError(f"norm: ord={ord!r} is a matrix norm; give two axes")
            out = self._pnorm(2 if ord is None else ord, a)
            return out.unsqueeze(a) if keepdims else out
        if len(axes) != 2:
            raise ValueError(f"norm: axis {axis!r} must name one axis or two, not {len(axes)}")
        r, c = (one_axis(a, self.ndim, "norm") for a in axes)
        if r == c:
            raise ValueError(f"norm: the two axes {axis!r} are the same axis")
        if ord in (None, "fro"):
            out = self._safe_root(self.square().sum((r, c)), 2)
        elif ord in (1, -1, math.inf, -math.inf):
            inner, outer = (r, c) if ord in (1, -1) else (c, r)
            sums = self.abs().sum(inner, keepdims=True)
            out = sums.max(outer, keepdims=True) if ord > 0 else sums.min(outer, keepdims=True)
            out = out.squeeze((r, c))
        elif ord in (2, -2, "nuc"):  # by the singular values (an SVD of each matrix)
            x = self.moveaxis((r, c), (-2, -1))
            if 0 in x.shape[-2:] and ord == -2:
                raise ValueError(
                    f"norm: ord=-2 of matrices of shape {x.shape[-2:]} (axes {axis!r} of "
                    f"{self.shape}): an empty matrix has no smallest singular value"
                )
            if 0 in x.shape[-2:]:  # no singular values: 0 (their sum, and numpy's largest)
                out = x.sum((-2, -1)) * 0.0
            else:
                s = self._apply(ops.Svd, x, part="S")
                out = s.sum(-1) if ord == "nuc" else s.max(-1) if ord == 2 else s.min(-1)
        else:
            raise ValueError(
                f"norm: matrix ord={ord!r} is not a matrix norm; use None or 'fro', 'nuc', 1, -1, "
                f"2, -2, inf or -inf"
            )
        return out.unsqueeze(min(r, c)).unsqueeze(max(r, c)) if keepdims else out

    def _pnorm(self, p, a):
        """The p-norm along axis a (removed)."""
        if p == math.inf:
            return self.abs().max(a)
        if p == -math.inf:
            return self.abs().min(a)
        if p == 0:  # the count of nonzero elements: piecewise constant, zero gradient
            return (self * 0.0).sum(a) + (self.data != 0).sum(a).astype(self.dtype)
        if p == 2:
            return self._safe_root(self.square().sum(a), 2)
        if p == 1:
            return self.abs().sum(a)
        return self._safe_root((self.abs() ** float(p)).sum(a), p)

    def _safe_root(self, s, p):
        """s ** (1 / p), with gradient 0 (not nan) where s is 0: the root is taken of 1 there."""
        zero = s.data == 0
        if not zero.any():
            return s ** (1.0 / p)
        one = self._lift(np.ones(s.shape, s.dtype))
        root = self._apply(ops.Where, one, s, cond=zero) ** (1.0 / p)
        return self._apply(ops.Where, self._lift(np.zeros(s.shape, s.dtype)), root, cond=zero)


def ops_concat(like, tensors, axis):
    """concatenate, for mixins without the module function (like: any Tensor, for _apply)."""
    return like._apply(ops.Concatenate, *tensors, axis=axis)
