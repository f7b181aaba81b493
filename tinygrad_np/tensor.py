"""Tensor: construction, graph recording (_apply, record), operators and composite ops.

Composites here never define a backward: their gradients come from the primitives in ops.py.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, linalg, numpy_api, ops
from .composites import Composites
from .elementwise import Elementwise
from .movement import Movement, atleast
from .reductions import Reductions
from .linalg import LinearAlgebra
from ._shapes import broadcast_shape, normalize_axis
from .engine import (
    ANOMALY,
    CAPTURING,
    GRAD_ENABLED,
    RELEASED,
    JitError,
    captured,
    check_finite,
    run_backward,
)

_FLOAT32 = np.dtype(np.float32)


def _is_float(dtype) -> bool:
    return dtype.kind == "f"


def _shape_arg(shape) -> tuple[int, ...]:
    """Accept f(2, 3), f((2, 3)) and f([2, 3])."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


class Tensor(Composites, Elementwise, Movement, Reductions, LinearAlgebra):
    """An ndarray that records the operations that made it, for reverse-mode autodiff."""

    __slots__ = ("data", "grad", "requires_grad", "_op", "_parents", "__weakref__")
    __hash__ = (
        object.__hash__
    )  # by identity, as torch: tensors stay dict keys although == is elementwise

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        elif data is None:
            raise TypeError("Tensor: data is None; give a number, a (nested) list or an ndarray")
        if dtype is not None:
            dtype = np.dtype(dtype)
        elif type(data) is np.ndarray and data.dtype.kind in "biu" and not requires_grad:
            dtype = data.dtype  # integer and bool arrays keep their dtype: labels, indices, masks
        else:
            dtype = _FLOAT32
        if requires_grad and not _is_float(dtype):
            raise TypeError(
                f"Tensor: requires_grad=True needs a floating dtype, got {dtype}; "
                f"pass dtype=np.float32 (or float64) to differentiate"
            )
        # no copy when data is already an ndarray of dtype (shared, as torch.from_numpy)
        self.data = np.asarray(data, dtype=dtype) if CAPTURING.now is None else _cast(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._op = None
        self._parents = ()

    @staticmethod
    def _wrap(data) -> Tensor:
        """A Tensor around an array, without copying or casting."""
        t = Tensor.__new__(Tensor)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad, t.requires_grad, t._op, t._parents = None, False, None, ()
        return t

    @staticmethod
    def _lift(x, dtype=None) -> Tensor:
        """x as a Tensor; constants become arrays of dtype (when given) that need no gradient."""
        if isinstance(x, Tensor):
            return x
        return Tensor._wrap(np.asarray(x, dtype=dtype) if CAPTURING.now is None else _cast(x, dtype))

    @staticmethod
    def _apply(op_cls, *parents: Tensor, **attrs) -> Tensor:
        """Run op_cls forward on the parents' data; record it for backward when any parent needs grad."""
        needs = (
            tuple([p.requires_grad for p in parents])
            if GRAD_ENABLED.get()
            else (False,) * len(parents)
        )
        op = op_cls(needs)
        if CAPTURING.now is not None:
            data = CAPTURING.now.forward(op, parents, attrs)
        elif op_cls.is_rule:
            data = op.forward(backend, *[p.data for p in parents], **attrs)
        else:  # an ndarray-only Op of the first engine
            data = op.forward(*[p.data for p in parents], **attrs)
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        if parents:
            dtype = parents[0].data.dtype
            if (
                data.dtype is not dtype
                and data.dtype != dtype
                and op.keeps_dtype
                and dtype.kind == "f"
            ):
                raise RuntimeError(
                    f"{op_cls.__name__}.forward returned {data.dtype} for {dtype} "
                    f"input; an op must keep its input dtype"
                )
        if True in needs:
            return record(op, data, parents)
        if ANOMALY.get():
            check_finite(data, op_cls.__name__, [p.data for p in parents])
        return Tensor._wrap(data)

    # --- constructors ---

    @staticmethod
    def zeros(*shape, dtype=np.float32, requires_grad=False) -> Tensor:
        """A tensor of zeros: Tensor.zeros(2, 3) or Tensor.zeros((2, 3))."""
        return Tensor(np.zeros(_shape_arg(shape), dtype), requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def ones(*shape, dtype=np.float32, requires_grad=False) -> Tensor:
        """A tensor of ones."""
        return Tensor(np.ones(_shape_arg(shape), dtype), requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def randn(
        *shape, rng: np.random.Generator | None = None, dtype=np.float32, requires_grad=False
    ) -> Tensor:
        """Standard normal samples drawn from rng (a fresh unseeded generator when None)."""
        rng = np.random.default_rng() if rng is None else rng
        data = rng.standard_normal(_shape_arg(shape)).astype(dtype, copy=False)
        return Tensor(data, requires_grad=requires_grad, dtype=dtype)

    @staticmethod
    def uniform(
        *shape,
        low=0.0,
        high=1.0,
        rng: np.random.Generator | None = None,
        dtype=np.float32,
        requires_grad=False,
    ) -> Tensor:
        """Uniform samples in [low, high) drawn from rng (a fresh unseeded generator when None)."""
        rng = np.random.default_rng() if rng is None else rng
        data = rng.uniform(low, high, _shape_arg(shape)).astype(dtype, copy=False)
        return Tensor(data, requires_grad=requires_grad, dtype=dtype)

    # --- the engine ---

    def backward(self, grad=None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * grad into every leaf's .grad that requires grad.

        First order: .grad is an ndarray. Gradients add up across calls until reset (``t.grad =
        None`` or ``optimizer.zero_grad()``). The graph is freed as it is walked unless
        retain_graph=True; a freed graph cannot be walked again. For a gradient you can
        differentiate again, use ``tinygrad_np.autograd.grad(..., create_graph=True)``.
        """
        if create_graph:
            raise TypeError(
                "backward(create_graph=True): .grad holds plain ndarrays here, so a gradient "
                "meant to be differentiated again is returned instead: "
                "gx, = tinygrad_np.autograd.grad(loss, [x], create_graph=True) (a Tensor on the "
                "graph), or tinygrad_np.grad(fn) for a function"
            )
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad; create the inputs "
                "with requires_grad=True (and not under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without grad= needs a scalar (size-1) tensor, got shape "
                    f"{self.shape}; reduce first (loss.mean() or loss.sum()) or pass grad="
                )
            grad = np.array(1, self.data.dtype).reshape(self.data.shape)  # np.ones is slower here
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(): grad has shape {grad.shape}, tensor has shape "
                    f"{self.shape}; pass a grad of the tensor's shape"
                )
            grad = grad.astype(self.dtype, copy=False)
        run_backward(self, grad, retain_graph)

    # --- properties and conversions ---

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def numpy(self) -> np.ndarray:
        """The data as an ndarray (shared, not copied)."""
        _no_values_in_capture(".numpy()")
        return self.data

    def item(self) -> float:
        """The value of a size-1 tensor as a Python number."""
        _no_values_in_capture(".item()")
        if self.data.size != 1:
            raise ValueError(
                f"item(): needs a size-1 tensor, got shape {self.shape}; index or reduce first"
            )
        return self.data.item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data)

    def astype(self, dtype) -> Tensor:
        """A cast; gradients are cast back to this tensor's dtype."""
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else Tensor._apply(ops.Cast, self, dtype=dtype)

    def __array__(self, dtype=None, copy=None):
        _no_values_in_capture("np.asarray(tensor)")
        return np.array(self.data, dtype=dtype, copy=copy) if copy else np.asarray(self.data, dtype)

    # --- the numpy protocol: numpy functions on Tensors are Tensor operations (numpy_api.py) ---

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        handler = numpy_api.UFUNCS.get(ufunc) if method == "__call__" else None
        if handler is None:
            raise numpy_api.unsupported(name, hasattr(Tensor, ufunc.__name__))
        if kwargs:
            raise _protocol_kwargs(name, kwargs)
        like = next(x for x in inputs if isinstance(x, Tensor))
        dtype = like.dtype if _is_float(like.dtype) else None  # constants take the tensor's dtype
        return handler(*(x if isinstance(x, Tensor) else Tensor._lift(x, dtype) for x in inputs))

    def __array_function__(self, func, types, args, kwargs):
        if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
            return NotImplemented
        handler = _FUNCTIONS.get(func)
        if handler is None:
            raise numpy_api.unsupported(func.__name__, hasattr(Tensor, func.__name__))
        if kwargs.get("out") is not None:
            raise _protocol_kwargs(func.__name__, {"out": kwargs["out"]})
        kwargs.pop("out", None)
        return handler(*args, **kwargs)

    def __bool__(self) -> bool:
        _no_values_in_capture("bool(tensor) (Python branching on a tensor's value)")
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use "
                f".any() or .all() on .data, or reduce first"
            )
        return bool(self.data)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __repr__(self) -> str:
        body = (
            np.array2string(self.data, precision=4, separator=", ", threshold=8)
            if self.size <= 8
            else f"<shape {self.shape}>"
        )
        extra = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        if self.requires_grad:
            extra += (
                ", requires_grad=True"
                if self._op in (None, RELEASED)
                else f", op={type(self._op).__name__}"
            )
        return f"Tensor({body}{extra})"

    # --- binary operators (numpy broadcasting) ---

    def _pair(self, other, name: str) -> tuple[Tensor, Tensor] | None:
        """self and other with one dtype, the operands that need grad broadcast to the output's shape."""
        if (
            type(other) is Tensor
            and other.data.dtype is self.data.dtype
            and other.data.shape == self.data.shape
        ):
            return self, other  # the common case, decided without further calls
        if isinstance(other, Tensor):
            self, other = _unify(self, other, name)
        elif isinstance(other, (int, float, bool, np.ndarray, np.generic, list, tuple)):
            other = Tensor._lift(other, self.dtype if _is_float(self.dtype) else None)
        else:
            return None
        if self.data.shape == other.data.shape:
            return self, other
        if not ((self.requires_grad or other.requires_grad) and GRAD_ENABLED.get()):
            return (
                self,
                other,
            )  # nothing to record: the op broadcasts natively (_binary explains errors)
        if (other.data.ndim == 0 and not other.requires_grad) or (
            self.data.ndim == 0 and not self.requires_grad
        ):
            return (
                self,
                other,
            )  # a scalar constant: the other operand already has the output's shape
        shape = broadcast_shape(name, self.data.shape, other.data.shape)
        return self._grow(shape), other._grow(shape)

    def _grow(self, shape) -> Tensor:
        """Broadcast to shape when a gradient must flow back through the broadcast."""
        if self.shape == shape or not (self.requires_grad and GRAD_ENABLED.get()):
            return self
        return Tensor._apply(ops.Expand, self, shape=shape)

    def _binary(self, op_cls, other, name: str, reflected: bool = False):
        rule = FUSIONS.get(op_cls)  # before broadcasting: a rule sees the operands as written
        if rule is not None:
            fused = rule(*((other, self) if reflected else (self, other)))
            if fused is not None:
                return fused
        pair = self._pair(other, name)
        if pair is None:
            return NotImplemented
        try:
            return Tensor._apply(op_cls, *(pair[::-1] if reflected else pair))
        except ValueError:
            broadcast_shape(
                name, pair[0].data.shape, pair[1].data.shape
            )  # names the shapes, if that was it
            raise

    def __add__(self, other):
        return self._binary(ops.Add, other, "add")

    def __radd__(self, other):
        return self._binary(ops.Add, other, "add", reflected=True)

    def __mul__(self, other):
        return self._binary(ops.Mul, other, "mul")

    def __rmul__(self, other):
        return self._binary(ops.Mul, other, "mul", reflected=True)

    def __truediv__(self, other):
        return self._binary(ops.Div, other, "div")

    def __rtruediv__(self, other):
        return self._binary(ops.Div, other, "div", reflected=True)

    def __pow__(self, other):
        return self._binary(ops.Pow, other, "pow")

    def __rpow__(self, other):
        return self._binary(ops.Pow, other, "pow", reflected=True)

    def __sub__(self, other):
        if not isinstance(other, Tensor) and isinstance(
            other, (int, float, np.ndarray, np.generic)
        ):
            dtype = self.dtype if _is_float(self.dtype) else None
            return self + captured(np.negative, other, dtype=dtype)
        pair = self._pair(other, "sub")
        return NotImplemented if pair is None else pair[0] + (-pair[1])

    def __rsub__(self, other):
        pair = self._pair(other, "sub")
        return NotImplemented if pair is None else pair[1] + (-pair[0])

    def __neg__(self):
        return Tensor._apply(ops.Neg, self)

    def maximum(self, other) -> Tensor:
        """Elementwise max; at ties the gradient is split evenly (as PyTorch)."""
        return self._binary(ops.Maximum, other, "maximum")

    def minimum(self, other) -> Tensor:
        """Elementwise min; at ties the gradient is split evenly (as PyTorch)."""
        pair = self._pair(other, "minimum")
        return -(-pair[0]).maximum(-pair[1])

    def matmul(self, other) -> Tensor:
        """np.matmul semantics: 1-D, 2-D and batched operands with broadcast batch dimensions."""
        if type(other) is not Tensor or other.data.dtype is not self.data.dtype:
            other = Tensor._lift(other, self.dtype)
            if self.dtype != other.dtype:
                raise TypeError(
                    f"matmul: dtypes {self.dtype} and {other.dtype} differ; cast one with .astype()"
                )
        if GRAD_ENABLED.get() and (self.requires_grad or other.requires_grad):
            op = ops.MatMul((self.requires_grad, other.requires_grad))  # hot: recorded directly
            if CAPTURING.now is None:  # inline: this path is hot
                return record(op, op.forward(backend, self.data, other.data), (self, other))
            return record(op, run(op, (self, other)), (self, other))
        return Tensor._apply(ops.MatMul, self, other)

    def __matmul__(self, other):
        if isinstance(other, (Tensor, np.ndarray, list)):
            return self.matmul(other)
        return NotImplemented

    def __rmatmul__(self, other):
        return (
            Tensor._lift(other, self.dtype).matmul(self)
            if isinstance(other, (np.ndarray, list))
            else NotImplemented
        )

    # --- comparisons: bool tensors that carry no gradient ---

    def _compare(self, ufunc, other, name: str) -> Tensor:
        other = other.data if isinstance(other, Tensor) else np.asarray(other)
        broadcast_shape(name, self.shape, other.shape)
        return Tensor._wrap(captured(ufunc, self.data, other))

    def eq(self, other) -> Tensor:
        """Elementwise ==, as a bool tensor (also spelled ``==``)."""
        return self._compare(np.equal, other, "eq")

    def ne(self, other) -> Tensor:
        """Elementwise !=, as a bool tensor (also spelled ``!=``)."""
        return self._compare(np.not_equal, other, "ne")

    def __eq__(self, other):
        return self.eq(other) if isinstance(other, _COMPARABLE) else NotImplemented

    def __ne__(self, other):
        return self.ne(other) if isinstance(other, _COMPARABLE) else NotImplemented

    def __lt__(self, other):
        return self._compare(np.less, other, "lt")

    def __le__(self, other):
        return self._compare(np.less_equal, other, "le")

    def __gt__(self, other):
        return self._compare(np.greater, other, "gt")

    def __ge__(self, other):
        return self._compare(np.greater_equal, other, "ge")

    # --- logical and bitwise operators on bool and integer tensors (no gradient) ---

    def _logical(self, ufunc, other, name: str) -> Tensor:
        for t in (self, other):
            kind = np.asarray(t.data if isinstance(t, Tensor) else t).dtype
            if kind.kind not in "biu":
                raise TypeError(
                    f"{name}: needs bool or integer operands, got {kind}; compare first "
                    f"(for example (t > 0) {'&' if name == 'and' else '|'} mask)"
                )
        return self._compare(ufunc, other, name)

    def __and__(self, other):
        return self._logical(np.bitwise_and, other, "and")

    def __rand__(self, other):
        return self._logical(np.bitwise_and, other, "and")

    def __or__(self, other):
        return self._logical(np.bitwise_or, other, "or")

    def __ror__(self, other):
        return self._logical(np.bitwise_or, other, "or")

    def __xor__(self, other):
        return self._logical(np.bitwise_xor, other, "xor")

    def __rxor__(self, other):
        return self._logical(np.bitwise_xor, other, "xor")

    def __invert__(self):
        return self._logical(lambda x, _: np.invert(x), True, "invert")

    # --- unary ---

    def exp(self) -> Tensor:
        return Tensor._apply(ops.Exp, self)

    def log(self) -> Tensor:
        return Tensor._apply(ops.Log, self)

    def relu(self) -> Tensor:
        """max(x, 0), with relu'(0) = 0 (as PyTorch)."""
        rule = FUSIONS.get(ops.ReLU)  # (x @ W + b).relu(): one node, by the fusion rules
        fused = None if rule is None else rule(self)
        return Tensor._apply(ops.ReLU, self) if fused is None else fused

    def tanh(self) -> Tensor:
        return Tensor._apply(ops.Tanh, self)

    def sigmoid(self) -> Tensor:
        return Tensor._apply(ops.Sigmoid, self)

    def sqrt(self) -> Tensor:
        return self**0.5

    def abs(self) -> Tensor:
        """|x|, with abs'(0) = 0 (as PyTorch)."""
        return self.relu() + (-self).relu()

    def clip(self, low=None, high=None) -> Tensor:
        """Values limited to [low, high]; the gradient passes where low <= x <= high (as torch.clamp)."""
        out = self
        if low is not None:  # maximum(x, low), ties to x: where(x < low, low, x)
            out = where(out < low, low, out)
        if high is not None:  # then minimum(., high), as np.clip (high wins when low > high)
            out = where(out > high, high, out)
        return out

    # --- reductions ---

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        return Tensor._apply(ops.Sum, self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        """Maximum over axis; tied maxima share the gradient evenly (as torch.amax)."""
        return Tensor._apply(ops.Max, self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False) -> Tensor:
        """Minimum over axis; tied minima share the gradient evenly (as torch.amin)."""
        return -(-self).max(axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        axes = normalize_axis(axis, self.ndim, "mean")
        count = math.prod(self.shape[a] for a in axes)
        if count == 0:
            over = "" if axis is None else f" along axis {axis}"
            raise ValueError(
                f"mean: a tensor of shape {self.shape} has no elements to average{over}"
            )
        return self.sum(axes, keepdims) * (1.0 / count)  # a Python float keeps float32 float32

    def _shift(self, axis, name: str) -> np.ndarray:
        """The max along axis (keepdims), a constant that stabilises exp; non-finite maxima become 0.
        name: the op the user called, for the axis error."""
        return captured(finite_max, self.data, normalize_axis(axis, self.ndim, name))

    def logsumexp(self, axis=None, keepdims: bool = False) -> Tensor:
        """log(sum(exp(x))) along axis, computed stably."""
        m = self._shift(axis, "logsumexp")
        out = (self - m).exp().sum(axis, keepdims=True).log() + m
        return out if keepdims else out.squeeze(axis)

    def softmax(self, axis: int = -1) -> Tensor:
        e = (
            self - self._shift(axis, "softmax")
        ).exp()  # the shift cancels in the ratio; it only avoids overflow
        return e / e.sum(axis, keepdims=True)

    def log_softmax(self, axis: int = -1) -> Tensor:
        shifted = self - self._shift(
            axis, "log_softmax"
        )  # constant shift: stability only; gradients are shift-invariant
        return shifted - shifted.exp().sum(axis, keepdims=True).log()

    # --- movement ---

    def reshape(self, *shape) -> Tensor:
        return Tensor._apply(ops.Reshape, self, shape=_shape_arg(shape))

    def transpose(self, *axes) -> Tensor:
        """Permute axes (reversed when none are given), as ndarray.transpose."""
        axes = _shape_arg(axes) if axes else tuple(range(self.ndim))[::-1]
        return Tensor._apply(ops.Transpose, self, axes=axes)

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        """Merge axes start_axis..end_axis into one."""
        if self.ndim == 0:
            return self.reshape(1)
        lo, hi = (normalize_axis(a, self.ndim, "flatten")[0] for a in (start_axis, end_axis))
        if lo > hi:
            raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
        return self.reshape(self.shape[:lo] + (-1,) + self.shape[hi + 1 :])

    def expand(self, *shape) -> Tensor:
        """Broadcast to shape (-1 keeps a dimension), as torch.expand."""
        shape = _shape_arg(shape)
        pad = len(shape) - self.ndim
        shape = tuple(
            self.shape[i - pad] if n == -1 and i >= pad else n for i, n in enumerate(shape)
        )
        return self if shape == self.shape else Tensor._apply(ops.Expand, self, shape=shape)

    def broadcast_to(self, shape) -> Tensor:
        return self.expand(shape)

    def squeeze(self, axis=None) -> Tensor:
        """Remove size-1 axes (all of them when axis is None)."""
        axes = normalize_axis(axis, self.ndim, "squeeze")
        if axis is not None and any(self.shape[a] != 1 for a in axes):
            raise ValueError(f"squeeze: axis {axis} of shape {self.shape} does not have size 1")
        return self.reshape(
            tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1))
        )

    def unsqueeze(self, axis: int) -> Tensor:
        """Insert a size-1 axis at position axis (of the result)."""
        a = normalize_axis(axis, self.ndim + 1, "unsqueeze")[0]
        return self.reshape(self.shape[:a] + (1,) + self.shape[a:])

    def __getitem__(self, index) -> Tensor:
        """numpy indexing: ints, slices, None, ..., integer and boolean arrays (or Tensors)."""
        index = tuple(map(_index_part, index)) if isinstance(index, tuple) else _index_part(index)
        try:
            return Tensor._apply(ops.Index, self, index=index)
        except IndexError as e:
            raise IndexError(f"index: {e} (tensor shape {self.shape})") from None

    def __setitem__(self, index, value):
        raise TypeError(
            "Tensor does not support item assignment: build a new tensor with "
            "where(mask, value, t) or concatenate()"
        )


_COMPARABLE = (Tensor, np.ndarray, np.generic, int, float, list, tuple)  # `t == None` is False


def _protocol_kwargs(name: str, kwargs: dict) -> TypeError:
    if "out" in kwargs:
        return TypeError(
            f"numpy.{name}(..., out=...) on a Tensor: a Tensor is never written in place (the "
            f"graph would lose the value it recorded); use the returned Tensor"
        )
    return TypeError(f"numpy.{name} on a Tensor: {', '.join(sorted(kwargs))} is not supported")


def run(op: ops.Rule, parents: tuple, **attrs) -> np.ndarray:
    """op's forward on the parents' arrays (numpy), recorded as a kernel while a jit capture runs:
    the direct path of the hot ops, which record() their output themselves."""
    if CAPTURING.now is not None:
        return CAPTURING.now.forward(op, parents, attrs)
    return op.forward(backend, *[p.data for p in parents], **attrs)


def finite_max(x: np.ndarray, axis) -> np.ndarray:
    """x.max(axis, keepdims=True) with non-finite maxima as 0: the shift that stabilises exp
    (a kernel of its own, so that jit's cross-entropy pass can recognise log_softmax)."""
    m = x.max(axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0)


def _cast(x, dtype) -> np.ndarray:
    """np.asarray(x, dtype) inside a jit capture: a conversion of an array is a recorded kernel."""
    if isinstance(x, np.ndarray) and not (dtype is None or x.dtype == dtype):
        return captured(np.asarray, x, dtype)
    return np.asarray(x, dtype=dtype)


def _no_values_in_capture(what: str) -> None:
    if CAPTURING.now is not None:
        raise JitError(
            f"{what} inside a jitted step: the value of this call's tensor would be baked into "
            f"the replayed program; return the Tensor from the step and call {what} on the result "
            f"(or run this part outside the jitted function)"
        )


def record(op: ops.Rule, data: np.ndarray, parents: tuple) -> Tensor:
    """A Tensor for data, recorded as op's output (for fused ops built from checked parts)."""
    if ANOMALY.get():
        check_finite(data, type(op).__name__, [p.data for p in parents])
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out.requires_grad, out._op, out._parents = data, None, True, op, parents
    return out


def _unify(a: Tensor, b: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Give a and b one dtype: a non-float operand takes the float one's; two floats must agree."""
    if a.dtype == b.dtype:
        return a, b
    if _is_float(a.dtype) and _is_float(b.dtype):
        raise TypeError(
            f"{name}: dtypes {a.dtype} and {b.dtype} differ (no silent upcasts); cast "
            f"one with .astype(np.{a.dtype}) or .astype(np.{b.dtype})"
        )
    if _is_float(a.dtype):
        return a, Tensor._wrap(captured(np.asarray, b.data, a.dtype))
    if _is_float(b.dtype):
        return Tensor._wrap(captured(np.asarray, a.data, b.dtype)), b
    return a, b


def _plain(v):
    """A nested list with its Tensors replaced by their arrays."""
    if isinstance(v, Tensor):
        return v.data
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _index_part(i):
    if isinstance(i, Tensor):
        i = i.data
    elif isinstance(i, list):  # nested lists may hold Tensors: numpy index arrays
        i = np.asarray(_plain(i))
    if isinstance(i, np.ndarray) and i.dtype.kind == "f":
        raise IndexError(
            f"index arrays must be integer or bool, got {i.dtype}; use .astype(np.int64)"
        )
    return i


# --- module functions ---


def apply(rule, *inputs, **attrs) -> Tensor:
    """Run a rule (an ops.Rule or ops.Op subclass) on Tensors, constants wrapped, recording it."""
    return Tensor._apply(rule, *(Tensor._lift(x) for x in inputs), **attrs)


def erf(x) -> Tensor:
    """The error function of a Tensor (or of a constant, as a Tensor of its dtype)."""
    return Tensor._lift(x).erf()


def erfc(x) -> Tensor:
    """1 - erf(x), computed directly (exact where erf(x) is close to 1)."""
    return Tensor._lift(x).erfc()


def where(cond, x, y) -> Tensor:
    """x where cond else y, broadcasting all three; cond carries no gradient."""
    cond = np.asarray(cond.data if isinstance(cond, Tensor) else cond, dtype=bool)
    ref = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else Tensor(x)
    x, y = _unify(Tensor._lift(x, ref.dtype), Tensor._lift(y, ref.dtype), "where")
    shape = broadcast_shape("where", cond.shape, x.shape, y.shape)
    return Tensor._apply(ops.Where, x._grow(shape), y._grow(shape), cond=cond)


def _one_dtype(tensors, name: str) -> list[Tensor]:
    """The operands of a join in one dtype: constants take the first float tensor's; float
    tensors must agree (no silent upcasts); bool/int tensors take the float dtype."""
    tensors = list(tensors)
    ref = next((t for t in tensors if isinstance(t, Tensor) and _is_float(t.dtype)), None)
    if ref is None:
        return [Tensor._lift(t) for t in tensors]
    out = []
    for t in tensors:
        t = Tensor._lift(t, ref.dtype)
        out.append(_unify(ref, t, name)[1])
    return out


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    return Tensor._apply(ops.Concatenate, *_one_dtype(tensors, "concatenate"), axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    tensors = _one_dtype(tensors, "stack")
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    normalize_axis(axis, tensors[0].ndim + 1, "stack")  # the error names stack, not unsqueeze
    return concatenate([t.unsqueeze(axis) for t in tensors], axis=axis)


def _concatenate_as(name: str, tensors, axis: int) -> Tensor:
    """concatenate, its errors naming the function the user called."""
    try:
        return concatenate(tensors, axis)
    except ValueError as e:  # AxisError included
        raise type(e)(str(e).replace("concatenate:", f"{name}:", 1)) from None


def cat(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """PyTorch's name for concatenate (dim= accepted)."""
    return _concatenate_as("cat", tensors, axis if dim is None else dim)


def _atleast(ndim: int, arys):
    out = [atleast(Tensor._lift(t), ndim) for t in arys]
    return out[0] if len(out) == 1 else out


def atleast_1d(*arys):
    """Each input with at least 1 dimension (a 0-d one becomes (1,)); a list for several inputs."""
    return _atleast(1, arys)


def atleast_2d(*arys):
    """At least 2 dimensions: (n,) becomes (1, n), as np.atleast_2d."""
    return _atleast(2, arys)


def atleast_3d(*arys):
    """At least 3 dimensions: (n,) becomes (1, n, 1), (m, n) becomes (m, n, 1) (np.atleast_3d)."""
    return _atleast(3, arys)


def _lifted(name: str, tensors) -> list[Tensor]:
    """The inputs as Tensors, arrays and numbers taking the first Tensor's dtype."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name}: needs at least one tensor")
    ref = next((t for t in tensors if isinstance(t, Tensor)), None)
    return [Tensor._lift(t, None if ref is None else ref.dtype) for t in tensors]


def _joined(name: str, tensors, ndim: int) -> list[Tensor]:
    return [atleast(t, ndim) for t in _lifted(name, tensors)]


def vstack(tensors) -> Tensor:
    """Join along the first axis, 1-D inputs as rows (np.vstack; PyTorch's vstack)."""
    return _concatenate_as("vstack", _joined("vstack", tensors, 2), 0)


def hstack(tensors) -> Tensor:
    """Join along the second axis, or the first for 1-D inputs (np.hstack)."""
    tensors = _joined("hstack", tensors, 1)
    return _concatenate_as("hstack", tensors, 0 if tensors[0].ndim == 1 else 1)


def dstack(tensors) -> Tensor:
    """Join along the third axis, inputs made 3-D as np.atleast_3d makes them (np.dstack)."""
    return _concatenate_as("dstack", _joined("dstack", tensors, 3), 2)


def column_stack(tensors) -> Tensor:
    """1-D inputs as columns, 2-D ones as they are, joined along axis 1 (np.column_stack)."""
    cols = [t.reshape(-1, 1) if t.ndim < 2 else t for t in _lifted("column_stack", tensors)]
    return _concatenate_as("column_stack", cols, 1)


def _first(a, b) -> Tensor:
    """a as a Tensor, taking b's dtype when a is a constant and b a float Tensor."""
    if isinstance(a, Tensor):
        return a
    like = b.dtype if isinstance(b, Tensor) and _is_float(b.dtype) else None
    return Tensor._lift(a, like)


def tensordot(a, b, axes=2) -> Tensor:
    """np.tensordot: sums of products over axes (an int N, or a pair of axis lists)."""
    return _first(a, b).tensordot(b, axes)


def dot(a, b) -> Tensor:
    """np.dot."""
    return _first(a, b).dot(b)


def inner(a, b) -> Tensor:
    """np.inner: sums of products over the last axes."""
    return _first(a, b).inner(b)


def outer(a, b) -> Tensor:
    """np.outer of the flattened operands."""
    return _first(a, b).outer(b)


def kron(a, b) -> Tensor:
    """np.kron: the Kronecker product."""
    return _first(a, b).kron(b)


def einsum(subscripts: str, *operands) -> Tensor:
    """np.einsum: explicit ('ij,jk->ik', '...ij,...jk->...ik') or implicit ('ij,jk') subscripts,
    any number of operands (contracted pairwise from the left)."""
    ref = next((t for t in operands if isinstance(t, Tensor) and _is_float(t.dtype)), None)
    lifted = [Tensor._lift(t, None if ref is None else ref.dtype) for t in operands]
    if len({t.dtype for t in lifted}) > 1 and all(_is_float(t.dtype) for t in lifted):
        raise TypeError(
            f"einsum: dtypes {' and '.join(str(t.dtype) for t in lifted)} differ; cast one with "
            f".astype()"
        )
    return linalg.einsum(subscripts, *lifted)


def zeros(*shape, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor.zeros(*shape, dtype=dtype, requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor.ones(*shape, dtype=dtype, requires_grad=requires_grad)


def randn(*shape, rng=None, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor.randn(*shape, rng=rng, dtype=dtype, requires_grad=requires_grad)


def uniform(*shape, low=0.0, high=1.0, rng=None, dtype=np.float32, requires_grad=False) -> Tensor:
    return Tensor.uniform(
        *shape, low=low, high=high, rng=rng, dtype=dtype, requires_grad=requires_grad
    )


_FUNCTIONS = {
    **numpy_api.FUNCTIONS,
    np.where: where,
    np.concatenate: lambda arrays, axis=0: concatenate(arrays, axis),
    np.stack: lambda arrays, axis=0: stack(arrays, axis),
    np.vstack: lambda tup: vstack(tup),
    np.hstack: lambda tup: hstack(tup),
    np.dstack: lambda tup: dstack(tup),
    np.column_stack: lambda tup: column_stack(tup),
    np.atleast_1d: atleast_1d,
    np.atleast_2d: atleast_2d,
    np.atleast_3d: atleast_3d,
    np.tensordot: tensordot,
    np.dot: dot,
    np.inner: inner,
    np.outer: lambda a, b: outer(a, b),
    np.kron: kron,
    np.einsum: lambda subscripts, *operands, **kw: _einsum_call(subscripts, operands, kw),
}


def _einsum_call(subscripts, operands, kwargs) -> Tensor:
    if kwargs:
        raise TypeError(f"numpy.einsum on a Tensor: {', '.join(sorted(kwargs))} is not supported")
    return einsum(subscripts, *operands)


from .fusion import DISPATCH as FUSIONS  # noqa: E402  (the rules use record and run above)
