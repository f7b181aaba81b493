"""Second and third derivatives of every case in the table, against central differences (float64,
random cotangents, every element) and against PyTorch's double backward where it is installed."""

import functools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygrad_np as tg
from cases import GRAD_CASES
from tinygrad_np import GradcheckError, Tensor, gradcheck, ops
from tinygrad_np.nn import functional as F

try:
    import torch
except ImportError:
    torch = None

# Higher-order checks cost a reverse pass per input element per evaluation: fewer examples than
# the first-order table, which already draws 200 per case in CI.
SECOND = settings(max_examples=30)
THIRD = settings(max_examples=10)

# the elementwise primitives and composites: checked to third order as well
ELEMENTWISE = [
    "Neg", "Exp", "Log", "ReLU", "Tanh", "Sigmoid", "Cast", "Add", "Mul", "Div", "Pow", "Maximum",
    "Where", "sub", "rdiv_const", "pow_const", "rpow_const", "sqrt", "abs", "clip", "minimum",
    "clip_tensor_bounds",
    "leaky_relu", "gelu", "gelu_tanh", "Erf", "Erfc", "softplus", "silu", "mish", "elu", "celu", "selu", "hardtanh", "relu6",
    "hardsigmoid", "hardswish", "softsign", "square", "reciprocal", "rsqrt", "exp2", "log2",
    "log10", "logaddexp", "Sin", "Cos", "Arcsin", "Arctan", "Arcsinh", "Arccosh", "Arctanh",
    "Expm1", "Log1p", "Step", "Arctan2", "Hypot", "tan", "arccos", "sinh", "cosh", "ceil",
    "round", "trunc", "sign", "remainder", "rmod_const", "fmod", "fmax", "fmin",
]  # fmt: skip


def primitives() -> set[str]:
    return {
        name
        for name, obj in vars(ops).items()
        if isinstance(obj, type) and issubclass(obj, ops.Rule) and obj not in (ops.Rule, ops.Op)
    }


@pytest.fixture(autouse=True)
def check_every_gradient(monkeypatch):
    """Built-in rules skip the engine's per-gradient check; here they all get it, in both namespaces."""
    for name in primitives():
        monkeypatch.setattr(getattr(ops, name), "_trusted", False)


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
@SECOND
@given(data=st.data())
def test_second_order(name, data):
    case = GRAD_CASES[name]
    arrays, kwargs = data.draw(case.higher)
    assert gradcheck(functools.partial(case.fn, **kwargs), *arrays, order=2)


@pytest.mark.parametrize("name", ELEMENTWISE)
@THIRD
@given(data=st.data())
def test_third_order(name, data):
    case = GRAD_CASES[name]
    arrays, kwargs = data.draw(case.higher)
    assert gradcheck(functools.partial(case.fn, **kwargs), *arrays, order=3)


def test_every_primitive_and_composite_is_checked_to_second_order():
    # test_second_order runs over the whole table; every primitive must be in it
    missing = primitives() - set(GRAD_CASES)
    assert not missing, f"primitives without a second-order gradient test: {sorted(missing)}"
    assert set(ELEMENTWISE) <= set(GRAD_CASES)


class WrongSecond(tg.Rule):
    """x^2 whose vjp takes x out of the graph: right first derivative, wrong second."""

    def forward(self, xp, x):
        return x * x

    def vjp(self, xp, g, out, x):
        return (g * (2 * np.asarray(x)),)


def test_a_rule_with_a_wrong_vjp_of_vjp_fails_the_second_order_check():
    x = np.array([0.5, -1.5, 2.0])
    assert gradcheck(lambda t: WrongSecond.apply(t), x)  # first order is right
    with pytest.raises(GradcheckError, match="order 2: input 0"):
        gradcheck(lambda t: WrongSecond.apply(t), x, order=2)


class NdarraySquare(tg.Op):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return (grad * 2 * self.x,)


def test_an_ndarray_op_runs_first_order_and_refuses_a_second_derivative():
    x = np.array([0.5, -1.5, 2.0])
    assert gradcheck(lambda t: NdarraySquare.apply(t), x)
    with pytest.raises(tg.HigherOrderError, match=r"NdarraySquare .*tinygrad_np\.Rule"):
        gradcheck(lambda t: NdarraySquare.apply(t), x, order=2)


# --- against PyTorch's double backward ---

TORCH_CASES = sorted(name for name, case in GRAD_CASES.items() if case.torch_fn is not None)


def _torch_bce_from_logs(p, target, reduction):
    t = torch.from_numpy(np.asarray(target))
    loss = -(t * p.log().clamp(min=-100) + (1 - t) * (1 - p).log().clamp(min=-100))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def _torch_cumprod_by_products(a, axis):
    x = a.reshape(-1) if axis is None else a.movedim(axis, 0)
    outs = [x[0]]
    for row in x[1:]:
        outs.append(outs[-1] * row)
    out = torch.stack(outs) if outs else x
    return out if axis is None else out.movedim(0, axis)


def _torch_prod_by_products(a, axis, keepdims):
    dims = range(a.ndim) if axis is None else [axis] if isinstance(axis, int) else axis
    dims = sorted({d % a.ndim for d in dims}) if a.ndim else []
    rest = [d for d in range(a.ndim) if d not in dims]
    x = a.permute(rest + dims).reshape([a.shape[d] for d in rest] + [-1])
    out = torch.ones_like(x[..., 0])
    for i in range(x.shape[-1]):
        out = out * x[..., i]
    kept = [1 if d in dims else n for d, n in enumerate(a.shape)]
    return out.reshape(kept) if keepdims else out


# torch.nn.functional.binary_cross_entropy's double backward divides by p (1 - p) + 1e-12, which
# is 1e-10 off the exact value at p = 0.02 (test_bce_second_derivative_is_exact shows ours is
# exact); its composition from logs is exact, and serves as the oracle instead. torch's cumprod
# and prod double backwards divide by the input (2e-308 gives 1e290 where the exact value is
# -0.27); their compositions from products are exact
TORCH_SECOND_ORDER = {
    "binary_cross_entropy": _torch_bce_from_logs,
    "cumprod": _torch_cumprod_by_products,
    "prod": _torch_prod_by_products,
}


def second_derivatives(case, arrays, kwargs, lib, torch_fn=None):
    """d/dx sum_i(w_i * (d/dx_i sum(fn(x) * v))): random v and w, in our library or torch's."""
    rng = np.random.default_rng(7)
    if lib == "torch":
        xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
        out = torch_fn(*xs, **kwargs)
        if out is None:
            return None
        v = torch.from_numpy(rng.standard_normal(tuple(out.shape)))
        g1 = torch.autograd.grad(out, xs, v, create_graph=True, allow_unused=True)
        ws = [torch.from_numpy(rng.standard_normal(a.shape)) for a in arrays]
        s = sum((g * w).sum() for g, w in zip(g1, ws) if g is not None and g.requires_grad)
        if not isinstance(s, torch.Tensor):
            return [np.zeros(a.shape) for a in arrays]
        g2 = torch.autograd.grad(s, xs, allow_unused=True)
        # torch gives a ZeroTensor (no numpy view) where a second derivative is identically zero
        return [
            np.zeros(a.shape) if g is None or g._is_zerotensor() else g.numpy()
            for a, g in zip(arrays, g2)
        ]
    xs = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    out = case.fn(*xs, **kwargs)
    v = Tensor(rng.standard_normal(out.shape), dtype=np.float64)
    g1 = tg.autograd.grad(out, xs, v, create_graph=True, allow_unused=True)
    ws = [Tensor(rng.standard_normal(a.shape), dtype=np.float64) for a in arrays]
    terms = [(g * w).sum() for g, w in zip(g1, ws) if g is not None and g.requires_grad]
    if not terms:
        return [np.zeros(a.shape) for a in arrays]
    s = functools.reduce(lambda a, b: a + b, terms)
    g2 = tg.autograd.grad(s, xs, allow_unused=True)
    return [np.zeros(a.shape) if g is None else g.data for a, g in zip(arrays, g2)]


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("name", TORCH_CASES)
@SECOND
@given(data=st.data())
def test_second_derivatives_match_torch(name, data):
    case = GRAD_CASES[name]
    arrays, kwargs = data.draw(case.higher)
    if name == "Pow":  # see test_pow_second_derivative_at_a_zero_exponent
        assume(np.all(np.asarray(arrays[1]) != 0))
    theirs = second_derivatives(
        case, arrays, kwargs, "torch", TORCH_SECOND_ORDER.get(name, case.torch_fn)
    )
    if theirs is None:  # an input torch cannot express
        return
    ours = second_derivatives(case, arrays, kwargs, "ours")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"input {i}")


def test_pow_second_derivative_at_a_zero_exponent():
    """d/dy of d(x^y)/dx at y = 0 is 1/x. PyTorch masks its dx by y == 0 and reports 0 there; our
    mask is only at x = 0 and y = 0 (where x^(y-1) is inf), so the value stays exact, as central
    differences confirm."""
    x = Tensor(np.array(2.0), dtype=np.float64, requires_grad=True)
    y = Tensor(np.array(0.0), dtype=np.float64, requires_grad=True)
    gx, _ = tg.autograd.grad(x**y, [x, y], create_graph=True)
    assert gx.item() == 0.0
    assert tg.autograd.grad(gx, y)[0].item() == 0.5
    assert gradcheck(lambda a, b: a**b, np.array([1.0, 2.0]), np.array([0.0, 0.0]), order=2)


def test_bce_second_derivative_is_exact():
    """d2/dp2 of -log(1 - p) (target 0) is 1 / (1 - p)^2: exact to rounding at p = 0.02."""
    p = Tensor(np.array([0.02]), dtype=np.float64, requires_grad=True)
    (g,) = tg.autograd.grad(F.binary_cross_entropy(p, np.zeros(1)), p, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), p)
    exact = float(1 / (1 - Fraction(0.02)) ** 2)
    assert abs(h.item() - exact) <= 2 * np.spacing(exact)
