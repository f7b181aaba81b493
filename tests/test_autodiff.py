"""autograd.grad and the function transforms: semantics, errors, memory, and the MLP Hessian-vector
product, forward mode and gradient penalty against PyTorch; Newton's method on logistic regression."""

import gc
import weakref

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import Tensor
from tinygrad_np.nn import functional as F

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
RNG = np.random.default_rng(0)


def f64(a, requires_grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), dtype=np.float64, requires_grad=requires_grad)


# --- autograd.grad ---


def test_grad_returns_a_tuple_equal_to_backward_and_leaves_grad_alone():
    a = RNG.standard_normal((3, 4))
    x, w = f64(a), f64(a.T @ a)
    out = ((x @ w).tanh() * x).sum()
    gx, gw = tg.autograd.grad(out, [x, w])
    assert x.grad is None and w.grad is None
    ((x @ w).tanh() * x).sum().backward()
    np.testing.assert_allclose(gx.data, x.grad, rtol=1e-14)
    np.testing.assert_allclose(gw.data, w.grad, rtol=1e-14)
    assert not gx.requires_grad  # first order: plain values


def test_grad_of_a_single_tensor_input_and_of_an_intermediate():
    x = f64([1.0, 2.0, 3.0])
    h = x * x
    out = (h * 3).sum()
    (gh,) = tg.autograd.grad(out, h, retain_graph=True)
    np.testing.assert_array_equal(gh.data, [3.0, 3.0, 3.0])
    (gx,) = tg.autograd.grad(out, x)
    np.testing.assert_array_equal(gx.data, 6 * x.data)


def test_grad_sums_over_several_outputs_with_their_grad_outputs():
    x = f64([1.0, -2.0])
    y1, y2 = x * 2, x * x
    (g,) = tg.autograd.grad([y1, y2], [x], [np.array([1.0, 1.0]), np.array([0.5, 2.0])])
    np.testing.assert_allclose(g.data, 2 + np.array([0.5, 2.0]) * 2 * x.data)


def test_unused_inputs_are_an_error_or_none():
    x, y = f64([1.0]), f64([2.0])
    with pytest.raises(RuntimeError, match=r"inputs\[1\] \(shape \(1,\)\) was not used.*allow_unused"):
        tg.autograd.grad((x * 2).sum(), [x, y], retain_graph=True)
    gx, gy = tg.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None and gx.data.tolist() == [2.0]


def test_grad_errors_name_the_problem():
    x = f64([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"outputs\[0\] has shape \(2,\).*grad_outputs"):
        tg.autograd.grad(x * 2, x)
    with pytest.raises(ValueError, match=r"grad_outputs\[0\] has shape \(3,\)"):
        tg.autograd.grad(x * 2, x, np.ones(3))
    with pytest.raises(RuntimeError, match=r"outputs\[0\] .* does not require grad"):
        tg.autograd.grad(f64([1.0], requires_grad=False) * 2, x)
    with pytest.raises(RuntimeError, match=r"inputs\[0\] .* does not require grad"):
        tg.autograd.grad((x * 2).sum(), f64([1.0], requires_grad=False))
    with pytest.raises(TypeError, match=r"inputs\[0\] is a ndarray, not a Tensor"):
        tg.autograd.grad((x * 2).sum(), [np.ones(2)])


def test_first_order_grad_frees_the_graph_and_create_graph_keeps_it():
    x = f64([1.0, 2.0])
    out = (x.exp() * x).sum()
    tg.autograd.grad(out, x)
    with pytest.raises(RuntimeError, match="freed"):
        tg.autograd.grad(out, x)
    out = (x.exp() * x).sum()
    tg.autograd.grad(out, x, create_graph=True)
    tg.autograd.grad(out, x)  # still there: create_graph implies retain_graph


def test_create_graph_gives_differentiable_gradients():
    x = f64([0.5, -1.0, 2.0])
    (g,) = tg.autograd.grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(g.data, 3 * x.data**2)
    (h,) = tg.autograd.grad(g.sum(), x, create_graph=True)
    np.testing.assert_allclose(h.data, 6 * x.data)
    (t,) = tg.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(t.data, [6.0, 6.0, 6.0])


def test_backward_with_create_graph_points_to_autograd_grad():
    x = f64([1.0])
    with pytest.raises(TypeError, match=r"autograd\.grad\(loss, \[x\], create_graph=True\)"):
        (x * x).sum().backward(create_graph=True)


def test_a_create_graph_graph_is_freed_once_its_results_are_dropped():
    x = f64(RNG.standard_normal((4, 3)))
    w = f64(RNG.standard_normal((3, 2)))
    loss = (x @ w).tanh().sum()
    (gw,) = tg.autograd.grad(loss, w, create_graph=True)
    refs = [weakref.ref(gw), weakref.ref(gw._parents[0]), weakref.ref(loss)]
    del loss, gw
    assert all(r() is None for r in refs)  # by reference counting alone: no cycles
    gc.collect()


def test_a_first_order_backward_still_releases_the_graph_as_it_walks():
    x = f64([1.0, 2.0])
    y = x.exp()
    out = (y * 2).sum()
    out.backward()
    assert y._op == "released" and y._parents == ()


# --- transforms ---


def test_grad_composes_to_any_order_and_takes_plain_arrays():
    f = lambda x: (x**4).sum()  # noqa: E731
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(tg.grad(f)(x).data, 4 * x**3)
    second = tg.grad(lambda x: tg.grad(f)(x).sum())(x)
    np.testing.assert_allclose(second.data, 12 * x**2)
    third = tg.grad(lambda x: tg.grad(lambda y: tg.grad(f)(y).sum())(x).sum())(x)
    np.testing.assert_allclose(third.data, 24 * x)
    assert not second.requires_grad and second.dtype == np.float64


def test_grad_argnums_and_value_and_grad_with_aux():
    f = lambda a, b: (a * b.exp()).sum()  # noqa: E731
    a, b = np.array([1.0, 2.0]), np.array([0.0, 1.0])
    ga, gb = tg.grad(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga.data, np.exp(b))
    np.testing.assert_allclose(gb.data, a * np.exp(b))
    np.testing.assert_allclose(tg.grad(f, argnums=1)(a, b).data, a * np.exp(b))
    (value, aux), g = tg.value_and_grad(lambda a: ((a * a).sum(), "aux"), has_aux=True)(a)
    assert value.item() == 5.0 and aux == "aux"
    np.testing.assert_allclose(g.data, 2 * a)
    with pytest.raises(ValueError, match=r"argnums 2 does not name one of the 2"):
        tg.grad(f, argnums=2)(a, b)
    with pytest.raises(ValueError, match=r"scalar \(size-1\) Tensor, got shape \(2,\)"):
        tg.grad(lambda a: a * 2)(a)


def test_a_transform_inside_a_loss_keeps_the_graph_to_closed_over_parameters():
    w = f64([0.5, -1.0])
    x = np.array([1.0, 2.0])
    gx = tg.grad(lambda x: ((x * w).tanh()).sum())(x)  # depends on w: keeps its graph
    assert gx.requires_grad
    (gx * gx).sum().backward()
    # d/dw sum((w (1 - tanh(x w)^2))^2), by central differences
    def penalty(wv):
        s = 1 - np.tanh(x * wv) ** 2
        return ((wv * s) ** 2).sum()
    eps = 1e-6
    numeric = [(penalty(w.data + eps * e) - penalty(w.data - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(w.grad, numeric, rtol=1e-7)


def test_jacobian_and_hessian():
    a = RNG.standard_normal((3, 3))
    x = RNG.standard_normal(3)
    jac = tg.jacobian(lambda x: Tensor(a, dtype=np.float64) @ x.tanh())(x)
    np.testing.assert_allclose(jac.data, a * (1 - np.tanh(x) ** 2), rtol=1e-12)
    hess = tg.hessian(lambda x: (x * (Tensor(a, dtype=np.float64) @ x)).sum())(x)
    np.testing.assert_allclose(hess.data, a + a.T, rtol=1e-12)
    blocks = tg.hessian(lambda x, y: (x * x * y).sum(), argnums=(0, 1))(x, x)
    np.testing.assert_allclose(blocks[0][1].data, np.diag(2 * x), rtol=1e-12)
    np.testing.assert_allclose(blocks[1][1].data, np.zeros((3, 3)))


def test_jvp_equals_the_jacobian_times_the_tangent():
    x, t = RNG.standard_normal(4), RNG.standard_normal(4)
    f = lambda x: (x.exp() * x).reshape(2, 2)  # noqa: E731
    out, tan = tg.jvp(f, (x,), (t,))
    jac = tg.jacobian(f)(x).data.reshape(4, 4)
    np.testing.assert_allclose(tan.data.reshape(-1), jac @ t, rtol=1e-12)
    np.testing.assert_allclose(out.data.reshape(-1), np.exp(x) * x)


def test_vjp_and_hvp():
    x = RNG.standard_normal(3)
    out, pull = tg.vjp(lambda x: x.tanh() * 2, x)
    v = RNG.standard_normal(3)
    (g,) = pull(v)
    np.testing.assert_allclose(g.data, v * 2 * (1 - np.tanh(x) ** 2))
    value, hv = tg.hvp(lambda x: (x**3).sum(), (x,), (v,))
    np.testing.assert_allclose(hv.data, 6 * x * v)
    assert value.item() == pytest.approx((x**3).sum())


# --- against PyTorch, and Newton's method ---


def mlp_params(rng, sizes=(784, 32, 10)):
    return [
        (rng.standard_normal((a, b)) / np.sqrt(a), rng.standard_normal(b) * 0.1)
        for a, b in zip(sizes[:-1], sizes[1:])
    ]


@needs_torch
def test_mlp_hessian_vector_product_equals_torch():
    rng = np.random.default_rng(1)
    (w1, b1), (w2, b2) = mlp_params(rng)
    x = rng.standard_normal((16, 784))
    y = rng.integers(0, 10, 16)
    params = [w1, b1, w2, b2]
    vs = [rng.standard_normal(p.shape) for p in params]

    def ours(w1, b1, w2, b2):
        return F.cross_entropy((Tensor(x, dtype=np.float64) @ w1 + b1).tanh() @ w2 + b2, y)

    def theirs(w1, b1, w2, b2):
        h = (torch.from_numpy(x) @ w1 + b1).tanh()
        return torch.nn.functional.cross_entropy(h @ w2 + b2, torch.from_numpy(y))

    value, hv = tg.hvp(ours, params, vs)
    t_value, t_hv = torch.autograd.functional.hvp(
        theirs, tuple(torch.from_numpy(p) for p in params), tuple(torch.from_numpy(v) for v in vs)
    )
    assert value.item() == pytest.approx(t_value.item(), rel=1e-12)
    for a, b in zip(hv, t_hv):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-10, atol=1e-13)


@needs_torch
def test_jvp_equals_torch_func_jvp():
    rng = np.random.default_rng(2)
    (w1, b1), (w2, b2) = mlp_params(rng, (6, 5, 3))
    x, t = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))

    def ours(x):
        return ((x @ w1 + b1).tanh() @ w2 + b2).log_softmax(axis=-1)

    def theirs(x):
        h = (x @ torch.from_numpy(w1) + torch.from_numpy(b1)).tanh()
        return (h @ torch.from_numpy(w2) + torch.from_numpy(b2)).log_softmax(-1)

    out, tan = tg.jvp(ours, (x,), (t,))
    t_out, t_tan = torch.func.jvp(theirs, (torch.from_numpy(x),), (torch.from_numpy(t),))
    np.testing.assert_allclose(out.data, t_out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(tan.data, t_tan.numpy(), rtol=1e-10, atol=1e-13)


@needs_torch
def test_gradient_penalty_gradient_equals_torch():
    """WGAN-GP: the gradient of ((|d critic / d x| - 1)^2).mean() with respect to the weights."""
    rng = np.random.default_rng(3)
    (w1, b1), (w2, b2) = mlp_params(rng, (5, 8, 1))
    x = rng.standard_normal((6, 5))
    ours = [f64(p) for p in (w1, b1, w2, b2)]
    theirs = [torch.tensor(p, requires_grad=True) for p in (w1, b1, w2, b2)]

    xs = f64(x)
    critic = ((xs @ ours[0] + ours[1]).tanh() @ ours[2] + ours[3]).sum()
    (gx,) = tg.autograd.grad(critic, xs, create_graph=True)
    penalty = (((gx * gx).sum(axis=1).sqrt() - 1) ** 2).mean()
    penalty.backward()

    xt = torch.tensor(x, requires_grad=True)
    t_critic = ((xt @ theirs[0] + theirs[1]).tanh() @ theirs[2] + theirs[3]).sum()
    (t_gx,) = torch.autograd.grad(t_critic, xt, create_graph=True)
    t_penalty = ((t_gx.norm(dim=1) - 1) ** 2).mean()
    t_penalty.backward()
    assert penalty.item() == pytest.approx(t_penalty.item(), rel=1e-12)
    assert ours[3].grad is None and theirs[3].grad is None  # the output bias leaves d/dx alone
    for a, b in zip(ours[:3], theirs[:3]):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_newton_logistic_regression_converges_in_fewer_than_10_iterations():
    rng = np.random.default_rng(4)
    n, d = 200, 5
    x = rng.standard_normal((n, d))
    true_w = rng.standard_normal(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ true_w))).astype(np.float64)
    xt = Tensor(x, dtype=np.float64)

    def loss(w):
        return F.binary_cross_entropy_with_logits(xt @ w, y) + 1e-3 * (w * w).sum()

    w = np.zeros(d)
    for iteration in range(1, 10):
        g = tg.grad(loss)(w).data
        h = tg.hessian(loss)(w).data
        w = w - np.linalg.solve(h, g)
        if np.abs(tg.grad(loss)(w).data).max() < 1e-10:
            break
    assert np.abs(tg.grad(loss)(w).data).max() < 1e-10
    assert iteration < 10
