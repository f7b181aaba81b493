"""Elementwise ops beyond the case table's gradients: numpy's values and conventions (NaN in
fmax/fmin, halves in round, the sign of mod and fmod, integer dtypes), zero gradients of the step
functions, and every numpy ufunc with a rule equal to numpy on the same data."""

import math

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import Tensor, nn, numpy_api
from tinygrad_np.nn import functional as F


def leaf(values, dtype=np.float64):
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


@pytest.mark.parametrize("name", ["fmax", "fmin"])
def test_fmax_fmin_skip_nan_and_send_the_gradient_to_the_operand_chosen(name):
    x = leaf([1.0, np.nan, 3.0, np.nan, 2.0])
    y = leaf([2.0, 5.0, np.nan, np.nan, 1.0])
    out = getattr(x, name)(y)
    np.testing.assert_array_equal(out.data, getattr(np, name)(x.data, y.data))
    out.backward(np.ones(5))
    chose_x = np.array([name == "fmin", False, True, False, name == "fmax"])
    np.testing.assert_array_equal(x.grad, chose_x.astype(float))
    chose_y = np.array([name == "fmax", True, False, False, name == "fmin"])
    np.testing.assert_array_equal(y.grad, chose_y.astype(float))


def test_fmax_broadcasts_a_nan_scalar():
    x = leaf([[1.0, -2.0]])
    out = x.fmax(np.nan)
    out.sum().backward()
    np.testing.assert_array_equal(out.data, [[1.0, -2.0]])
    np.testing.assert_array_equal(x.grad, [[1.0, 1.0]])


def test_round_takes_halves_to_even_as_numpy():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51])
    np.testing.assert_array_equal(Tensor(x, dtype=np.float64).round().data, np.round(x))


def test_mod_has_the_sign_of_the_divisor_and_fmod_of_the_dividend():
    x = np.array([-7.0, -7.0, 7.0, 7.0, 5.5, -5.5])
    y = np.array([3.0, -3.0, 3.0, -3.0, 2.0, 2.0])
    tx, ty = Tensor(x, dtype=np.float64), Tensor(y, dtype=np.float64)
    np.testing.assert_array_equal((tx % ty).data, np.mod(x, y))
    np.testing.assert_array_equal(tx.remainder(ty).data, x % y)
    np.testing.assert_array_equal(tx.fmod(ty).data, np.fmod(x, y))
    np.testing.assert_array_equal((7.0 % ty).data, np.mod(7.0, y))


def test_mod_gradients_are_one_and_minus_the_quotient():
    x, y = leaf([7.0, -7.0]), leaf([3.0, 3.0])
    (x % y).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    np.testing.assert_array_equal(y.grad, -np.floor(np.array([7.0, -7.0]) / 3.0))


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "sign"])
def test_step_functions_have_zero_gradient_and_keep_integer_dtypes(name):
    x = leaf([-1.7, -0.2, 0.4, 2.5])
    getattr(x, name)().sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros(4))
    ints = Tensor(np.array([-3, 0, 4]))
    out = getattr(ints, name)()
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.data, getattr(np, "rint" if name == "round" else name)(ints.data))


def test_float32_stays_float32_through_the_two_operand_ops():
    x = Tensor(np.array([1.0, -2.0], dtype=np.float32))
    for out in (x % 0.7, x.fmod(0.7), x.arctan2(0.5), x.hypot(2.0), x.fmax(0.0), 1.5 % x):
        assert out.dtype == np.float32


def test_arctan2_takes_y_first_as_numpy():
    y, x = np.array([1.0, -1.0, 1.0]), np.array([-1.0, -1.0, 2.0])
    np.testing.assert_array_equal(Tensor(y, dtype=np.float64).arctan2(x).data, np.arctan2(y, x))
    np.testing.assert_array_equal(np.arctan2(Tensor(y, dtype=np.float64), x).data, np.arctan2(y, x))


def test_hypot_does_not_overflow():
    x = Tensor(np.array([3e200]), dtype=np.float64)
    np.testing.assert_allclose(x.hypot(4e200).data, [5e200])


def test_pytorch_spellings_are_the_same_ops():
    x = Tensor(np.array([0.3, -0.6]), dtype=np.float64)
    for alias, name in [("asin", "arcsin"), ("acos", "arccos"), ("atan", "arctan"),
                        ("asinh", "arcsinh"), ("atanh", "arctanh"), ("mod", "remainder")]:  # fmt: skip
        args = (0.7,) if name == "remainder" else ()
        np.testing.assert_array_equal(getattr(x, alias)(*args).data, getattr(x, name)(*args).data)
    np.testing.assert_array_equal(x.atan2(0.5).data, x.arctan2(0.5).data)
    np.testing.assert_array_equal((x + 2).acosh().data, np.arccosh(x.data + 2))


# ufuncs whose Tensor form needs bool operands or is checked in test_numpy_protocol.py
NOT_HERE = {"bitwise_and", "bitwise_or", "bitwise_xor", "invert", "matmul"}
# arguments inside every op's domain: (0.2, 0.8) fits arcsin, arctanh, log; arccosh wants >= 1
DATA = np.array([[0.21, 0.37, 0.55], [0.62, 0.79, 0.45]])


@pytest.mark.parametrize(
    "ufunc", [u for u in numpy_api.UFUNCS if u.__name__ not in NOT_HERE], ids=lambda u: u.__name__
)
def test_every_ufunc_with_a_rule_equals_numpy(ufunc):
    x = DATA + (1.0 if ufunc is np.arccosh else 0.0)
    args = (x,) if ufunc.nin == 1 else (x, x[::-1] + 0.1)
    out = ufunc(*[Tensor(a, dtype=np.float64) for a in args])
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, ufunc(*args), rtol=1e-14, atol=1e-15)


def test_np_round_with_decimals_is_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"numpy.round on a Tensor: decimals=2 .* scale first"):
        np.round(Tensor([1.234]), 2)
    np.testing.assert_array_equal(np.round(Tensor([1.5, 2.5])).data, [2.0, 2.0])


def test_two_operand_ops_name_themselves_on_bad_shapes():
    a, b = Tensor(np.ones((2, 3)), requires_grad=True), Tensor(np.ones((4,)))
    for call, name in [(a.arctan2, "arctan2"), (a.hypot, "hypot"), (a.fmax, "fmax")]:
        with pytest.raises(ValueError, match=name):
            call(b)


# erf: Cody's three intervals (the edges 0.46875 and 4 included), the far tails, and specials
ERF_POINTS = np.concatenate(
    [np.linspace(-6.5, 6.5, 5201), [0.46875, -0.46875, 4.0, -4.0, 1e-300, -1e-20, 9.5, 26.0]]
)


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_erf_and_erfc_are_accurate_to_float64_rounding(name):
    expected = np.array([getattr(math, name)(v) for v in ERF_POINTS])
    got = getattr(Tensor(ERF_POINTS, dtype=np.float64), name)().data
    # math.erf/erfc are themselves within about 1 ulp; ours measured within 9e-16 of mpmath
    np.testing.assert_allclose(got, expected, rtol=2e-15, atol=0)
    specials = Tensor(np.array([np.inf, -np.inf, np.nan]), dtype=np.float64)
    want = {"erf": [1.0, -1.0, np.nan], "erfc": [0.0, 2.0, np.nan]}[name]
    np.testing.assert_array_equal(getattr(specials, name)().data, want)


def test_erf_keeps_float32_and_erfc_has_no_cancellation():
    x = Tensor(np.array([0.3, -1.7, 5.0], dtype=np.float32))
    for out in (x.erf(), x.erfc(), np.float32(2) * x.erf()):
        assert out.dtype == np.float32
    np.testing.assert_allclose(x.erf().data, [0.32862675, -0.98379046, 1.0], rtol=3e-7)
    # erfc(10) = 2.1e-45: 1 - erf(10) would be 0
    np.testing.assert_allclose(Tensor(np.array([10.0]), dtype=np.float64).erfc().data,
                               [2.088487583762545e-45], rtol=2e-15)  # fmt: skip


def test_exact_gelu_is_the_default_and_the_tanh_form_is_within_5e_4():
    x = Tensor(np.linspace(-4, 4, 81), dtype=np.float64)
    exact = x.data * 0.5 * (1 + tg.erf(x.data / np.sqrt(2)).data)
    np.testing.assert_allclose(F.gelu(x).data, exact, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(nn.GELU()(x).data, exact, rtol=1e-15, atol=1e-16)
    tanh = F.gelu(x, approximate="tanh").data
    np.testing.assert_array_equal(nn.GELU("tanh")(x).data, tanh)
    assert 1e-4 < np.abs(tanh - exact).max() < 5e-4  # the two forms differ, slightly
    # an MLP's "gelu" is the tanh form it has always been: saved checkpoints name it
    np.testing.assert_array_equal(nn.ACTIVATIONS["gelu"](x).data, tanh)
    assert repr(nn.GELU()) == "GELU(approximate='none')"


def test_gelu_names_a_bad_approximate_and_the_choices():
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(Tensor([1.0]), approximate="erf")
    with pytest.raises(ValueError, match=r"GELU: approximate must be 'none' or 'tanh', got True"):
        nn.GELU(True)
