"""Optimizer updates against hand-computed ones (and PyTorch where installed); state round trips."""

import numpy as np
import pytest

from tinygrad_np import Tensor, optim


def param(values):
    p = Tensor(np.asarray(values, np.float64), requires_grad=True, dtype=np.float64)
    return p


def run(opt_cls, grads, **kw):
    p = param([1.0, -2.0])
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = np.asarray(g, np.float64)
        opt.step()
    return p.data


GRADS = [[0.5, -1.0], [0.25, 2.0], [-1.0, 0.5]]


def test_sgd_plain():
    expected = np.array([1.0, -2.0]) - 0.1 * np.sum(GRADS, axis=0)
    np.testing.assert_allclose(run(optim.SGD, GRADS, lr=0.1), expected)


def test_sgd_momentum_weight_decay_nesterov_by_hand():
    lr, m, wd = 0.1, 0.9, 0.01
    for nesterov in (False, True):
        p, buf = np.array([1.0, -2.0]), None
        for g in map(np.array, GRADS):
            d = g + wd * p
            buf = d.copy() if buf is None else m * buf + d
            p = p - lr * (d + m * buf if nesterov else buf)
        got = run(optim.SGD, GRADS, lr=lr, momentum=m, weight_decay=wd, nesterov=nesterov)
        np.testing.assert_allclose(got, p, rtol=1e-12)


@pytest.mark.parametrize("cls, decoupled", [(optim.Adam, False), (optim.AdamW, True)])
def test_adam_by_hand(cls, decoupled):
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
    p, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(map(np.array, GRADS), start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(run(cls, GRADS, lr=lr, weight_decay=wd), p, rtol=1e-12)


@pytest.mark.parametrize(
    "cls, kw, torch_name",
    [
        (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, "SGD"),
        (optim.Adam, {"lr": 0.01, "weight_decay": 0.1}, "Adam"),
        (optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}, "AdamW"),
    ],
)
def test_matches_torch(cls, kw, torch_name):
    torch = pytest.importorskip("torch")
    t = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, torch_name)([t], **kw)
    for g in GRADS:
        t.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose(run(cls, GRADS, **kw), t.detach().numpy(), rtol=1e-12)


def test_zero_grad_skip_dedupe_and_empty():
    a, b = param([1.0]), param([2.0])
    opt = optim.SGD([a, b, a], lr=1.0)
    assert len(opt.params) == 2
    a.grad = np.array([1.0])
    opt.step()  # b has no grad: skipped, not an error
    assert a.data[0] == 0.0 and b.data[0] == 2.0
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(
        ValueError, match=r"SGD got no parameters; did you pass model.parameters\(\)\?"
    ):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam: learning rate must be positive, got -1"):
        optim.Adam([a], lr=-1)
    with pytest.raises(
        TypeError, match=r"every parameter must be a Tensor with requires_grad=True"
    ):
        optim.SGD([Tensor([1.0])], lr=0.1)


def test_float32_parameters_stay_float32():
    p = Tensor([1.0, 2.0], requires_grad=True)
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-3), optim.AdamW([p], lr=0.1)):
        p.grad = np.ones(2, np.float32)
        opt.step()
        assert p.data.dtype == np.float32
        assert all(
            b.dtype == np.float32 for bufs in opt.state.values() for b in bufs if b is not None
        )


@pytest.mark.parametrize(
    "cls, kw", [(optim.SGD, {"lr": 0.1, "momentum": 0.9}), (optim.Adam, {"lr": 0.1})]
)
def test_state_dict_resume_equals_uninterrupted(cls, kw):
    straight = run(cls, GRADS, **kw)
    p = param([1.0, -2.0])
    opt = cls([p], **kw)
    for g in GRADS[:2]:
        p.grad = np.asarray(g)
        opt.step()
    state = opt.state_dict()
    q = param(p.data.copy())
    resumed = cls([q], lr=123.0)
    resumed.load_state_dict(state)
    q.grad = np.asarray(GRADS[2])
    resumed.step()
    np.testing.assert_allclose(q.data, straight, rtol=1e-12)


def test_schedules():
    p = param([1.0])
    opt = optim.SGD([p], lr=1.0)
    cos = optim.CosineLR(opt, total=4, min_lr=0.0)
    lrs = []
    for _ in range(4):
        cos.step()
        lrs.append(opt.lr)
    np.testing.assert_allclose(
        lrs, [0.5 + 0.5 * np.cos(np.pi * k / 4) for k in range(1, 5)], atol=1e-12
    )
    opt.lr = 1.0
    step = optim.StepLR(opt, step_size=2, gamma=0.5)
    got = []
    for _ in range(5):
        step.step()
        got.append(opt.lr)
    assert got == [1.0, 0.5, 0.5, 0.25, 0.25]
    state = step.state_dict()
    again = optim.StepLR(opt, step_size=2, gamma=0.5)
    again.load_state_dict(state)
    assert opt.lr == 0.25


def test_sgd_momentum_with_weight_decay_on_a_0d_parameter_keeps_its_buffer():
    p = Tensor(np.float64(1.0), requires_grad=True, dtype=np.float64)
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    buf, x = 0.0, 1.0
    for _ in range(3):
        p.grad = np.asarray(2.0)
        opt.step()
        buf = 0.9 * buf + (2.0 + 0.5 * x) if buf else 2.0 + 0.5 * x
        x -= 0.1 * buf
    assert type(opt.state["momentum_buffer"][0]) is np.ndarray
    np.testing.assert_allclose(p.data, x, rtol=1e-12)


def test_load_state_dict_names_a_value_that_is_not_a_number():
    opt = optim.SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: lr='x' is not a number"):
        opt.load_state_dict({**state, "lr": "x"})
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: step='2.5' is not a whole"):
        opt.load_state_dict({**state, "step": "2.5"})


def test_the_step_count_is_saved_as_step_and_read_under_its_old_name_too():
    opt = optim.Adam([Tensor(np.ones(2), requires_grad=True)], lr=0.1)
    opt.steps = 7
    state = opt.state_dict()
    assert state["step"] == 7 and "steps" not in state
    opt.load_state_dict({**{k: v for k, v in state.items() if k != "step"}, "steps": 5})
    assert opt.steps == 5
