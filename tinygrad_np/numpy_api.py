"""numpy functions on Tensors: which numpy ufunc or function runs which Tensor operation.

Tensor.__array_ufunc__ and Tensor.__array_function__ look numpy's calls up here, so ``np.exp(t)``,
``np.maximum(t, 0)`` or ``np.sum(t, axis=1)`` return Tensors recorded on the graph. A numpy function
without an entry raises a TypeError naming it: converting the Tensor to an ndarray silently would
drop the graph. Entries receive Tensors (ndarray and scalar operands already lifted) and call the
Tensor's own methods, so this module needs no Tensor import.
"""

from __future__ import annotations

import operator

import numpy as np

UFUNCS = {
    np.add: operator.add,
    np.subtract: operator.sub,
    np.multiply: operator.mul,
    np.true_divide: operator.truediv,
    np.power: operator.pow,
    np.matmul: operator.matmul,
    np.negative: operator.neg,
    np.positive: lambda x: x,
    np.exp: lambda x: x.exp(),
    np.log: lambda x: x.log(),
    np.sqrt: lambda x: x.sqrt(),
    np.tanh: lambda x: x.tanh(),
    np.absolute: lambda x: x.abs(),
    np.sin: lambda x: x.sin(),
    np.cos: lambda x: x.cos(),
    np.tan: lambda x: x.tan(),
    np.arcsin: lambda x: x.arcsin(),
    np.arccos: lambda x: x.arccos(),
    np.arctan: lambda x: x.arctan(),
    np.sinh: lambda x: x.sinh(),
    np.cosh: lambda x: x.cosh(),
    np.arcsinh: lambda x: x.arcsinh(),
    np.arccosh: lambda x: x.arccosh(),
    np.arctanh: lambda x: x.arctanh(),
    np.exp2: lambda x: x.exp2(),
    np.expm1: lambda x: x.expm1(),
    np.log2: lambda x: x.log2(),
    np.log10: lambda x: x.log10(),
    np.log1p: lambda x: x.log1p(),
    np.square: lambda x: x.square(),
    np.reciprocal: lambda x: x.reciprocal(),
    np.sign: lambda x: x.sign(),
    np.floor: lambda x: x.floor(),
    np.ceil: lambda x: x.ceil(),
    np.rint: lambda x: x.round(),
    np.trunc: lambda x: x.trunc(),
    np.remainder: lambda x, y: x.remainder(y),
    np.fmod: lambda x, y: x.fmod(y),
    np.arctan2: lambda y, x: y.arctan2(x),
    np.hypot: lambda x, y: x.hypot(y),
    np.logaddexp: lambda x, y: x.logaddexp(y),
    np.fmax: lambda x, y: x.fmax(y),
    np.fmin: lambda x, y: x.fmin(y),
    np.maximum: lambda x, y: x.maximum(y),
    np.minimum: lambda x, y: x.minimum(y),
    np.equal: lambda x, y: x.eq(y),
    np.not_equal: lambda x, y: x.ne(y),
    np.less: operator.lt,
    np.less_equal: operator.le,
    np.greater: operator.gt,
    np.greater_equal: operator.ge,
    np.bitwise_and: operator.and_,
    np.bitwise_or: operator.or_,
    np.bitwise_xor: operator.xor,
    np.invert: operator.invert,
}


def _reduction(method: str):
    """np.sum/mean/max/min(a, axis, ..., keepdims) as the Tensor method (np.max has no dtype=, so
    numpy refuses one before it reaches here)."""

    def run(a, axis=None, dtype=None, out=None, keepdims=False, **unsupported):
        if dtype is not None or unsupported:
            names = ["dtype"] * (dtype is not None) + sorted(unsupported)
            raise TypeError(
                f"numpy.{method} on a Tensor: {', '.join(names)} is not supported; cast with "
                f".astype() first"
            )
        return getattr(a, method)(axis=axis, keepdims=keepdims)

    return run


FUNCTIONS = {
    np.sum: _reduction("sum"),
    np.mean: _reduction("mean"),
    np.max: _reduction("max"),
    np.min: _reduction("min"),
    np.amax: _reduction("max"),
    np.amin: _reduction("min"),
    np.reshape: lambda a, shape=None, **kw: a.reshape(kw.get("newshape", shape)),
    np.transpose: lambda a, axes=None: a.transpose(*(() if axes is None else axes)),
    np.squeeze: lambda a, axis=None: a.squeeze(axis),
    np.expand_dims: lambda a, axis: a.unsqueeze(axis),
    np.broadcast_to: lambda a, shape: a.broadcast_to(shape),
    np.clip: lambda a, a_min=None, a_max=None: a.clip(a_min, a_max),
    np.round: lambda a, decimals=0: _rounded(a, decimals),
    np.flip: lambda m, axis=None: m.flip(axis),
    np.roll: lambda a, shift, axis=None: a.roll(shift, axis),
    np.tile: lambda A, reps: A.tile(reps),
    np.repeat: lambda a, repeats, axis=None: a.repeat(repeats, axis),
    np.pad: lambda array, pad_width, mode="constant", **kw: array.pad(pad_width, mode, **kw),
    np.swapaxes: lambda a, axis1, axis2: a.swapaxes(axis1, axis2),
    np.moveaxis: lambda a, source, destination: a.moveaxis(source, destination),
    np.split: lambda ary, indices_or_sections, axis=0: ary.split(indices_or_sections, axis),
    np.array_split: lambda ary, indices_or_sections, axis=0: ary.array_split(
        indices_or_sections, axis
    ),
    np.tril: lambda m, k=0: m.tril(k),
    np.triu: lambda m, k=0: m.triu(k),
    np.diagonal: lambda a, offset=0, axis1=0, axis2=1: a.diagonal(offset, axis1, axis2),
    np.diag: lambda v, k=0: v.diag(k),
    np.take_along_axis: lambda arr, indices, axis=-1: arr.take_along_axis(indices, axis),
    np.prod: _reduction("prod"),
    np.any: _reduction("any"),
    np.all: _reduction("all"),
    np.cumsum: lambda a, axis=None, dtype=None: _no_dtype("cumsum", dtype, a).cumsum(axis),
    np.cumprod: lambda a, axis=None, dtype=None: _no_dtype("cumprod", dtype, a).cumprod(axis),
    np.diff: lambda a, n=1, axis=-1, **kw: a.diff(n, axis, **kw),
    np.trace: lambda a, offset=0, axis1=0, axis2=1: a.trace(offset, axis1, axis2),
    np.argmax: lambda a, axis=None, keepdims=False: a.argmax(axis, keepdims),
    np.argmin: lambda a, axis=None, keepdims=False: a.argmin(axis, keepdims),
    np.sort: lambda a, axis=-1, kind=None, order=None, stable=None: a.sort(axis),
    np.argsort: lambda a, axis=-1, kind=None, order=None, stable=None: a.argsort(axis),
    np.linalg.norm: lambda x, ord=None, axis=None, keepdims=False: x.norm(ord, axis, keepdims),
    np.shape: lambda a: a.shape,
    np.ndim: lambda a: a.ndim,
    np.size: lambda a: a.size,
}


def _no_dtype(name: str, dtype, a):
    if dtype is not None:
        raise TypeError(
            f"numpy.{name} on a Tensor: dtype is not supported; cast with .astype() first"
        )
    return a


def _rounded(a, decimals):
    if decimals != 0:
        raise TypeError(
            f"numpy.round on a Tensor: decimals={decimals!r} is not supported; scale first: "
            f"(t * 10**d).round() / 10**d"
        )
    return a.round()


# where, concatenate and stack take several Tensors; tensor.py adds them beside its functions

# numpy names whose Tensor spelling differs from numpy's, for the error that points to it
METHOD_FOR = {
    "absolute": "abs", "true_divide": "/", "amax": "max", "amin": "min", "rint": "round",
}  # fmt: skip


def unsupported(name: str, has_method: bool) -> TypeError:
    """The error for a numpy function that has no rule for Tensors."""
    method = METHOD_FOR.get(name, name)
    hint = (
        f"use the Tensor method t.{method}(...)"
        if has_method
        else "write it from Tensor operations (see the README's table of numpy functions)"
    )
    return TypeError(
        f"numpy.{name} has no rule for tinygrad_np Tensors: converting to an ndarray would drop "
        f"the graph; {hint}, or call it on t.data to leave the graph on purpose"
    )
