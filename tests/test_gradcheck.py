"""gradcheck itself: it passes right ops, fails wrong ones (negative controls), and reports clearly."""

import numpy as np
import pytest
from hypothesis import given

from tinygrad_np import GradcheckError, Op, gradcheck
from tinygrad_np.testing import (
    array_and_axis,
    arrays,
    broadcastable_arrays,
    distinct_arrays,
    matmul_pair,
)


class Softplus(Op):
    """out = log(1 + exp(x));  dx = g * sigmoid(x)   (the README's example of a user op)"""

    def forward(self, x):
        self.x = x
        return np.logaddexp(0, x)

    def backward(self, grad):
        return (grad / (1 + np.exp(-self.x)),)


class SoftplusForgetsGrad(Softplus):
    def backward(self, grad):
        return (1 / (1 + np.exp(-self.x)),)  # wrong: does not multiply by grad


class SoftplusWrongSign(Softplus):
    def backward(self, grad):
        return (-grad / (1 + np.exp(-self.x)),)


@given(arrays(lo=-5, hi=5))
def test_user_op_passes(x):
    assert gradcheck(lambda t: Softplus.apply(t), x)


@pytest.mark.parametrize("bad", [SoftplusForgetsGrad, SoftplusWrongSign])
def test_negative_control_wrong_backward_fails(bad):
    with pytest.raises(
        GradcheckError,
        match=r"input 0 \(shape \(3, 2\)\): \d+ of 6 elements differ; "
        r"worst at \(\d, \d\): analytic .*, numeric ",
    ):
        gradcheck(lambda t: bad.apply(t), np.linspace(-2, 2, 6).reshape(3, 2))


def test_negative_control_wrong_grad_for_second_input():
    class MulBad(Op):
        def forward(self, x, y):
            self.x, self.y = x, y
            return x * y

        def backward(self, grad):
            return grad * self.y, grad * self.y  # second should be grad * x

    with pytest.raises(GradcheckError, match=r"input 1 "):
        gradcheck(lambda a, b: MulBad.apply(a, b), np.array([1.0, 2.0]), np.array([3.0, -1.0]))


def test_unused_input_has_zero_gradient():
    assert gradcheck(lambda a, b: a * 2.0, np.ones(2), np.ones(3))


def test_non_finite_output_is_reported():
    with (
        pytest.raises(GradcheckError, match=r"output is not finite"),
        np.errstate(invalid="ignore"),
    ):
        gradcheck(lambda a: a.log(), np.array([-1.0, 1.0]))


def test_gradcheck_leaves_inputs_untouched():
    x = np.array([1.0, 2.0])
    gradcheck(lambda a: a * a, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_float32_inputs_are_checked_in_float64():
    seen = []
    gradcheck(lambda a: seen.append(a.dtype) or a.exp(), np.ones(2, np.float32))
    assert set(seen) == {np.dtype(np.float64)}


@given(broadcastable_arrays(3))
def test_broadcastable_arrays_broadcast(xs):
    np.broadcast_shapes(*(x.shape for x in xs))
    assert all(x.dtype == np.float64 for x in xs)


@given(matmul_pair())
def test_matmul_pair_is_valid_for_np_matmul(pair):
    np.matmul(*pair)


@given(array_and_axis())
def test_array_and_axis_is_valid(case):
    x, axis = case
    x.sum(axis=axis)


@given(distinct_arrays())
def test_distinct_arrays_have_no_ties(x):
    assert len(np.unique(x)) == x.size


@given(arrays(lo=-1, hi=1, away_from=(0.0,), margin=0.1))
def test_arrays_respect_domain(x):
    assert np.all(np.abs(x) <= 1) and np.all(np.abs(x) >= 0.1)
