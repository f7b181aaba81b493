"""Movement ops built from indexing, transpose, reshape, expand and concatenate: a Tensor mixin.

numpy's names and arguments (``axis=``), PyTorch's spellings as aliases (``dim=``, ``permute``,
``view``, ``gather``, ``chunk``). Every method is built from recorded Tensor operations (Index,
Scatter, Transpose, Reshape, Expand, Concatenate, Where), so gradients of any order come free. No
Tensor import: methods use self.
"""

from __future__ import annotations

import numpy as np

from . import ops
from ._shapes import axis_arg, axis_list, normalize_axis, one_axis


def _along(axis: int, ndim: int, index) -> tuple:
    """An index selecting index along axis and everything along the other axes."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


def _int_array(indices, op: str) -> np.ndarray:
    indices = np.asarray(getattr(indices, "data", indices))
    if indices.dtype.kind not in "iu":
        raise IndexError(
            f"{op}: indices must be integers, got {indices.dtype}; use .astype(np.int64)"
        )
    return indices


class Movement:
    __slots__ = ()

    # --- aliases and axis permutations ---

    def permute(self, *dims):
        """PyTorch's name for transpose(dims): a permutation of all the axes."""
        return self.transpose(*dims)

    def view(self, *shape):
        """PyTorch's name for reshape (always a new node; nothing is shared in place)."""
        return self.reshape(*shape)

    def swapaxes(self, axis1: int, axis2: int):
        """Exchange two axes, as np.swapaxes (PyTorch: swapaxes, also spelled swapdims)."""
        a = one_axis(axis1, self.ndim, "swapaxes")
        b = one_axis(axis2, self.ndim, "swapaxes")
        axes = list(range(self.ndim))
        axes[a], axes[b] = axes[b], axes[a]
        return self.transpose(axes)

    swapdims = swapaxes

    def moveaxis(self, source, destination):
        """Move axes to new positions, the others keeping their order, as np.moveaxis."""
        src, dst = axis_list(source), axis_list(destination)
        if len(src) != len(dst):
            raise ValueError(
                f"moveaxis: source {source!r} and destination {destination!r} name "
                f"{len(src)} and {len(dst)} axes; give as many of each"
            )
        src = [one_axis(a, self.ndim, "moveaxis") for a in src]
        dst = [one_axis(a, self.ndim, "moveaxis") for a in dst]
        if len(set(src)) != len(src) or len(set(dst)) != len(dst):
            raise ValueError(f"moveaxis: repeated axis in {source!r} or {destination!r}")
        order = [a for a in range(self.ndim) if a not in src]
        for d, s in sorted(zip(dst, src)):
            order.insert(d, s)
        return self.transpose(order)

    movedim = moveaxis

    # --- flips, rolls, repeats ---

    def flip(self, axis=None, *, dims=None):
        """Reverse the order of elements along axis (all axes when None), as np.flip."""
        axes = normalize_axis(axis_arg(axis, dims), self.ndim, "flip")
        if not axes:
            return self.reshape(self.shape)  # a 0-d tensor: a new node of the same value
        rev = slice(None, None, -1)
        return self[tuple(rev if a in axes else slice(None) for a in range(self.ndim))]

    def roll(self, shift, axis=None, *, dims=None):
        """Elements shifted by shift along axis, those past the end coming round to the start
        (axis None: over the flattened tensor, then reshaped), as np.roll."""
        axis = axis_arg(axis, dims)
        if axis is None:
            if not isinstance(shift, (int, np.integer)):
                raise TypeError(f"roll: with axis=None, shift must be an int, got {shift!r}")
            return self.reshape(-1).roll(shift, 0).reshape(self.shape)
        try:
            shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
        except ValueError:
            shifts = axes = np.zeros((2, 2))  # refused just below
        if shifts.ndim > 1 or shifts.dtype.kind not in "iu" or axes.dtype.kind not in "iu":
            raise ValueError(
                f"roll: shift {shift!r} and axis {axis!r} must be ints or sequences of ints of "
                f"one length"
            )
        total = {}
        for s, a in zip(np.atleast_1d(shifts), np.atleast_1d(axes)):
            a = one_axis(a, self.ndim, "roll")
            total[a] = total.get(a, 0) + int(s)
        out = self
        for a, s in total.items():
            n = self.shape[a]
            if n and s % n:
                out = out[_along(a, self.ndim, np.roll(np.arange(n), s))]
        return out if out is not self else self.reshape(self.shape)

    def tile(self, reps):
        """The tensor repeated reps times along each axis (reps padded with 1s in front, or the
        tensor given new leading axes, to one length), as np.tile."""
        reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
        if any(r < 0 for r in reps):
            raise ValueError(f"tile: reps {reps} must be non-negative")
        n = max(len(reps), self.ndim)
        reps = (1,) * (n - len(reps)) + reps
        shape = (1,) * (n - self.ndim) + self.shape
        spread = self.reshape(tuple(x for s in shape for x in (1, s)))
        grown = spread.expand(tuple(x for r, s in zip(reps, shape) for x in (r, s)))
        return grown.reshape(tuple(r * s for r, s in zip(reps, shape)))

    def repeat(self, repeats, axis=None, *, dim=None):
        """Each element repeated (repeats: an int, or one count per element along axis) along
        axis, the tensor flattened first when axis is None: np.repeat (PyTorch's
        repeat_interleave; PyTorch's repeat, which tiles, is tile here)."""
        axis = axis_arg(axis, dim)
        x = self.reshape(-1) if axis is None else self
        a = 0 if axis is None else one_axis(axis, self.ndim, "repeat")
        counts = np.asarray(getattr(repeats, "data", repeats))
        if counts.dtype.kind not in "iu" or counts.ndim > 1:
            raise TypeError(
                f"repeat: repeats must be an int or a 1-D sequence of ints, got {repeats!r}"
            )
        if (counts < 0).any():
            raise ValueError(f"repeat: repeats {counts.tolist()} must be non-negative")
        n = x.shape[a]
        if counts.ndim == 0:
            r = int(counts)
            grown = x.unsqueeze(a + 1)
            grown = grown.expand(grown.shape[: a + 1] + (r,) + grown.shape[a + 2 :])
            return grown.reshape(x.shape[:a] + (n * r,) + x.shape[a + 1 :])
        if counts.shape[0] not in (1, n):
            raise ValueError(
                f"repeat: {counts.shape[0]} repeats for the {n} elements along axis {a} of "
                f"shape {x.shape}; give one count per element, or one int"
            )
        return x[_along(a, x.ndim, np.repeat(np.arange(n), np.broadcast_to(counts, (n,))))]

    repeat_interleave = repeat

    # --- splitting ---

    def split(self, indices_or_sections, axis: int = 0, *, dim=None):
        """A list of sub-tensors: an int N cuts axis into N equal parts (an error if it does not
        divide), a sequence gives the cut points, as np.split."""
        return self._split(indices_or_sections, axis_arg(axis, dim, 0), "split", equal=True)

    def array_split(self, indices_or_sections, axis: int = 0):
        """As split, but N parts need not be equal: the first (n % N) get one element more."""
        return self._split(indices_or_sections, axis, "array_split", equal=False)

    def chunk(self, chunks: int, dim: int = 0):
        """PyTorch's chunk: parts of ceil(n / chunks) elements along dim, the last smaller
        (so there may be fewer than chunks parts)."""
        if self.ndim == 0:
            raise ValueError("chunk: a 0-d tensor has no axis to split; reshape it first")
        a = one_axis(dim, self.ndim, "chunk")
        if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
            raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
        n = self.shape[a]
        size = max(1, -(-n // chunks))
        return self._split(list(range(size, n, size)), a, "chunk", equal=False)

    def _split(self, sections, axis, name: str, equal: bool):
        if self.ndim == 0:
            raise ValueError(f"{name}: a 0-d tensor has no axis to split; reshape it first")
        a = one_axis(axis, self.ndim, name)
        n = self.shape[a]
        if isinstance(sections, (int, np.integer)):
            if sections <= 0:
                raise ValueError(f"{name}: the number of sections must be positive, got {sections}")
            if equal and n % sections:
                raise ValueError(
                    f"{name}: {sections} sections do not divide axis {a} of shape {self.shape} "
                    f"({n} elements) equally; use array_split, or give the cut points"
                )
            size, extra = divmod(n, int(sections))
            sizes = [size + 1] * extra + [size] * (int(sections) - extra)
            cuts = np.cumsum([0] + sizes).tolist()
        else:
            cuts = [0] + [int(c) for c in sections] + [n]
        return [
            self[_along(a, self.ndim, slice(lo, hi))]  # as numpy: negative cuts count from the end
            for lo, hi in zip(cuts[:-1], cuts[1:])
        ]

    # --- triangles and diagonals ---

    def tril(self, k: int = 0):
        """Zeros above the k-th diagonal of the last two axes (a 1-D tensor is first broadcast to
        a square, as np.tril); numpy's k=, PyTorch's diagonal= alias."""
        return self._triangle(k, "tril", np.tril)

    def triu(self, k: int = 0):
        """Zeros below the k-th diagonal of the last two axes, as np.triu."""
        return self._triangle(k, "triu", np.triu)

    def _triangle(self, k, name, keep):
        if self.ndim == 0:
            raise ValueError(f"{name}: needs at least 1 dimension, got a 0-d tensor")
        x = self.expand(self.shape * 2) if self.ndim == 1 else self
        mask = keep(np.ones(x.shape[-2:], bool), int(k))
        zero = np.zeros((), x.dtype)
        return self._apply(ops.Where, x, self._lift(zero), cond=np.broadcast_to(mask, x.shape))

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1, *, dim1=None, dim2=None):
        """The diagonal of the (axis1, axis2) planes at offset, as a last axis: np.diagonal
        (PyTorch's dim1=, dim2= accepted)."""
        axis1, axis2 = axis_arg(axis1, dim1, 0), axis_arg(axis2, dim2, 1)
        if self.ndim < 2:
            raise ValueError(
                f"diagonal: needs at least 2 dimensions, got shape {self.shape}; use diag to "
                f"build a matrix from a vector"
            )
        a, b = one_axis(axis1, self.ndim, "diagonal"), one_axis(axis2, self.ndim, "diagonal")
        if a == b:
            raise ValueError(
                f"diagonal: axis1 and axis2 are both axis {a}; give two different axes"
            )
        rest = [i for i in range(self.ndim) if i not in (a, b)]
        x = self.transpose(rest + [a, b])
        n, m = x.shape[-2:]
        offset = int(offset)
        rows = np.arange(max(0, -offset), max(0, min(n, m - offset)))
        return x[(Ellipsis, rows, rows + offset)]

    def diag(self, k: int = 0):
        """A 1-D tensor as a square matrix with it on the k-th diagonal, or a 2-D tensor's k-th
        diagonal, as np.diag."""
        k = int(k)
        if self.ndim == 2:
            return self.diagonal(k)
        if self.ndim != 1:
            raise ValueError(
                f"diag: needs a 1-D tensor (to build a matrix) or a 2-D one (to take its "
                f"diagonal), got shape {self.shape}; use diagonal() for more dimensions"
            )
        n = self.shape[0] + abs(k)
        rows = np.arange(self.shape[0]) + max(0, -k)
        return self._apply(ops.Scatter, self, index=(rows, rows + k), shape=(n, n))

    # --- gathering along an axis ---

    def take_along_axis(self, indices, axis=-1):
        """out[..., i, ...] = x[..., indices[..., i, ...], ...] along axis, the other axes
        broadcast between x and indices (axis None: x flattened, indices 1-D), as
        np.take_along_axis. The gradient adds up where an index repeats."""
        indices = _int_array(indices, "take_along_axis")
        if axis is None:
            if indices.ndim != 1:
                raise ValueError(
                    f"take_along_axis: with axis=None, indices must be 1-D, got shape "
                    f"{indices.shape}"
                )
            return self.reshape(-1)[indices]
        if indices.ndim != self.ndim:
            raise ValueError(
                f"take_along_axis: indices of shape {indices.shape} need as many dimensions as "
                f"the tensor of shape {self.shape}"
            )
        a = one_axis(axis, self.ndim, "take_along_axis")
        try:
            np.broadcast_shapes(
                self.shape[:a] + (1,) + self.shape[a + 1 :],
                indices.shape[:a] + (1,) + indices.shape[a + 1 :],
            )
        except ValueError:
            raise ValueError(
                f"take_along_axis: indices of shape {indices.shape} do not broadcast with the "
                f"tensor of shape {self.shape} outside axis {a}"
            ) from None
        return self._gather(indices, a, self.shape, "take_along_axis")

    def gather(self, dim: int, index):
        """PyTorch's gather: out[..., i, ...] = x[..., index[..., i, ...], ...] along dim, index no
        larger than x along the other dimensions (no broadcasting)."""
        index = _int_array(index, "gather")
        a = one_axis(dim, self.ndim, "gather")
        if index.ndim != self.ndim or any(
            i > s for d, (i, s) in enumerate(zip(index.shape, self.shape)) if d != a
        ):
            raise ValueError(
                f"gather: index of shape {index.shape} must have the {self.ndim} dimensions of "
                f"the tensor of shape {self.shape}, none larger except along dim {a}"
            )
        return self._gather(index, a, index.shape, "gather")

    def _gather(self, indices, a, sizes, name):
        """x[indices] along axis a, with aranges of sizes (which broadcast with indices) on the
        other axes."""
        n = self.shape[a]
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(
                f"{name}: an index is out of range for axis {a} of size {n} (tensor shape "
                f"{self.shape}); indices must lie in [{-n}, {n - 1}]"
            )
        ndim = self.ndim
        index = tuple(
            indices if d == a else np.arange(sizes[d]).reshape((-1,) + (1,) * (ndim - d - 1))
            for d in range(ndim)
        )
        return self[index]

    # --- padding ---

    def pad(self, pad_width, mode: str = "constant", constant_values=0, *, value=None):
        """np.pad: pad_width an int, (n,), (before, after) or one pair per axis; mode "constant"
        (constant_values=, or PyTorch's value=), "reflect", "symmetric", "edge" or "wrap". The
        padding's gradient goes back to the elements it copies (reflect, edge, ...)."""
        try:
            widths = np.broadcast_to(np.asarray(pad_width), (self.ndim, 2))
        except ValueError:
            raise ValueError(
                f"pad: pad_width {pad_width!r} does not fit a {self.ndim}-d tensor of shape "
                f"{self.shape}; give an int, (before, after) or one pair per axis"
            ) from None
        if widths.dtype.kind not in "iu" or (widths < 0).any():
            raise ValueError(f"pad: pad_width {pad_width!r} must be non-negative ints")
        widths = [(int(b), int(a)) for b, a in widths]
        if mode == "constant":
            cv = constant_values if value is None else value
            shape = tuple(b + n + a for (b, a), n in zip(widths, self.shape))
            inner = tuple(slice(b, b + n) for (b, _), n in zip(widths, self.shape))
            out = self._apply(ops.Scatter, self, index=inner, shape=shape)
            border = np.pad(np.zeros(self.shape, self.dtype), widths, constant_values=cv)
            return out + border if border.any() else out
        if mode not in ("reflect", "symmetric", "edge", "wrap"):
            raise ValueError(
                f"pad: mode {mode!r} is not supported; use 'constant', 'reflect', 'symmetric', "
                f"'edge' or 'wrap'"
            )
        out = self
        for a, (b, e) in enumerate(widths):
            if b or e:
                try:
                    where_from = np.pad(np.arange(self.shape[a]), (b, e), mode=mode)
                except ValueError as err:
                    raise ValueError(f"pad: axis {a} of shape {self.shape}: {err}") from None
                out = out[_along(a, self.ndim, where_from)]
        return out if out is not self else self.reshape(self.shape)


# --- module functions' helpers (tensor.py's atleast_*, vstack, ... call these) ---


def atleast(t, ndim: int):
    """t with ndim dimensions at least, placed as np.atleast_1d/2d/3d place them."""
    if t.ndim >= ndim:
        return t
    if ndim == 1:
        return t.reshape(1)
    if ndim == 2:
        return t.reshape((1,) + t.shape if t.ndim == 1 else (1, 1))
    return t.reshape({0: (1, 1, 1), 1: (1,) + t.shape + (1,), 2: t.shape + (1,)}[t.ndim])
