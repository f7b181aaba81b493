"""The table of op cases shared by the gradient, PyTorch and dtype tests.

Each case: a function of Tensors (plus keyword arguments), a strategy drawing (arrays, kwargs) with the
op's domain in it, and the same function written for PyTorch (None where PyTorch has no equivalent).
Primitive cases are keyed by the primitive's class name, so a primitive without a case fails a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_np as tg
from tinygrad_np import ops, windows
from tinygrad_np.nn import functional as F

try:
    import torch
except ImportError:  # the torch columns are used only by test_ops_torch.py, which skips without it
    torch = None
from tinygrad_np.testing import (
    array_and_axis,
    arrays,
    axes,
    broadcastable_arrays,
    distinct_arrays,
    floats64,
    broadcastable_pair,
    matmul_pair,
    shapes,
)


@dataclass(frozen=True)
class Case:
    fn: Callable
    inputs: st.SearchStrategy  # draws (tuple of float64 arrays, dict of keyword arguments)
    torch_fn: Callable | None = None
    # inputs for the second- and third-order checks where a derivative of the op (not the op)
    # has a kink the first-order inputs may land on (softsign'' jumps at 0); None: the same inputs
    smooth: st.SearchStrategy | None = None

    @property
    def higher(self) -> st.SearchStrategy:
        return self.inputs if self.smooth is None else self.smooth


def plain(strategy):
    """A strategy of tuples of arrays -> (arrays, {})."""
    return strategy.map(lambda xs: (xs, {}))


def one(strategy):
    """A strategy of single arrays -> ((x,), {})."""
    return strategy.map(lambda x: ((x,), {}))


def with_axis(distinct=False, lo=-3.0, hi=3.0, keepdims=True, allow_tuple=True, min_dims=0):
    @st.composite
    def draw_case(draw):
        x, axis = draw(
            array_and_axis(lo, hi, distinct=distinct, allow_tuple=allow_tuple, min_dims=min_dims)
        )
        kwargs = {"axis": axis}
        if keepdims:
            kwargs["keepdims"] = draw(st.booleans())
        return (x,), kwargs

    return draw_case()


def dims(axis, ndim):
    """numpy axis -> torch dim (None reduces everything: every axis, explicitly)."""
    return tuple(range(ndim)) if axis is None else axis


@st.composite
def reshape_case(draw):
    x = draw(arrays())
    sizes = [n for n in range(1, x.size + 1) if x.size % n == 0]
    first = draw(st.sampled_from(sizes))
    shape = draw(
        st.sampled_from([(first, x.size // first), (x.size,), (-1, first), (first, 1, -1)])
    )
    return (x,), {"shape": shape}


@st.composite
def transpose_case(draw):
    x = draw(arrays())
    return (x,), {"axes": tuple(draw(st.permutations(range(x.ndim))))}


@st.composite
def expand_case(draw):
    x = draw(arrays(shapes(max_dims=2)))
    stretched = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in x.shape)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    return (x,), {"shape": lead + stretched}


@st.composite
def index_case(draw):
    """Basic (ints, slices, None, ...) and advanced (integer arrays, repeated entries) indexing."""
    x = draw(arrays(shapes(min_dims=1)))
    kind = draw(st.sampled_from(["int", "slice", "array", "pair", "ellipsis"]))
    n = x.shape[0]
    if kind == "int":
        index = draw(st.integers(-n, n - 1))
    elif kind == "slice":
        index = slice(draw(st.integers(0, n - 1)), None, draw(st.sampled_from([1, 2, -1])))
    elif kind == "array":  # repeated indices must add up in the gradient
        index = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6)))
    elif kind == "pair" and x.ndim >= 2:  # the logp[np.arange(n), labels] pattern
        rows = np.array(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5)))
        cols = np.array([draw(st.integers(0, x.shape[1] - 1)) for _ in rows])
        index = (rows, cols)
    else:
        index = (Ellipsis, 0) if x.ndim >= 2 else (None, slice(None))
    return (x,), {"index": index}


@st.composite
def scatter_case(draw):
    """A gradient g of x[index]'s shape, scattered back into x's shape (Index's vjp)."""
    (x,), kwargs = draw(index_case())
    g = draw(arrays(np.shape(x[kwargs["index"]])))
    return (g,), {"index": kwargs["index"], "shape": x.shape}


def _torch_index(index):
    def part(i):
        return torch.from_numpy(i) if isinstance(i, np.ndarray) else i

    if isinstance(index, slice) and index.step == -1:
        return None  # torch has no negative steps
    return tuple(map(part, index)) if isinstance(index, tuple) else part(index)


@st.composite
def concat_case(draw):
    base = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(base), len(base) - 1))
    xs = []
    for _ in range(draw(st.integers(1, 3))):
        shape = list(base)
        shape[axis] = draw(st.integers(1, 3))
        xs.append(draw(arrays(tuple(shape))))
    return tuple(xs), {"axis": axis}


@st.composite
def stack_case(draw):
    shape = draw(shapes())
    xs = tuple(draw(arrays(shape)) for _ in range(draw(st.integers(1, 3))))
    return xs, {"axis": draw(st.integers(-len(shape) - 1, len(shape)))}


@st.composite
def where_case(draw):
    x, y, c = draw(broadcastable_arrays(3))
    return (x, y), {"cond": c > 0}


@st.composite
def clip_case(draw):
    lo = draw(st.floats(-2, 0))
    hi = lo + draw(st.floats(0.5, 2))
    x = draw(arrays(away_from=(lo, hi)))
    return (x,), {"low": lo, "high": hi}


@st.composite
def squeeze_case(draw):
    x = draw(arrays())
    ones = [i for i, n in enumerate(x.shape) if n == 1]
    axis = draw(st.sampled_from([None] + ones))
    return (x,), {"axis": axis}


@st.composite
def unsqueeze_case(draw):
    x = draw(arrays())
    return (x,), {"axis": draw(st.integers(-x.ndim - 1, x.ndim))}


@st.composite
def flatten_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    lo = draw(st.integers(0, x.ndim - 1))
    return (x,), {"start_axis": lo, "end_axis": draw(st.integers(lo, x.ndim - 1))}


@st.composite
def logits_labels(draw, lo=-10.0, hi=10.0):
    # 32+ rows: cross-entropy's row max then takes its transposed-copy path (ops._row_max)
    n, c = draw(st.one_of(st.integers(1, 5), st.integers(32, 34))), draw(st.integers(1, 5))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return (draw(arrays((n, c), lo, hi)),), {"labels": labels}


@st.composite
def input_target(
    draw, lo=-3.0, hi=3.0, target=None, kinks=(), reductions=("mean", "sum", "none"), min_ndim=0
):
    """(input,), {"target": an array of its shape, "reduction": ...}, |input - target| kept 1e-3
    away from the loss's kinks. target: a strategy of a shape -> target arrays (default: arrays)."""
    shape = draw(shapes().filter(lambda s: 0 not in s and len(s) >= min_ndim))
    x = draw(arrays(shape, lo, hi))
    t = draw(target(shape) if target is not None else arrays(shape, lo, hi))
    d = np.abs(x - t)
    for k in kinks:
        x = np.where(np.abs(d - k) < 1e-3, x + 0.01, x)
    return (x,), {"target": t, "reduction": draw(st.sampled_from(reductions))}


def zeros_and_ones(shape):
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0]))


def _tt(kwargs):
    """kwargs with the target as a torch tensor."""
    return {**kwargs, "target": torch.from_numpy(kwargs["target"])}


@st.composite
def linear_case(draw):
    """x (k,), (n, k) or (a, n, k); w (k, m); b (m,): what Tensor fuses into one Linear node."""
    k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    lead = draw(st.sampled_from([(), (draw(st.integers(1, 4)),), (2, draw(st.integers(1, 3)))]))
    return (draw(arrays(lead + (k,))), draw(arrays((k, m))), draw(arrays((m,)))), {}


# --- nn: layer_norm, embedding, cross_entropy's options ---


@st.composite
def layer_norm_case(draw):
    """x (lead..., normalized...), weight and bias of the normalized shape; x's values distinct
    (1/4 apart), so every normalised group has a variance well above 0 (1/sqrt(var + eps) smooth)."""
    normalized = draw(st.sampled_from([(2,), (3,), (2, 2)]))
    lead = draw(st.sampled_from([(), (2,), (2, 1)]))
    x = draw(distinct_arrays(lead + normalized, step=0.25))
    w, b = draw(arrays(normalized)), draw(arrays(normalized))
    return (x, w, b), {"normalized_shape": normalized, "eps": draw(st.sampled_from([1e-5, 0.1]))}


@st.composite
def embedding_case(draw):
    """weight (num, dim) and integer ids of any shape, repeats included. No padding_idx here: its
    row's gradient is zero by convention (PyTorch's), not the derivative, so central differences
    disagree; tests/test_layers.py checks it against torch."""
    num, dim = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    ids = np.array(draw(hnp.arrays(np.int64, shapes(max_dims=2), elements=st.integers(0, num - 1))))
    return (draw(arrays((num, dim))),), {"ids": ids}


@st.composite
def cross_entropy_options(draw):
    """logits (n, c), labels with some equal to ignore_index (never all, so the mean is defined),
    class weights or None, a reduction and a label smoothing."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ignore = draw(st.sampled_from([-100, draw(st.integers(0, c - 1))]))
    labels = np.array(draw(st.lists(st.integers(0, c - 1) | st.just(ignore), min_size=n, max_size=n)))
    if np.all(labels == ignore):
        labels[0] = (ignore + 1) % c if ignore >= 0 else 0
    assume(not np.all(labels == ignore))  # c = 1 with ignore_index 0: no row can be kept
    weight = draw(st.none() | arrays((c,), 0.2, 2.0))
    return (draw(arrays((n, c), -5.0, 5.0)),), {
        "target": labels,
        "weight": weight,
        "ignore_index": int(ignore),
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.35])),
    }


def _t_cross_entropy(a, target, weight, **k):
    weight = None if weight is None else torch.from_numpy(weight)
    return torch.nn.functional.cross_entropy(a, torch.from_numpy(target), weight, **k)


POSITIVE = arrays(lo=0.1, hi=10.0)
NONZERO = arrays(away_from=(0.0,), margin=0.3)
UNIT = arrays(lo=-0.9, hi=0.9)  # arcsin, arccos, arctanh: inside (-1, 1), where they are smooth
# rounding: values a step from every integer and half-integer, where floor/round/... jump
OFF_GRID = arrays(away_from=tuple(np.arange(-3.0, 3.25, 0.5)), margin=0.01)
# arctan2 and hypot: no point within 0.3 of the origin, where they have no derivative
AWAY_FROM_ORIGIN = broadcastable_pair().filter(lambda p: np.all(np.hypot(p[0], p[1]) > 0.3))
# arctan2(y, x) also jumps by 2 pi across its branch cut, y = 0 with x < 0
OFF_BRANCH_CUT = AWAY_FROM_ORIGIN.filter(lambda p: np.all((np.abs(p[0]) > 1e-3) | (p[1] > 0)))


def _off_grid(q, margin=1e-3) -> bool:
    """Every element of q at least margin from an integer (where x mod y and fmod jump)."""
    return bool(np.all(np.abs(q - np.rint(q)) > margin))


def _off_multiples(step):
    """(x, y) with |y| >= 0.3 and x / y off the integers: x - y * step(x / y) is smooth there."""
    return broadcastable_arrays(2).filter(
        lambda p: np.all(np.abs(p[1]) >= 0.3) and _off_grid(p[0] / p[1])
    )


def _t_logsumexp(a, axis, keepdims):
    return a.logsumexp(dim=dims(axis, a.ndim), keepdim=keepdims)


def _t_flatten(a, start_axis, end_axis):
    return a.flatten(start_axis, end_axis)


def _t_squeeze(a, axis):
    return a.squeeze() if axis is None else a.squeeze(axis)


def _t_whole(a, axis, name):
    """torch's softmax needs an int dim; ours takes axis=None for all elements, as scipy does."""
    if axis is None:
        return getattr(a.reshape(-1), name)(0).reshape(a.shape)
    return getattr(a, name)(axis)


def _t_clip(a, low, high):
    return a.clamp(low, high)


# --- movement (tinygrad_np/movement.py) ---


@st.composite
def flip_case(draw):
    x = draw(arrays())
    return (x,), {"axis": draw(axes(x.ndim))}


def _t_flip(a, axis):
    return a.flip(dims(axis, a.ndim) if not isinstance(axis, int) else (axis,))


@st.composite
def roll_case(draw):
    x = draw(arrays())
    if x.ndim == 0 or draw(st.booleans()):
        return (x,), {"shift": draw(st.integers(-5, 5)), "axis": None}
    axis = draw(st.lists(st.integers(-x.ndim, x.ndim - 1), min_size=1, max_size=3))
    shift = [draw(st.integers(-5, 5)) for _ in axis]
    return (x,), {"shift": tuple(shift), "axis": tuple(axis)}


@st.composite
def two_axes_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    a = st.integers(-x.ndim, x.ndim - 1)
    return (x,), {"axis1": draw(a), "axis2": draw(a)}


@st.composite
def moveaxis_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    n = draw(st.integers(1, x.ndim))
    src = draw(st.permutations(range(x.ndim)))[:n]
    dst = draw(st.permutations(range(-x.ndim, 0)))[:n]
    return (x,), {"source": tuple(src), "destination": tuple(dst)}


@st.composite
def tile_case(draw):
    x = draw(arrays(shapes(max_dims=2)))
    reps = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=3)))
    return (x,), {"reps": reps if len(reps) != 1 or draw(st.booleans()) else reps[0]}


@st.composite
def repeat_case(draw):
    x = draw(arrays())
    axis = draw(st.none() | st.integers(-x.ndim, x.ndim - 1)) if x.ndim else None
    n = x.size if axis is None else x.shape[axis]
    if draw(st.booleans()):
        repeats = draw(st.integers(0, 3))
    else:
        repeats = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.int64)
    return (x,), {"repeats": repeats, "axis": axis}


def _t_repeat(a, repeats, axis):
    r = torch.from_numpy(repeats) if isinstance(repeats, np.ndarray) else repeats
    return torch.repeat_interleave(a, r, dim=axis)


@st.composite
def split_case(draw, equal):
    x = draw(arrays(shapes(min_dims=1)))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    if draw(st.booleans()):
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        sections = draw(st.sampled_from(divisors) if equal else st.integers(1, n + 2))
    else:
        sections = tuple(sorted(draw(st.lists(st.integers(0, n), max_size=3))))
    return (x,), {"sections": sections, "axis": axis}


def _rejoined(parts, axis):
    """The parts joined again, part i scaled by i + 1: each part's gradient is told apart."""
    return tg.concatenate([p * float(i + 1) for i, p in enumerate(parts)], axis)


def _t_split(a, sections, axis):
    parts = torch.tensor_split(a, list(sections) if isinstance(sections, tuple) else sections, axis)
    return torch.cat([p * float(i + 1) for i, p in enumerate(parts)], axis)


@st.composite
def chunk_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    return (x,), {"chunks": draw(st.integers(1, 5)), "dim": draw(st.integers(-x.ndim, x.ndim - 1))}


@st.composite
def triangle_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    return (x,), {"k": draw(st.integers(-3, 3))}


def _t_triangle(name):
    def run(a, k):
        return getattr(torch, name)(a, k) if a.ndim >= 2 else None

    return run


@st.composite
def diagonal_case(draw):
    x = draw(arrays(shapes(min_dims=2)))
    a = st.integers(-x.ndim, x.ndim - 1)
    axis1, axis2 = draw(st.tuples(a, a).filter(lambda p: p[0] % x.ndim != p[1] % x.ndim))
    return (x,), {"offset": draw(st.integers(-3, 3)), "axis1": axis1, "axis2": axis2}


@st.composite
def diag_case(draw):
    x = draw(arrays(shapes(min_dims=1, max_dims=2)))
    return (x,), {"k": draw(st.integers(-3, 3))}


@st.composite
def take_along_axis_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    shape = [draw(st.sampled_from([1, n])) for n in x.shape]  # broadcast against x
    shape[axis] = draw(st.integers(1, 5))  # repeats: the gradient adds up
    n = x.shape[axis]
    idx = draw(hnp.arrays(np.int64, tuple(shape), elements=st.integers(-n, n - 1)))
    return (x,), {"indices": idx, "axis": axis}


@st.composite
def gather_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    shape = [draw(st.integers(1, n)) for n in x.shape]  # no larger than x
    shape[dim] = draw(st.integers(1, 5))
    idx = draw(hnp.arrays(np.int64, tuple(shape), elements=st.integers(0, x.shape[dim] - 1)))
    return (x,), {"dim": dim, "index": idx}


@st.composite
def pad_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    mode = draw(st.sampled_from(["constant", "reflect", "symmetric", "edge", "wrap"]))
    # reflect needs more than one element to reflect about (numpy repeats a single one)
    width = st.integers(0, 3)
    form = draw(st.sampled_from(["int", "pair", "per_axis"]))
    if form == "int":
        pad_width = draw(width)
    elif form == "pair":
        pad_width = (draw(width), draw(width))
    else:
        pad_width = tuple((draw(width), draw(width)) for _ in x.shape)
    kwargs = {"pad_width": pad_width, "mode": mode}
    if mode == "constant":
        kwargs["constant_values"] = draw(st.sampled_from([0.0, 1.5]))
    return (x,), kwargs


def _t_pad(a, pad_width, mode, constant_values=0.0):
    if mode != "constant":
        return None  # torch pads only the last 1-3 dimensions in the other modes
    widths = np.broadcast_to(np.asarray(pad_width), (a.ndim, 2))
    flat = [int(w) for pair in widths[::-1] for w in pair]  # torch: the last dimension first
    return torch.nn.functional.pad(a, flat, value=constant_values)


@st.composite
def joined_case(draw, min_dims=0):
    """Two or three arrays of one shape (0-d to 3-d), for vstack, hstack, dstack, column_stack."""
    shape = draw(shapes(min_dims=min_dims))
    return tuple(draw(arrays(shape)) for _ in range(draw(st.integers(1, 3)))), {}


# --- reductions and scans (tinygrad_np/reductions.py) ---

# products: exact zeros among the values, where a gradient that divided by x would fail
WITH_ZEROS = hnp.arrays(
    np.float64, shapes(), elements=st.one_of(st.just(0.0), floats64(-1.5, 1.5))
)


@st.composite
def scan_case(draw, values=None):
    x = draw(values if values is not None else arrays())
    return (x,), {"axis": draw(st.none() | st.integers(-x.ndim, x.ndim - 1)) if x.ndim else None}


def _t_scan(name):
    def run(a, axis):
        return getattr(a.reshape(-1) if axis is None else a, name)(0 if axis is None else axis)

    return run


@st.composite
def prod_case(draw):
    x = draw(WITH_ZEROS)
    return (x,), {"axis": draw(axes(x.ndim)), "keepdims": draw(st.booleans())}


def _t_prod(a, axis, keepdims):
    if axis is None:
        out = a.prod()
        return out.reshape((1,) * a.ndim) if keepdims else out
    for d in sorted({d % a.ndim for d in ((axis,) if isinstance(axis, int) else axis)})[::-1]:
        a = a.prod(dim=d, keepdim=keepdims)  # the last axis first: the others keep their numbers
    return a


@st.composite
def diff_case(draw):
    x = draw(arrays(shapes(min_dims=1)))
    return (x,), {"n": draw(st.integers(0, 3)), "axis": draw(st.integers(-x.ndim, x.ndim - 1))}


@st.composite
def sort_case(draw):
    x = draw(distinct_arrays(shapes(min_dims=1)))
    axis = draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    return (x,), {"axis": axis, "descending": draw(st.booleans())}


def _t_sort(a, axis, descending):
    x = a.reshape(-1) if axis is None else a
    return torch.sort(x, dim=0 if axis is None else axis, descending=descending).values


def _distinct_sums(x, inner, outer) -> bool:
    """The sums of |x| over inner differ by 1e-3 along outer: no tie for the max/min norm."""
    gaps = np.diff(np.sort(np.abs(x).sum(inner, keepdims=True), axis=outer), axis=outer)
    return gaps.size == 0 or bool(gaps.min() > 1e-3)


@st.composite
def norm_case(draw):
    """Magnitudes distinct and at least 1/8 (no kink of |x|, no tie for max/min), random signs."""
    shape = draw(shapes(min_dims=1))
    size = draw(distinct_arrays(shape, lo=0.125, hi=3.0))
    x = size * draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))
    keepdims = draw(st.booleans())
    kinds = ["vector", "matrix", "whole"] if x.ndim >= 2 else ["vector", "whole"]
    kind = draw(st.sampled_from(kinds))
    if kind == "whole":
        return (x,), {"ord": None, "axis": None, "keepdims": keepdims}
    if kind == "vector":
        ord = draw(st.sampled_from([None, 1, 2, np.inf, -np.inf, 3, 1.5]))
        axis = draw(st.integers(-x.ndim, x.ndim - 1))
        return (x,), {"ord": ord, "axis": axis, "keepdims": keepdims}
    a = st.integers(-x.ndim, x.ndim - 1)
    r, c = draw(st.tuples(a, a).filter(lambda p: p[0] % x.ndim != p[1] % x.ndim))
    ord = draw(st.sampled_from([None, "fro", 1, -1, np.inf, -np.inf]))
    if ord in (1, -1, np.inf, -np.inf):
        inner, outer = (r, c) if ord in (1, -1) else (c, r)
        assume(_distinct_sums(x, inner, outer))
    return (x,), {"ord": ord, "axis": (r, c), "keepdims": keepdims}


def _t_norm(a, ord, axis, keepdims):
    return torch.linalg.norm(a, ord, axis, keepdims)


@st.composite
def spread_matrices(draw):
    """(batch..., m, n) matrices, m and n from 1 to 4, whose singular values are at least 0.25 apart
    and at least 0.75: a random orthonormal pair with chosen values (the SVD's gradient divides by
    s_i^2 - s_j^2, and by s_i where m != n)."""
    batch = tuple(draw(st.lists(st.integers(1, 2), max_size=1)))
    m, n = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    u, _, vh = np.linalg.svd(draw(arrays(batch + (m, n))), full_matrices=False)  # orthonormal even for zeros
    gaps = draw(hnp.arrays(np.float64, batch + (min(m, n),), elements=floats64(0.25, 1.0)))
    s = 0.5 + np.cumsum(gaps, axis=-1)[..., ::-1]
    return (u * s[..., None, :]) @ vh


@st.composite
def svd_norm_case(draw):
    """A spread matrix stack with its axes permuted: norm over the two matrix axes, either order."""
    x = draw(spread_matrices())
    perm = draw(st.permutations(range(x.ndim)))
    rc = (perm.index(x.ndim - 2), perm.index(x.ndim - 1))
    axis = rc if draw(st.booleans()) else rc[::-1]
    ord = draw(st.sampled_from([2, -2, "nuc"]))
    return (x.transpose(perm),), {"ord": ord, "axis": axis, "keepdims": draw(st.booleans())}


def _sign_free(part, factor):
    """U o U and Vh o Vh: the factors up to the signs of their columns, which are arbitrary."""
    return factor if part == "S" else factor * factor


def _t_svd(a, part):
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    return _sign_free(part, {"U": u, "S": s, "Vh": vh}[part])


def _t_svd_uv(a):
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    w = torch.arange(1, s.shape[-1] + 1, dtype=a.dtype)
    return (u * w) @ vh


def _svd_uv(a):
    u, vh = tg.apply(ops.Svd, a, part="U"), tg.apply(ops.Svd, a, part="Vh")
    return (u * np.arange(1.0, u.shape[-1] + 1)) @ vh


# --- linear algebra (tinygrad_np/linalg.py) ---


@st.composite
def tensordot_case(draw):
    side = st.integers(1, 3)
    free_a = draw(st.lists(side, max_size=2))
    summed = draw(st.lists(side, max_size=2))
    free_b = draw(st.lists(side, max_size=2))
    if draw(st.booleans()):  # an int: the last N axes of a with the first N of b
        a_shape, b_shape, axes = free_a + summed, summed + free_b, len(summed)
    else:  # a pair of axis lists, the summed axes anywhere and in any order
        a_order = draw(st.permutations(range(len(free_a) + len(summed))))
        b_order = draw(st.permutations(range(len(summed) + len(free_b))))
        a_dims, b_dims = free_a + summed, summed + free_b
        a_shape = [a_dims[i] for i in a_order]
        b_shape = [b_dims[i] for i in b_order]
        xa = [a_order.index(len(free_a) + j) for j in range(len(summed))]
        xb = [b_order.index(j) for j in range(len(summed))]
        axes = (xa, xb)
    return (draw(arrays(tuple(a_shape))), draw(arrays(tuple(b_shape)))), {"axes": axes}


@st.composite
def dot_case(draw, kind):
    """Operands for np.dot (kind "dot": last axis with the second-to-last) or np.inner (last)."""
    k = draw(st.integers(1, 3))
    a_lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    b_lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    form = draw(st.sampled_from(["scalar", "vector", "nd"]))
    if form == "scalar":
        shapes_ = [(), draw(shapes())]
        shapes_ = shapes_ if draw(st.booleans()) else shapes_[::-1]
        return tuple(draw(arrays(s)) for s in shapes_), {}
    a_shape = a_lead + (k,)
    if form == "vector" or kind == "inner":
        b_shape = (b_lead + (k,)) if form == "nd" else (k,)
    else:
        b_shape = b_lead[:1] + (k, draw(st.integers(1, 3)))
    return (draw(arrays(a_shape)), draw(arrays(b_shape))), {}


def _t_dot(a, b):
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return torch.tensordot(a, b, dims=([a.ndim - 1], [max(b.ndim - 2, 0)]))


def _t_inner(a, b):
    return a * b if a.ndim == 0 or b.ndim == 0 else torch.inner(a, b)


EINSUM_SPECS = [
    "ij,jk->ik", "ij->ji", "ii->i", "ii->", "ij->j", "ij,ij->ij", "i,j->ij", "bij,bjk->bik",
    "...ij,...jk->...ik", "iij,jk->ik", "ijk,ikl->jl", "i,i->", "ij,j->i", "...i->i...",
    "ij,jk", "ba,ac", "ii", "...ij,...jk", "ij,jk,kl->il", "ij,jk,kl", "i,i,i->", "ij,j,ii->j",
    "bij,bjk,bkl->bli", "a,b,c,d->dcba",
]  # fmt: skip


@st.composite
def einsum_case(draw):
    spec = draw(st.sampled_from(EINSUM_SPECS))
    sizes = {c: draw(st.integers(1, 3)) for c in set(spec) if c.isalpha()}
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    ins = spec.split("->")[0].split(",")
    def shape(sub):
        return sum((batch if c == "." else (sizes[c],) for c in sub.replace("...", ".")), ())

    xs = tuple(draw(arrays(shape(sub))) for sub in ins)
    return xs, {"subscripts": spec}


GRAD_CASES: dict[str, Case] = {
    # --- primitives (keyed by class name) ---
    "Neg": Case(lambda a: -a, one(arrays()), lambda a: -a),
    "Exp": Case(lambda a: a.exp(), one(arrays(lo=-5, hi=5)), lambda a: a.exp()),
    "Log": Case(lambda a: a.log(), one(POSITIVE), lambda a: a.log()),
    "ReLU": Case(lambda a: a.relu(), one(arrays(away_from=(0.0,))), lambda a: a.relu()),
    "Tanh": Case(lambda a: a.tanh(), one(arrays()), lambda a: a.tanh()),
    "Sigmoid": Case(lambda a: a.sigmoid(), one(arrays(lo=-8, hi=8)), lambda a: a.sigmoid()),
    # erf's three intervals (|x| <= 0.47, up to 4, beyond) all drawn: -5.5 to 5.5
    "Erf": Case(lambda a: a.erf(), one(arrays(lo=-5.5, hi=5.5)), lambda a: torch.erf(a)),
    "Erfc": Case(lambda a: a.erfc(), one(arrays(lo=-5.5, hi=5.5)), lambda a: torch.erfc(a)),
    "Cast": Case(lambda a: (a.astype(np.longdouble) * 3).astype(np.float64), one(arrays()), None),
    "Add": Case(lambda a, b: a + b, plain(broadcastable_pair()), lambda a, b: a + b),
    "Mul": Case(lambda a, b: a * b, plain(broadcastable_pair()), lambda a, b: a * b),
    "Div": Case(
        lambda a, b: a / b,
        plain(broadcastable_arrays(2, away_from=(0.0,), margin=0.3)),
        lambda a, b: a / b,
    ),
    "Pow": Case(
        lambda a, b: a**b,
        broadcastable_pair(lo=0.1, hi=3.5).map(lambda p: ((p[0], p[1] - 1.5), {})),
        lambda a, b: a**b,
    ),
    "Maximum": Case(
        lambda a, b: a.maximum(b),
        plain(broadcastable_pair().filter(lambda p: np.all(np.abs(p[0] - p[1]) > 1e-3))),
        lambda a, b: a.maximum(b),
    ),
    "Where": Case(
        lambda a, b, cond: tg.where(cond, a, b),
        where_case(),
        lambda a, b, cond: torch.where(torch.from_numpy(np.asarray(cond)), a, b),
    ),
    "Sum": Case(
        lambda a, axis, keepdims: a.sum(axis, keepdims),
        with_axis(),
        lambda a, axis, keepdims: a.sum(dim=dims(axis, a.ndim), keepdim=keepdims),
    ),
    "Max": Case(
        lambda a, axis, keepdims: a.max(axis, keepdims),
        with_axis(distinct=True),
        lambda a, axis, keepdims: a.amax(dim=dims(axis, a.ndim), keepdim=keepdims),
    ),
    "Reshape": Case(
        lambda a, shape: a.reshape(shape), reshape_case(), lambda a, shape: a.reshape(shape)
    ),
    "Transpose": Case(
        lambda a, axes: a.transpose(axes), transpose_case(), lambda a, axes: a.permute(axes)
    ),
    "Expand": Case(
        lambda a, shape: a.expand(shape), expand_case(), lambda a, shape: a.expand(shape)
    ),
    "Index": Case(
        lambda a, index: a[index],
        index_case(),
        lambda a, index: a[_torch_index(index)] if _torch_index(index) is not None else None,
    ),
    # no torch column: torch's index_put takes no slices; the Index case is its adjoint there
    "Scatter": Case(
        lambda g, index, shape: tg.apply(ops.Scatter, g, index=index, shape=shape), scatter_case()
    ),
    "Concatenate": Case(
        lambda *xs, axis: tg.concatenate(xs, axis),
        concat_case(),
        lambda *xs, axis: torch.cat(xs, axis),
    ),
    "MatMul": Case(lambda a, b: a @ b, plain(matmul_pair()), lambda a, b: a @ b),
    "Linear": Case(lambda x, w, b: x @ w + b, linear_case(), lambda x, w, b: x @ w + b),
    "LinearReLU": Case(
        lambda x, w, b: (x @ w + b).relu(),
        linear_case().filter(lambda c: np.all(np.abs(c[0][0] @ c[0][1] + c[0][2]) > 1e-3)),
        lambda x, w, b: (x @ w + b).relu(),
    ),
    "CrossEntropy": Case(
        lambda a, labels: F.cross_entropy(a, labels),
        logits_labels(),
        lambda a, labels: torch.nn.functional.cross_entropy(a, torch.from_numpy(labels)),
    ),
    "Sin": Case(lambda a: a.sin(), one(arrays()), lambda a: a.sin()),
    "Cos": Case(lambda a: a.cos(), one(arrays()), lambda a: a.cos()),
    "Arcsin": Case(lambda a: a.arcsin(), one(UNIT), lambda a: a.asin()),
    "Arctan": Case(lambda a: a.arctan(), one(arrays()), lambda a: a.atan()),
    "Arcsinh": Case(lambda a: a.arcsinh(), one(arrays()), lambda a: a.asinh()),
    "Arccosh": Case(lambda a: a.arccosh(), one(arrays(lo=1.1, hi=5.0)), lambda a: a.acosh()),
    "Arctanh": Case(lambda a: a.arctanh(), one(UNIT), lambda a: a.atanh()),
    "Expm1": Case(lambda a: a.expm1(), one(arrays()), lambda a: a.expm1()),
    "Log1p": Case(lambda a: a.log1p(), one(arrays(lo=-0.9, hi=5.0)), lambda a: a.log1p()),
    "Step": Case(lambda a: a.floor(), one(OFF_GRID), lambda a: a.floor()),
    "Arctan2": Case(
        lambda a, b: a.arctan2(b), plain(OFF_BRANCH_CUT), lambda a, b: torch.atan2(a, b)
    ),
    "Hypot": Case(
        lambda a, b: a.hypot(b), plain(AWAY_FROM_ORIGIN), lambda a, b: torch.hypot(a, b)
    ),
    # --- composites ---
    "bias_first_linear": Case(lambda x, w, b: b + x @ w, linear_case(), lambda x, w, b: b + x @ w),
    "sub": Case(lambda a, b: a - b, plain(broadcastable_pair()), lambda a, b: a - b),
    "rsub_const": Case(lambda a: 2.5 - a, one(arrays()), lambda a: 2.5 - a),
    "rdiv_const": Case(lambda a: 2.0 / a, one(NONZERO), lambda a: 2.0 / a),
    "pow_const": Case(lambda a: a**3, one(arrays()), lambda a: a**3),
    "rpow_const": Case(lambda a: 2.0**a, one(arrays()), lambda a: 2.0**a),
    "radd_const": Case(lambda a: 1.5 + a, one(arrays()), lambda a: 1.5 + a),
    "rmul_const": Case(lambda a: 2.0 * a, one(arrays()), lambda a: 2.0 * a),
    "div_const": Case(lambda a: a / 4.0, one(arrays()), lambda a: a / 4.0),
    "rmatmul_array": Case(
        lambda w, x: x @ w,
        matmul_pair().map(lambda p: ((p[1],), {"x": p[0]})),
        lambda w, x: torch.from_numpy(x) @ w,
    ),
    "sqrt": Case(lambda a: a.sqrt(), one(POSITIVE), lambda a: a.sqrt()),
    "abs": Case(lambda a: a.abs(), one(arrays(away_from=(0.0,))), lambda a: a.abs()),
    "clip": Case(lambda a, low, high: a.clip(low, high), clip_case(), _t_clip),
    "clip_tensor_bounds": Case(
        lambda a, low, high: a.clip(low, high),
        plain(
            broadcastable_arrays(3).filter(
                lambda p: np.all(np.abs(p[0] - p[1]) > 1e-3)
                and np.all(np.abs(p[0] - p[2]) > 1e-3)
                and np.all(p[1] < p[2] - 1e-2)  # lo and hi apart: the derivative jumps at lo = hi
            )
        ),
        # torch.clamp refuses bounds that broadcast the input to a larger shape (np.clip allows
        # them); away from ties, maximum-then-minimum is the same function
        lambda a, low, high: torch.minimum(torch.maximum(a, low), high),
    ),
    "minimum": Case(
        lambda a, b: a.minimum(b),
        plain(broadcastable_pair().filter(lambda p: np.all(np.abs(p[0] - p[1]) > 1e-3))),
        lambda a, b: a.minimum(b),
    ),
    "mean": Case(
        lambda a, axis, keepdims: a.mean(axis, keepdims),
        with_axis(),
        lambda a, axis, keepdims: a.mean(dim=dims(axis, a.ndim), keepdim=keepdims),
    ),
    "min": Case(
        lambda a, axis, keepdims: a.min(axis, keepdims),
        with_axis(distinct=True),
        lambda a, axis, keepdims: a.amin(dim=dims(axis, a.ndim), keepdim=keepdims),
    ),
    "logsumexp": Case(
        lambda a, axis, keepdims: a.logsumexp(axis, keepdims),
        with_axis(lo=-10, hi=10),
        _t_logsumexp,
    ),
    "softmax": Case(
        lambda a, axis: a.softmax(axis),
        with_axis(keepdims=False, allow_tuple=False, min_dims=1, lo=-10, hi=10),
        lambda a, axis: _t_whole(a, axis, "softmax"),
    ),
    "log_softmax": Case(
        lambda a, axis: a.log_softmax(axis),
        with_axis(keepdims=False, allow_tuple=False, min_dims=1, lo=-10, hi=10),
        lambda a, axis: _t_whole(a, axis, "log_softmax"),
    ),
    "flatten": Case(
        lambda a, start_axis, end_axis: a.flatten(start_axis, end_axis), flatten_case(), _t_flatten
    ),
    "squeeze": Case(lambda a, axis: a.squeeze(axis), squeeze_case(), _t_squeeze),
    "unsqueeze": Case(
        lambda a, axis: a.unsqueeze(axis), unsqueeze_case(), lambda a, axis: a.unsqueeze(axis)
    ),
    "stack": Case(
        lambda *xs, axis: tg.stack(xs, axis), stack_case(), lambda *xs, axis: torch.stack(xs, axis)
    ),
    "T": Case(lambda a: a.T, one(arrays()), lambda a: a.permute(tuple(reversed(range(a.ndim))))),
    "linear_relu": Case(
        lambda x, w, b: (x @ w + b).relu(),
        st.tuples(arrays((3, 4)), arrays((4, 2)), arrays((2,), away_from=(0.0,)))
        .filter(lambda p: np.all(np.abs(p[0] @ p[1] + p[2]) > 1e-3))
        .map(lambda p: (p, {})),
        lambda x, w, b: (x @ w + b).relu(),
    ),
    "nll_loss": Case(
        lambda a, labels: F.nll_loss(a.log_softmax(), labels),
        logits_labels(),
        lambda a, labels: torch.nn.functional.nll_loss(a.log_softmax(-1), torch.from_numpy(labels)),
    ),
    "leaky_relu": Case(
        lambda a: F.leaky_relu(a, 0.1),
        one(arrays(away_from=(0.0,))),
        lambda a: torch.nn.functional.leaky_relu(a, 0.1),
    ),
    "gelu": Case(
        lambda a: F.gelu(a),
        one(arrays(lo=-5.0, hi=5.0)),
        lambda a: torch.nn.functional.gelu(a),  # approximate="none": the exact erf form
    ),
    "gelu_tanh": Case(
        lambda a: F.gelu(a, approximate="tanh"),
        one(arrays()),
        lambda a: torch.nn.functional.gelu(a, approximate="tanh"),
    ),
    "mse_loss": Case(
        lambda a, **k: F.mse_loss(a, **k),
        input_target(),
        lambda a, **k: torch.nn.functional.mse_loss(a, **_tt(k)),
    ),
    "l1_loss": Case(
        lambda a, **k: F.l1_loss(a, **k),
        input_target(kinks=(0.0,)),
        lambda a, **k: torch.nn.functional.l1_loss(a, **_tt(k)),
    ),
    "smooth_l1_loss": Case(
        lambda a, **k: F.smooth_l1_loss(a, beta=0.5, **k),
        input_target(kinks=(0.0, 0.5)),
        lambda a, **k: torch.nn.functional.smooth_l1_loss(a, beta=0.5, **_tt(k)),
    ),
    "huber_loss": Case(
        lambda a, **k: F.huber_loss(a, delta=0.7, **k),
        input_target(kinks=(0.0, 0.7)),
        lambda a, **k: torch.nn.functional.huber_loss(a, delta=0.7, **_tt(k)),
    ),
    "binary_cross_entropy": Case(
        lambda a, **k: F.binary_cross_entropy(a, **k),
        input_target(0.02, 0.98, target=lambda s: arrays(s, 0.0, 1.0)),
        lambda a, **k: torch.nn.functional.binary_cross_entropy(a, **_tt(k)),
    ),
    "binary_cross_entropy_with_logits": Case(
        lambda a, **k: F.binary_cross_entropy_with_logits(a, pos_weight=1.5, **k),
        input_target(-8.0, 8.0, target=zeros_and_ones),
        lambda a, **k: torch.nn.functional.binary_cross_entropy_with_logits(
            a, pos_weight=torch.tensor(1.5, dtype=a.dtype), **_tt(k)
        ),
    ),
    "kl_div": Case(
        lambda a, **k: F.kl_div(a, **k),
        input_target(
            -4.0,
            0.0,
            target=lambda s: arrays(s, 0.0, 1.0),
            reductions=("batchmean", "sum", "none"),  # torch warns that its 'mean' will change
            min_ndim=1,
        ),
        lambda a, **k: torch.nn.functional.kl_div(a, **_tt(k)),
    ),
    "layer_norm": Case(
        lambda x, w, b, **k: F.layer_norm(x, weight=w, bias=b, **k),
        layer_norm_case(),
        lambda x, w, b, **k: torch.nn.functional.layer_norm(x, weight=w, bias=b, **k),
    ),
    "embedding": Case(
        lambda w, ids: F.embedding(ids, w),
        embedding_case(),
        lambda w, ids: torch.nn.functional.embedding(torch.from_numpy(ids), w),
    ),
    "cross_entropy_options": Case(
        lambda a, **k: F.cross_entropy(a, **k), cross_entropy_options(), _t_cross_entropy
    ),
    "softplus": Case(
        lambda a: F.softplus(a, beta=1.5, threshold=4.0),
        one(arrays(lo=-5.0, hi=5.0, away_from=(4.0 / 1.5,))),
        lambda a: torch.nn.functional.softplus(a, beta=1.5, threshold=4.0),
    ),
    "silu": Case(lambda a: F.silu(a), one(arrays()), lambda a: torch.nn.functional.silu(a)),
    "mish": Case(lambda a: F.mish(a), one(arrays()), lambda a: torch.nn.functional.mish(a)),
    "elu": Case(
        lambda a: F.elu(a, 0.7),
        one(arrays(away_from=(0.0,))),
        lambda a: torch.nn.functional.elu(a, 0.7),
    ),
    "celu": Case(
        lambda a: F.celu(a, 0.5),
        one(arrays(away_from=(0.0,))),
        lambda a: torch.nn.functional.celu(a, 0.5),
    ),
    "selu": Case(
        lambda a: F.selu(a), one(arrays(away_from=(0.0,))), lambda a: torch.nn.functional.selu(a)
    ),
    "hardtanh": Case(
        lambda a: F.hardtanh(a, -0.5, 1.5),
        one(arrays(away_from=(-0.5, 1.5))),
        lambda a: torch.nn.functional.hardtanh(a, -0.5, 1.5),
    ),
    "relu6": Case(
        lambda a: F.relu6(a),
        one(arrays(lo=-2.0, hi=8.0, away_from=(0.0, 6.0))),
        lambda a: torch.nn.functional.relu6(a),
    ),
    # no torch column: torch's hardsigmoid gradient uses a float32 1/6 even in float64 (3e-8 off)
    "hardsigmoid": Case(
        lambda a: F.hardsigmoid(a), one(arrays(lo=-5.0, hi=5.0, away_from=(-3.0, 3.0)))
    ),
    "hardswish": Case(
        lambda a: F.hardswish(a),
        one(arrays(lo=-5.0, hi=5.0, away_from=(-3.0, 3.0))),
        lambda a: torch.nn.functional.hardswish(a),
    ),
    "softsign": Case(
        lambda a: F.softsign(a),
        one(arrays()),
        lambda a: torch.nn.functional.softsign(a),
        smooth=one(arrays(away_from=(0.0,))),
    ),
    "square": Case(lambda a: a.square(), one(arrays()), lambda a: torch.square(a)),
    "reciprocal": Case(lambda a: a.reciprocal(), one(NONZERO), lambda a: torch.reciprocal(a)),
    "rsqrt": Case(lambda a: a.rsqrt(), one(arrays(lo=0.1, hi=5.0)), lambda a: torch.rsqrt(a)),
    "exp2": Case(lambda a: a.exp2(), one(arrays()), lambda a: torch.exp2(a)),
    "log2": Case(lambda a: a.log2(), one(arrays(lo=0.1, hi=5.0)), lambda a: torch.log2(a)),
    "log10": Case(lambda a: a.log10(), one(arrays(lo=0.1, hi=5.0)), lambda a: torch.log10(a)),
    "logaddexp": Case(
        lambda a, b: a.logaddexp(b), plain(broadcastable_pair()), lambda a, b: torch.logaddexp(a, b)
    ),
    "logaddexp_const": Case(
        lambda a: a.logaddexp(0.5),
        one(arrays()),
        lambda a: torch.logaddexp(a, torch.tensor(0.5, dtype=a.dtype)),
    ),
    "var": Case(
        lambda a, axis, keepdims: a.var(axis, ddof=1, keepdims=keepdims),
        with_axis().filter(lambda c: _count(c) > 1),
        lambda a, axis, keepdims: a.var(dim=_t_axes(axis, a.ndim), correction=1, keepdim=keepdims),
    ),
    "std": Case(
        lambda a, axis, keepdims: a.std(axis, keepdims=keepdims),
        with_axis(distinct=True).filter(lambda c: _count(c) > 1),
        lambda a, axis, keepdims: a.std(dim=_t_axes(axis, a.ndim), correction=0, keepdim=keepdims),
    ),
    "tan": Case(lambda a: a.tan(), one(arrays(lo=-1.2, hi=1.2)), lambda a: a.tan()),
    "arccos": Case(lambda a: a.arccos(), one(UNIT), lambda a: a.acos()),
    "sinh": Case(lambda a: a.sinh(), one(arrays()), lambda a: a.sinh()),
    "cosh": Case(lambda a: a.cosh(), one(arrays()), lambda a: a.cosh()),
    "ceil": Case(lambda a: a.ceil(), one(OFF_GRID), lambda a: a.ceil()),
    "round": Case(lambda a: a.round(), one(OFF_GRID), lambda a: a.round()),
    "trunc": Case(lambda a: a.trunc(), one(OFF_GRID), lambda a: a.trunc()),
    "sign": Case(lambda a: a.sign(), one(NONZERO), lambda a: a.sign()),
    "remainder": Case(
        lambda a, b: a % b, plain(_off_multiples(np.floor)), lambda a, b: torch.remainder(a, b)
    ),
    "rmod_const": Case(
        lambda a: 2.5 % a,
        one(NONZERO.filter(lambda b: _off_grid(2.5 / b))),
        lambda a: torch.remainder(torch.tensor(2.5, dtype=a.dtype), a),
    ),
    "fmod": Case(
        lambda a, b: a.fmod(b), plain(_off_multiples(np.trunc)), lambda a, b: torch.fmod(a, b)
    ),
    "fmax": Case(
        lambda a, b: a.fmax(b),
        plain(broadcastable_pair().filter(lambda p: np.all(np.abs(p[0] - p[1]) > 1e-3))),
        lambda a, b: torch.fmax(a, b),
    ),
    "fmin": Case(
        lambda a, b: a.fmin(b),
        plain(broadcastable_pair().filter(lambda p: np.all(np.abs(p[0] - p[1]) > 1e-3))),
        lambda a, b: torch.fmin(a, b),
    ),
    # --- movement (tinygrad_np/movement.py) ---
    "flip": Case(lambda a, axis: a.flip(axis), flip_case(), _t_flip),
    "roll": Case(
        lambda a, shift, axis: a.roll(shift, axis),
        roll_case(),
        lambda a, shift, axis: torch.roll(a, shift, axis),
    ),
    "swapaxes": Case(
        lambda a, axis1, axis2: a.swapaxes(axis1, axis2),
        two_axes_case(),
        lambda a, axis1, axis2: torch.swapaxes(a, axis1, axis2),
    ),
    "moveaxis": Case(
        lambda a, source, destination: a.moveaxis(source, destination),
        moveaxis_case(),
        lambda a, source, destination: torch.moveaxis(a, source, destination),
    ),
    "permute": Case(
        lambda a, axes: a.permute(*axes), transpose_case(), lambda a, axes: a.permute(axes)
    ),
    "view": Case(lambda a, shape: a.view(shape), reshape_case(), lambda a, shape: a.view(shape)),
    "tile": Case(
        lambda a, reps: a.tile(reps),
        tile_case(),
        lambda a, reps: torch.tile(a, reps if isinstance(reps, tuple) else (reps,)),
    ),
    "repeat": Case(
        lambda a, repeats, axis: a.repeat(repeats, axis), repeat_case(), _t_repeat
    ),
    "split": Case(
        lambda a, sections, axis: _rejoined(a.split(sections, axis), axis),
        split_case(equal=True),
        _t_split,
    ),
    "array_split": Case(
        lambda a, sections, axis: _rejoined(a.array_split(sections, axis), axis),
        split_case(equal=False),
        _t_split,
    ),
    "chunk": Case(
        lambda a, chunks, dim: _rejoined(a.chunk(chunks, dim), dim),
        chunk_case(),
        lambda a, chunks, dim: torch.cat(
            [p * float(i + 1) for i, p in enumerate(a.chunk(chunks, dim))], dim
        ),
    ),
    "tril": Case(lambda a, k: a.tril(k), triangle_case(), _t_triangle("tril")),
    "triu": Case(lambda a, k: a.triu(k), triangle_case(), _t_triangle("triu")),
    "diagonal": Case(
        lambda a, offset, axis1, axis2: a.diagonal(offset, axis1, axis2),
        diagonal_case(),
        lambda a, offset, axis1, axis2: torch.diagonal(a, offset, axis1, axis2),
    ),
    "diag": Case(lambda a, k: a.diag(k), diag_case(), lambda a, k: torch.diag(a, k)),
    "take_along_axis": Case(
        lambda a, indices, axis: a.take_along_axis(indices, axis),
        take_along_axis_case(),
        lambda a, indices, axis: torch.take_along_dim(a, torch.from_numpy(indices), axis),
    ),
    "gather": Case(
        lambda a, dim, index: a.gather(dim, index),
        gather_case(),
        lambda a, dim, index: torch.gather(a, dim, torch.from_numpy(index)),
    ),
    "pad": Case(lambda a, **kw: a.pad(**kw), pad_case(), _t_pad),
    "vstack": Case(lambda *xs: tg.vstack(xs), joined_case(), lambda *xs: torch.vstack(xs)),
    "hstack": Case(lambda *xs: tg.hstack(xs), joined_case(), lambda *xs: torch.hstack(xs)),
    "dstack": Case(lambda *xs: tg.dstack(xs), joined_case(), lambda *xs: torch.dstack(xs)),
    "column_stack": Case(
        lambda *xs: tg.column_stack(xs), joined_case(), lambda *xs: torch.column_stack(xs)
    ),
    "atleast_3d": Case(
        lambda a: tg.atleast_3d(a) * 2.0, one(arrays()), lambda a: torch.atleast_3d(a) * 2.0
    ),
    "cat": Case(
        lambda *xs, axis: tg.cat(xs, dim=axis), concat_case(), lambda *xs, axis: torch.cat(xs, axis)
    ),
    # --- reductions and scans (tinygrad_np/reductions.py; Cumsum is a rule) ---
    "Cumsum": Case(lambda a, axis: a.cumsum(axis), scan_case(), _t_scan("cumsum")),
    "cumprod": Case(lambda a, axis: a.cumprod(axis), scan_case(WITH_ZEROS), _t_scan("cumprod")),
    "prod": Case(lambda a, axis, keepdims: a.prod(axis, keepdims), prod_case(), _t_prod),
    "diff": Case(
        lambda a, n, axis: a.diff(n, axis), diff_case(), lambda a, n, axis: torch.diff(a, n, axis)
    ),
    "trace": Case(
        lambda a, offset, axis1, axis2: a.trace(offset, axis1, axis2),
        diagonal_case(),
        lambda a, offset, axis1, axis2: torch.diagonal(a, offset, axis1, axis2).sum(-1),
    ),
    "sort": Case(lambda a, axis, descending: a.sort(axis, descending), sort_case(), _t_sort),
    "norm": Case(
        lambda a, ord, axis, keepdims: a.norm(ord, axis, keepdims), norm_case(), _t_norm
    ),
    "norm_svd": Case(
        lambda a, ord, axis, keepdims: a.norm(ord, axis, keepdims), svd_norm_case(), _t_norm
    ),
    "Svd": Case(
        lambda a, part: _sign_free(part, tg.apply(ops.Svd, a, part=part)),
        spread_matrices().flatmap(
            lambda x: st.sampled_from(ops.Svd.PARTS).map(lambda p: ((x,), {"part": p}))
        ),
        _t_svd,
    ),
    "svd_uv": Case(_svd_uv, one(spread_matrices()), _t_svd_uv),  # U diag(w) Vh: both factors
    # --- linear algebra (tinygrad_np/linalg.py) ---
    "tensordot": Case(
        lambda a, b, axes: tg.tensordot(a, b, axes),
        tensordot_case(),
        lambda a, b, axes: torch.tensordot(a, b, dims=axes),
    ),
    "dot": Case(lambda a, b: tg.dot(a, b), dot_case("dot"), _t_dot),
    "inner": Case(lambda a, b: a.inner(b), dot_case("inner"), _t_inner),
    "outer": Case(
        lambda a, b: tg.outer(a, b),
        plain(st.tuples(arrays(), arrays())),
        lambda a, b: torch.outer(a.reshape(-1), b.reshape(-1)),
    ),
    "kron": Case(
        lambda a, b: a.kron(b),
        plain(st.tuples(arrays(shapes(max_dims=2)), arrays(shapes(max_dims=3)))),
        lambda a, b: torch.kron(a, b),
    ),
    "einsum": Case(
        lambda *xs, subscripts: tg.einsum(subscripts, *xs),
        einsum_case(),
        lambda *xs, subscripts: torch.einsum(subscripts, *xs),
    ),
}


def _count(case) -> int:
    """How many elements the case's reduction covers."""
    (x,), kwargs = case
    axis = kwargs["axis"]
    axes = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    return int(np.prod([x.shape[a] for a in axes]))


def _t_axes(axis, ndim):
    """numpy's axis=None as torch's dim: every axis (torch's var(dim=None) does the same)."""
    return tuple(range(ndim)) if axis is None else axis


# --- windows: convolution, pooling, batch norm (tinygrad_np/nn/convolution.py) ---


@st.composite
def conv_geometry(draw, same=True):
    """kernel, stride, padding (an int, a pair, or 'same' at stride 1), dilation, and an input
    height and width the dilated kernel fits in."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([1, 2, (1, 2), (2, 1)]))
    dilation = draw(st.sampled_from([1, 2, (2, 1)]))
    pads = [0, 1, (0, 1), (2, 1)] + (["same"] if same and stride == 1 else [])
    padding = draw(st.sampled_from(pads))
    d, p = (dilation, dilation) if isinstance(dilation, int) else dilation, padding
    p = (0, 0) if p == "same" else (p, p) if isinstance(p, int) else p
    hw = [
        draw(st.integers(max(1, dd * (k - 1) + 1 - 2 * pp), dd * (k - 1) + 4))
        for k, dd, pp in zip(kernel, d, p)
    ]
    return kernel, stride, padding, dilation, hw


@st.composite
def conv2d_case(draw):
    kernel, stride, padding, dilation, (h, w) = draw(conv_geometry())
    groups = draw(st.sampled_from([1, 1, 2]))
    n, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(arrays((n, cg * groups, h, w)))
    weight = draw(arrays((og * groups, cg, *kernel)))
    inputs = (x, weight) + ((draw(arrays((og * groups,))),) if draw(st.booleans()) else ())
    return inputs, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _conv(fn):
    def run(x, weight, bias=None, **kwargs):
        return fn(x, weight, bias, **kwargs)

    return run


@st.composite
def conv1d_case(draw):
    k, stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.sampled_from([0, 1, 2] + (["same"] if stride == 1 else [])))
    p = 0 if padding == "same" else padding
    length = draw(st.integers(max(1, dilation * (k - 1) + 1 - 2 * p), dilation * (k - 1) + 4))
    groups, n, cg, og = draw(st.sampled_from([1, 2])), draw(st.integers(1, 2)), 2, 1
    x, weight = draw(arrays((n, cg * groups, length))), draw(arrays((og * groups, cg, k)))
    inputs = (x, weight) + ((draw(arrays((og * groups,))),) if draw(st.booleans()) else ())
    return inputs, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _geometry(stride, padding, dilation):
    two = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    (ph, pw) = two(padding)
    return two(stride), ((ph, ph), (pw, pw)), two(dilation)


@st.composite
def conv_adjoint_case(draw, which):
    """The adjoint rules applied directly: (g, w) for the input gradient, (x, g) for the weight's."""
    kernel, stride, padding, dilation, (h, w) = draw(conv_geometry(same=False))
    groups = draw(st.sampled_from([1, 2]))
    n, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x_shape, w_shape = (n, cg * groups, h, w), (og * groups, cg, *kernel)
    geometry = _geometry(stride, padding, dilation)
    g = draw(arrays((n, og * groups, *windows.output_hw(x_shape, kernel, geometry))))
    attrs = {"geometry": geometry, "groups": groups}
    if which == "input":
        return (g, draw(arrays(w_shape))), {**attrs, "x_shape": x_shape}
    return (draw(arrays(x_shape)), g), {**attrs, "w_shape": w_shape}


def _t_conv_input(g, w, x_shape, geometry, groups):
    stride, ((ph, _), (pw, _)), dilation = geometry
    return torch.nn.grad.conv2d_input(x_shape, w, g, stride, (ph, pw), dilation, groups)


def _t_conv_weight(x, g, w_shape, geometry, groups):
    stride, ((ph, _), (pw, _)), dilation = geometry
    return torch.nn.grad.conv2d_weight(x, w_shape, g, stride, (ph, pw), dilation, groups)


@st.composite
def pool_case(draw, distinct=False):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([None, 1, 2, (1, 2)]))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        *[draw(st.integers(max(1, k - 2 * p), k + 4)) for k, p in zip(kernel, padding)],
    )
    x = draw(distinct_arrays(shape, -8.0, 8.0) if distinct else arrays(shape))
    return (x,), {"kernel_size": kernel, "stride": stride, "padding": padding}


@st.composite
def max_pool_case(draw):
    (x,), kwargs = draw(pool_case(distinct=True))
    k = kwargs["kernel_size"]
    dilation = draw(st.sampled_from([1, 2]))
    # a dilated kernel still has to fit: grow the input by what dilation adds
    grow = [(dilation - 1) * (kk - 1) for kk in k]
    if any(grow):
        x = draw(distinct_arrays(x.shape[:2] + tuple(s + a for s, a in zip(x.shape[2:], grow)), -8.0, 8.0))
    return (x,), {**kwargs, "dilation": dilation}


@st.composite
def avg_pool_case(draw):
    (x,), kwargs = draw(pool_case())
    kwargs["count_include_pad"] = draw(st.booleans())
    return (x,), kwargs


@st.composite
def avg_pool_transpose_case(draw):
    (x,), kwargs = draw(avg_pool_case())
    kernel, stride, padding = kwargs["kernel_size"], kwargs["stride"], kwargs["padding"]
    geometry = _geometry(kernel if stride is None else stride, padding, 1)
    divisor = windows.avg_pool_divisor(x.shape, kernel, geometry, kwargs["count_include_pad"])
    g = draw(arrays(x.shape[:2] + windows.output_hw(x.shape, kernel, geometry)))
    return (g,), {"x_shape": x.shape, "kernel": kernel, "geometry": geometry, "divisor": divisor}


@st.composite
def adaptive_case(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    out = (draw(st.integers(1, shape[2])), draw(st.integers(1, shape[3])))
    return (draw(arrays(shape)),), {"output_size": out}


@st.composite
def batch_norm_case(draw, training):
    c = draw(st.integers(1, 3))
    shape = draw(st.sampled_from([(3, c), (2, c, 3), (2, c, 2, 2)]))
    x = draw(arrays(shape, -3.0, 3.0))
    # the batch variance divides: keep each channel's values apart so it stays away from zero
    x = x + np.arange(x.size).reshape(shape) * 0.3 % 1.7
    inputs = (x,) + ((draw(arrays((c,))), draw(arrays((c,)))) if draw(st.booleans()) else ())
    kwargs = {"training": training, "eps": 1e-5}
    if not training:
        kwargs["running_mean"] = draw(arrays((c,)))
        kwargs["running_var"] = draw(arrays((c,), 0.1, 3.0))
    return inputs, kwargs


def _bn(x, weight=None, bias=None, running_mean=None, running_var=None, **kwargs):
    return F.batch_norm(x, running_mean, running_var, weight, bias, **kwargs)


def _t_bn(x, weight=None, bias=None, running_mean=None, running_var=None, **kwargs):
    rm = None if running_mean is None else torch.from_numpy(running_mean.copy())
    rv = None if running_var is None else torch.from_numpy(running_var.copy())
    return torch.nn.functional.batch_norm(x, rm, rv, weight, bias, **kwargs)


GRAD_CASES.update(
    {
        "Conv2d": Case(
            _conv(F.conv2d), conv2d_case(), _conv(lambda *a, **k: torch.nn.functional.conv2d(*a, **k))
        ),
        "Conv2dInputGrad": Case(
            lambda g, w, **attrs: tg.apply(ops.Conv2dInputGrad, g, w, **attrs),
            conv_adjoint_case("input"),
            _t_conv_input,
        ),
        "Conv2dWeightGrad": Case(
            lambda x, g, **attrs: tg.apply(ops.Conv2dWeightGrad, x, g, **attrs),
            conv_adjoint_case("weight"),
            _t_conv_weight,
        ),
        "conv1d": Case(
            _conv(F.conv1d), conv1d_case(), _conv(lambda *a, **k: torch.nn.functional.conv1d(*a, **k))
        ),
        "MaxPool2d": Case(
            lambda x, **k: F.max_pool2d(x, **k),
            max_pool_case(),
            lambda x, **k: torch.nn.functional.max_pool2d(x, **k),
        ),
        "AvgPool2d": Case(
            lambda x, **k: F.avg_pool2d(x, **k),
            avg_pool_case(),
            lambda x, **k: torch.nn.functional.avg_pool2d(x, **k),
        ),
        "AvgPool2dTranspose": Case(
            lambda g, **attrs: tg.apply(ops.AvgPool2dTranspose, g, **attrs),
            avg_pool_transpose_case(),
        ),
        "adaptive_avg_pool2d": Case(
            lambda x, output_size: F.adaptive_avg_pool2d(x, output_size),
            adaptive_case(),
            lambda x, output_size: torch.nn.functional.adaptive_avg_pool2d(x, output_size),
        ),
        "BatchNorm": Case(_bn, batch_norm_case(True), _t_bn),  # F.batch_norm, training=True
        "batch_norm_eval": Case(_bn, batch_norm_case(False), _t_bn),
    }
)
