"""Hypothesis strategies for gradient tests of ops, ours and users'. Imports hypothesis (a test extra).

    from hypothesis import given
    from tinygrad_np import gradcheck
    from tinygrad_np.testing import arrays

    @given(arrays(lo=-5, hi=5))
    def test_softplus_grad(x):
        gradcheck(lambda t: Softplus.apply(t), x)

Arrays are float64 and small (numerical gradients cost two forward passes per element). Put an op's
domain in the strategy (lo/hi, away_from=kinks), never in the test body.
"""

from __future__ import annotations

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "tinygrad_np.testing needs hypothesis: pip install 'tinygrad_np[test]'"
    ) from e

import numpy as np

__all__ = [
    "floats64",
    "shapes",
    "arrays",
    "distinct_arrays",
    "broadcastable_arrays",
    "broadcastable_pair",
    "matmul_pair",
    "axes",
    "array_and_axis",
]


def floats64(lo: float = -3.0, hi: float = 3.0, away_from=(), margin: float = 1e-3):
    """Finite float64 values in [lo, hi], at least margin from every point in away_from (kinks)."""
    values = st.floats(
        lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64
    )
    if away_from:
        values = values.filter(lambda v: all(abs(v - k) >= margin for k in away_from))
    return values


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Array shapes, 0-d and size-1 dimensions included; small, since numeric grads are O(size)."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def arrays(shape=None, lo: float = -3.0, hi: float = 3.0, away_from=(), margin: float = 1e-3):
    """float64 arrays of shape (a tuple or a strategy; default shapes()) with values in [lo, hi]."""
    return hnp.arrays(
        np.float64,
        shapes() if shape is None else shape,
        elements=floats64(lo, hi, away_from, margin),
    )


def distinct_arrays(shape=None, lo: float = -3.0, hi: float = 3.0, step: float = 1 / 64):
    """float64 arrays whose values differ pairwise by at least step: no ties for max/sort-like ops."""
    grid = st.integers(int(np.ceil(lo / step)), int(np.floor(hi / step))).map(lambda i: i * step)
    return hnp.arrays(np.float64, shapes() if shape is None else shape, elements=grid, unique=True)


@st.composite
def broadcastable_arrays(
    draw,
    n: int = 2,
    lo: float = -3.0,
    hi: float = 3.0,
    min_dims: int = 0,
    max_dims: int = 3,
    away_from=(),
    margin: float = 1e-3,
):
    """n float64 arrays whose shapes broadcast together, of different ranks, 0-d included."""
    drawn = draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=n, min_dims=min_dims, max_dims=max_dims, max_side=4
        )
    )
    return tuple(draw(arrays(s, lo, hi, away_from, margin)) for s in drawn.input_shapes)


def broadcastable_pair(lo: float = -3.0, hi: float = 3.0, away_from=(), margin: float = 1e-3):
    """Two float64 arrays whose shapes broadcast, including different ranks and 0-d."""
    return broadcastable_arrays(2, lo, hi, away_from=away_from, margin=margin)


@st.composite
def matmul_pair(draw, lo: float = -3.0, hi: float = 3.0, max_batch_dims: int = 2):
    """(x, w) valid for np.matmul: 1-D and 2-D operands, and batched ones with broadcast batch dims."""
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    x_1d, w_1d = draw(st.booleans()), draw(st.booleans())
    batch = draw(
        hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=0, max_dims=max_batch_dims, max_side=3
        )
    )
    xb, wb = batch.input_shapes
    x_shape = (k,) if x_1d else xb + (n, k)
    w_shape = (k,) if w_1d else wb + (k, m)
    return draw(arrays(x_shape, lo, hi)), draw(arrays(w_shape, lo, hi))


@st.composite
def axes(draw, ndim: int, allow_none: bool = True, allow_tuple: bool = True):
    """A valid numpy axis argument for ndim: None, an int (negative too) or a non-empty tuple."""
    choices = ["none"] if allow_none or ndim == 0 else []
    if ndim:
        choices += ["int"] + (["tuple"] if allow_tuple else [])
    kind = draw(st.sampled_from(choices))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return draw(hnp.valid_tuple_axes(ndim, min_size=1))


@st.composite
def array_and_axis(
    draw,
    lo: float = -3.0,
    hi: float = 3.0,
    distinct: bool = False,
    allow_tuple: bool = True,
    min_dims: int = 0,
):
    """(x, axis) with axis valid for x."""
    shape = draw(shapes(min_dims=min_dims))
    x = draw(distinct_arrays(shape, lo, hi) if distinct else arrays(shape, lo, hi))
    return x, draw(axes(x.ndim, allow_tuple=allow_tuple))
