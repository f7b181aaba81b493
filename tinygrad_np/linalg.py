"""Products of tensors composed from transpose, reshape, matmul, sum and diagonal: a mixin of Tensor
(dot inner outer kron tensordot) and einsum, which tensor.py's module function calls with Tensors.

numpy's semantics (np.dot, np.tensordot, np.einsum, ...); every result is recorded from existing
differentiable operations, so gradients of any order come free. No Tensor import.
"""

from __future__ import annotations

import math
import string

import numpy as np

from ._shapes import axis_list, one_axis


class LinearAlgebra:
    __slots__ = ()

    def _operand(self, other, name: str):
        """other as a Tensor of self's dtype (constants are cast; two float dtypes must agree)."""
        other = self._lift(other, self.dtype if self.dtype.kind == "f" else None)
        if other.dtype != self.dtype and self.dtype.kind == "f" and other.dtype.kind == "f":
            raise TypeError(
                f"{name}: dtypes {self.dtype} and {other.dtype} differ; cast one with .astype()"
            )
        return other

    def tensordot(self, other, axes=2):
        """Sum of products over axes: an int N (the last N axes of self with the first N of
        other) or a pair (self's axes, other's axes), as np.tensordot; free axes of self, then
        of other."""
        other = self._operand(other, "tensordot")
        if isinstance(axes, (int, np.integer)):
            n = int(axes)
            if n < 0 or n > min(self.ndim, other.ndim):
                raise ValueError(
                    f"tensordot: axes={n} needs 0 <= axes <= {min(self.ndim, other.ndim)} for "
                    f"shapes {self.shape} and {other.shape}"
                )
            xa, xb = list(range(self.ndim - n, self.ndim)), list(range(n))
        else:
            try:
                xa, xb = axes
            except (TypeError, ValueError):
                raise TypeError(
                    f"tensordot: axes must be an int or a pair (self's axes, other's axes), "
                    f"got {axes!r}"
                ) from None
            xa, xb = axis_list(xa), axis_list(xb)
            if len(xa) != len(xb):
                raise ValueError(
                    f"tensordot: {len(xa)} axes of the first operand but {len(xb)} of the second; "
                    f"give as many of each"
                )
            xa = [one_axis(a, self.ndim, "tensordot") for a in xa]
            xb = [one_axis(b, other.ndim, "tensordot") for b in xb]
        for a, b in zip(xa, xb):
            if self.shape[a] != other.shape[b]:
                raise ValueError(
                    f"tensordot: axis {a} of {self.shape} has size {self.shape[a]} but axis {b} "
                    f"of {other.shape} has size {other.shape[b]}; summed axes must match"
                )
        fa = [i for i in range(self.ndim) if i not in xa]
        fb = [i for i in range(other.ndim) if i not in xb]
        k = math.prod(self.shape[a] for a in xa)
        left = self.transpose(fa + xa).reshape(-1, k)
        right = other.transpose(xb + fb).reshape(k, -1)
        shape = tuple(self.shape[i] for i in fa) + tuple(other.shape[i] for i in fb)
        return (left @ right).reshape(shape)

    def dot(self, other):
        """np.dot: a product with a 0-d operand, the inner product of vectors, matmul of matrices,
        and for N-d operands the sum over self's last axis and other's second-to-last."""
        other = self._operand(other, "dot")
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        b_axis = other.ndim - 2 if other.ndim >= 2 else 0
        self._check_inner("dot", other, b_axis)
        return self.tensordot(other, ([self.ndim - 1], [b_axis]))

    def inner(self, other):
        """np.inner: the sum of products over the last axes (a product with a 0-d operand)."""
        other = self._operand(other, "inner")
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        self._check_inner("inner", other, other.ndim - 1)
        return self.tensordot(other, ([self.ndim - 1], [other.ndim - 1]))

    def _check_inner(self, name, other, b_axis):
        if self.shape[-1] != other.shape[b_axis]:
            raise ValueError(
                f"{name}: shapes {self.shape} and {other.shape} are not aligned: the last axis of "
                f"the first ({self.shape[-1]}) must match axis {b_axis} of the second "
                f"({other.shape[b_axis]})"
            )

    def outer(self, other):
        """np.outer: out[i, j] = x[i] * y[j] of the flattened operands (torch.outer, ger)."""
        other = self._operand(other, "outer")
        return self.reshape(-1, 1) * other.reshape(1, -1)

    def kron(self, other):
        """np.kron: the Kronecker product, blocks self[i, j] * other (the shorter shape padded with
        leading 1s)."""
        other = self._operand(other, "kron")
        n = max(self.ndim, other.ndim)
        sa = (1,) * (n - self.ndim) + self.shape
        sb = (1,) * (n - other.ndim) + other.shape
        a = self.reshape(tuple(x for s in sa for x in (s, 1)))
        b = other.reshape(tuple(x for s in sb for x in (1, s)))
        return (a * b).reshape(tuple(p * q for p, q in zip(sa, sb)))


# --- einsum ---


def _labels(spec: str, ndim: int, ellipsis: str, i: str) -> list[str]:
    """One operand's subscripts as a list of letters, '...' expanded to the last ndim-named ones of
    ellipsis (letters that the user's subscripts do not use)."""
    if spec.count("...") > 1 or "." in spec.replace("...", ""):
        raise ValueError(f"einsum: the subscripts {spec!r} of {i} have a stray or repeated '.'")
    named = spec.replace("...", "")
    bad = [c for c in named if c not in string.ascii_letters]
    if bad:
        raise ValueError(f"einsum: subscripts may be letters and '...' only, got {bad[0]!r}")
    if "..." in spec:
        k = ndim - len(named)
        if k < 0:
            raise ValueError(
                f"einsum: {i} has {ndim} dimensions, fewer than the {len(named)} letters "
                f"of {spec!r}"
            )
        lead, tail = spec.split("...")
        return list(lead) + list(ellipsis[len(ellipsis) - k :] if k else "") + list(tail)
    if len(named) != ndim:
        raise ValueError(
            f"einsum: {i} has {ndim} dimensions but its subscripts {spec!r} name "
            f"{len(named)}; give one letter per dimension (or '...')"
        )
    return list(named)


def _squash(x, labels: list[str], keep: set[str]):
    """Take the diagonal of repeated letters, and sum the letters not in keep."""
    labels = list(labels)
    while len(set(labels)) != len(labels):
        c = next(c for c in labels if labels.count(c) > 1)
        p = labels.index(c)
        q = labels.index(c, p + 1)
        if x.shape[p] != x.shape[q]:
            raise ValueError(
                f"einsum: the repeated subscript {c!r} labels dimensions of sizes {x.shape[p]} "
                f"and {x.shape[q]}; a diagonal needs equal sizes"
            )
        x = x.diagonal(0, p, q)  # the diagonal becomes the last axis
        labels = [ch for i, ch in enumerate(labels) if i not in (p, q)] + [c]
    drop = tuple(i for i, ch in enumerate(labels) if ch not in keep)
    if drop:
        x = x.sum(drop)
        labels = [ch for i, ch in enumerate(labels) if i not in drop]
    return x, labels


def _implicit_output(spec: str) -> str:
    """numpy's implicit output: '...' if any operand has it, then the letters that appear exactly
    once in all the subscripts, in alphabetical (ASCII: capitals first) order."""
    letters = [c for c in spec if c in string.ascii_letters]
    once = sorted(c for c in set(letters) if letters.count(c) == 1)
    return ("..." if "..." in spec else "") + "".join(once)


def einsum(subscripts: str, *operands):
    """np.einsum: explicit ('ij,jk->ik') or implicit ('ij,jk': the letters that appear once, sorted)
    subscripts of any number of operands, contracted pairwise from the left; '...' broadcasts."""
    if not isinstance(subscripts, str):
        raise TypeError(
            f"einsum: the first argument must be the subscripts string, got "
            f"{type(subscripts).__name__}"
        )
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1:
        raise ValueError(f"einsum: {subscripts!r} has more than one '->'")
    ins, out = spec.split("->") if "->" in spec else (spec, _implicit_output(spec))
    ins = ins.split(",")
    if len(ins) != len(operands):
        raise ValueError(
            f"einsum: {subscripts!r} describes {len(ins)} operands but {len(operands)} were given"
        )
    ellipsis = "".join(ch for ch in string.ascii_letters if ch not in spec)
    labels = [
        _labels(s, x.ndim, ellipsis, f"operand {i}") for i, (s, x) in enumerate(zip(ins, operands))
    ]
    k = max(len(lab) - len(s.replace("...", "")) for lab, s in zip(labels, ins))  # ... dims
    out_ndim = len(out.replace("...", "")) + (k if "..." in out else 0)
    out_labels = _labels(out, out_ndim, ellipsis, "the output")
    if len(set(out_labels)) != len(out_labels):
        raise ValueError(f"einsum: the output {out!r} repeats a subscript")
    missing = [ch for ch in out_labels if all(ch not in lab for lab in labels)]
    if missing:
        raise ValueError(f"einsum: output subscript {missing[0]!r} appears in no operand")
    sizes = {}
    for x, lab in zip(operands, labels):
        for ch, n in zip(lab, x.shape):
            m = sizes.get(ch, 1)
            if n != m and 1 not in (n, m):
                raise ValueError(
                    f"einsum: subscript {ch!r} labels dimensions of sizes {m} and {n} in "
                    f"{subscripts!r} (shapes {', '.join(str(o.shape) for o in operands)})"
                )
            sizes[ch] = n if m == 1 else m
    x, lab = _squash(operands[0], labels[0], set(out_labels).union(*labels[1:]))
    for j in range(1, len(operands)):  # left to right; keep what the output or a later operand uses
        x, lab = _contract(x, lab, operands[j], labels[j], set(out_labels).union(*labels[j + 1 :]))
    return x.transpose([lab.index(c) for c in out_labels]) if lab else x


def _contract(a, la: list[str], b, lb: list[str], keep: set[str]):
    """The product of a and b summed over their shared letters that keep lacks, as one batched
    matmul; the result's letters: the shared ones kept, then a's own, then b's own."""
    a, la = _squash(a, la, keep | set(lb))
    b, lb = _squash(b, lb, keep | set(la))
    # stretch size-1 dimensions that the other operand has larger (numpy broadcasts them)
    size = {c: max(a.shape[la.index(c)], b.shape[lb.index(c)]) for c in la if c in lb}
    a = a.expand(tuple(size.get(c, n) for c, n in zip(la, a.shape)))
    b = b.expand(tuple(size.get(c, n) for c, n in zip(lb, b.shape)))
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    fa = [c for c in la if c not in lb]
    fb = [c for c in lb if c not in la]
    bshape = tuple(size[c] for c in batch)
    sa = tuple(a.shape[la.index(c)] for c in fa)
    sb = tuple(b.shape[lb.index(c)] for c in fb)
    ka = math.prod(size[c] for c in summed)
    left = a.transpose([la.index(c) for c in batch + fa + summed])
    left = left.reshape(bshape + (math.prod(sa), ka))
    right = b.transpose([lb.index(c) for c in batch + summed + fb])
    right = right.reshape(bshape + (ka, math.prod(sb)))
    return (left @ right).reshape(bshape + sa + sb), batch + fa + fb
