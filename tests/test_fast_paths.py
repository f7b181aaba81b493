"""ops' faster numpy formulations of hot steps against the obvious numpy they replace.

max and maximum are exact, so those must match bit for bit (NaN, inf and -0.0 included); the sums are
BLAS products that add in another order, so they must stay within the float summation error bound.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_np import backend

FLOATS = st.sampled_from([np.float32, np.float64])


def matrices(rows=(0, 70), cols=(1, 40), finite=False):
    return hnp.arrays(
        FLOATS,
        st.tuples(st.integers(*rows), st.integers(*cols)),
        elements=st.floats(-1e6, 1e6, width=32)
        if finite
        else st.floats(width=32, allow_nan=True, allow_infinity=True),
    )


def assert_same_bits(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)  # NaN equals NaN here
    numbers = ~np.isnan(b)  # a NaN's sign bit carries no value
    np.testing.assert_array_equal(np.signbit(a[numbers]), np.signbit(b[numbers]))


@given(matrices())
def test_row_max_is_numpy_row_max(x):
    # a transposed copy for >= 32 rows of <= 32 columns. The one freedom: a row whose maximum is
    # zero, holding both 0.0 and -0.0, may give either (IEEE max leaves the sign of a tie of zeros
    # open, and numpy's two reductions visit the row in different orders). As the shift that
    # cross-entropy subtracts, either zero gives the same loss and gradient.
    got, expected = backend.row_max(x), x.max(axis=1, keepdims=True)
    zero = expected == 0
    np.testing.assert_array_equal(got[zero], expected[zero])
    got[zero] = expected[zero]
    assert_same_bits(got, expected)


@given(
    hnp.arrays(
        FLOATS,
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=70),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    )
)
def test_relu_is_numpy_maximum_with_zero(x):
    assert_same_bits(backend.relu(x), np.maximum(x, 0))


def test_constants_are_one_read_only_array_per_value_and_dtype_up_to_a_size():
    for size in (3, 10, 7, backend._SMALL, backend._SMALL + 1):
        x = np.linspace(-1, 1, size, dtype=np.float32)
        assert_same_bits(backend.relu(x), np.maximum(x, 0))
        ones = backend.constant(1, size, np.dtype(np.float64))
        assert ones.shape == (size,) and np.all(ones == 1)
    for value, dtype in [(0, np.float32), (1, np.float64)]:
        kept = backend._CONSTANTS[value, np.dtype(dtype)]
        assert kept.size == backend._SMALL and not kept.flags.writeable


def summation_bound(x, axis):
    """|float sum - exact sum| <= n * eps * sum(|x|) for any order of summation."""
    n = x.shape[axis]
    return n * np.finfo(x.dtype).eps * np.abs(x.astype(np.float64)).sum(axis=axis)


@given(matrices(finite=True))
def test_column_sums_within_the_summation_bound(g):
    got, exact = backend.column_sums(g), g.astype(np.float64).sum(axis=0)
    assert got.shape == (g.shape[1],) and got.dtype == g.dtype
    assert np.all(np.abs(got - exact) <= summation_bound(g, 0))


@given(matrices(finite=True))
def test_row_sums_within_the_summation_bound(x):
    got, exact = backend.row_sums(x), x.astype(np.float64).sum(axis=1)
    assert got.shape == (x.shape[0],) and got.dtype == x.dtype
    assert np.all(np.abs(got - exact) <= summation_bound(x, 1))
