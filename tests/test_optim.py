"""Optimizer updates against hand-computed ones (and PyTorch where installed); state round trips."""

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import Tensor, nn, optim


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
    for opt in (
        optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-3),
        optim.AdamW([p], lr=0.1),
        optim.RMSprop([p], momentum=0.9, centered=True, weight_decay=1e-3),
        optim.Adagrad([p], lr_decay=0.1, weight_decay=1e-3, initial_accumulator_value=0.1),
        optim.Adamax([p], weight_decay=1e-3),
        optim.NAdam([p], weight_decay=1e-3),
        optim.NAdam([p], weight_decay=1e-3, decoupled_weight_decay=True),
    ):
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


# --- param groups, the new optimizers and schedules, against torch.optim where installed ---

SHAPES = [(3, 2), (4,), ()]


def start_values(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def grad_sequence(steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


# (class name, constructor keywords, per-group keywords: one group per parameter)
UPDATE_CASES = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
     [{"nesterov": True}, {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.0}, {"momentum": 0.0}]),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}, [{}, {"betas": (0.8, 0.99)}, {"lr": 0.03, "eps": 1e-6}]),
    ("AdamW", {"lr": 0.01}, [{}, {"weight_decay": 0.5}, {"lr": 0.02, "betas": (0.5, 0.9)}]),
    ("RMSprop", {"lr": 0.01},
     [{"momentum": 0.9, "centered": True}, {"alpha": 0.9, "weight_decay": 0.1}, {"centered": True, "eps": 1e-4}]),
    # torch reads initial_accumulator_value from the constructor only (a group's is ignored there)
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1},
     [{}, {"weight_decay": 0.1}, {"lr_decay": 0.0, "eps": 1e-6}]),
    ("Adamax", {"lr": 0.01}, [{}, {"weight_decay": 0.1}, {"betas": (0.5, 0.9), "eps": 1e-4}]),
    ("NAdam", {"lr": 0.01},
     [{"weight_decay": 0.1},
      {"weight_decay": 0.1, "decoupled_weight_decay": True, "momentum_decay": 0.01},
      {"betas": (0.8, 0.99)}]),
]


@pytest.fixture
def torch64():
    """torch with float64 as its default dtype: its optimizers keep step counts and NAdam's
    product of momenta in the default dtype, which would round them to float32."""
    torch = pytest.importorskip("torch")
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(before)


def ours_grouped(name, kw, groups, values):
    params = [param(v) for v in values]
    opt = getattr(optim, name)([{"params": [p], **g} for p, g in zip(params, groups)], **kw)
    return params, opt


@pytest.mark.parametrize("name, kw, groups", UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
def test_update_rules_equal_torch_over_50_steps_with_param_groups(torch64, name, kw, groups):
    torch = torch64
    values, grads = start_values(), grad_sequence(50)
    params, opt = ours_grouped(name, kw, groups, values)
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    topt = getattr(torch.optim, name)(
        [{"params": [t], **g} for t, g in zip(theirs, groups)], **kw, foreach=False
    )
    for step, gs in enumerate(grads):
        for p, t, g in zip(params, theirs, gs):
            p.grad, t.grad = g.copy(), torch.tensor(g)
        opt.step()
        topt.step()
        for p, t in zip(params, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{name} step {step}")


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam"])
def test_defaults_are_torch_defaults(name):
    torch = pytest.importorskip("torch")
    ours = getattr(optim, name)([param([1.0])], lr=0.5).defaults
    theirs = getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)], lr=0.5).defaults
    for key, value in ours.items():
        assert theirs[key] == value, key


def test_param_groups_take_the_constructor_values_as_defaults_and_edits_take_effect():
    a, b, c = param([1.0, 2.0]), param([3.0]), param([4.0])
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": b}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    assert opt.param_groups[1]["params"] == [b] and opt.params == [a, b]
    opt.param_groups[0]["lr"] = 0.0  # editing a group's value changes the next step
    a.grad, b.grad = np.ones(2), np.ones(1)
    opt.step()
    assert a.data.tolist() == [1.0, 2.0] and b.data.tolist() == [2.9]
    with pytest.raises(ValueError, match=r"SGD.lr: its 2 param groups have different values "
                       r"\(\[0.0, 0.1\]\); read or set optimizer.param_groups\[i\]\['lr'\]"):
        opt.lr
    opt.lr = 0.2  # setting the shared attribute sets every group (what the schedules did before)
    assert opt.lr == 0.2 and [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    assert opt.momentum == 0.9
    opt.add_param_group({"params": [c], "momentum": 0.0})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.0
    c.grad = np.ones(1)
    opt.step()
    assert c.data.tolist() == [4.0 - 0.1]  # the rate the constructor gave: defaults, not edits
    assert "3 params in 3 groups" in repr(opt)


def test_a_group_added_later_starts_its_step_count_afresh():
    a, b = param([1.0, -1.0]), param([0.5])
    opt = optim.Adam([a], lr=0.1)
    for _ in range(5):
        a.grad = np.array([0.3, -0.2])
        opt.step()
    opt.add_param_group({"params": [b], "lr": 0.05})
    fresh = param([0.5])
    alone = optim.Adam([fresh], lr=0.05)
    for g in ([0.1], [-0.4], [0.2]):
        a.grad, b.grad, fresh.grad = np.array([0.3, -0.2]), np.array(g), np.array(g)
        opt.step()
        alone.step()
    np.testing.assert_array_equal(b.data, fresh.data)  # bias corrections from its own step 1
    assert opt.state_dict()["param_groups"][1]["first_step"] == 5


def test_param_group_errors_name_the_optimizer_the_group_and_the_fix():
    a, b = param([1.0]), param([2.0])
    with pytest.raises(ValueError, match=r"SGD: a parameter \(shape \(1,\)\) is in param groups 0 "
                       r"and 1; give each tensor to one group"):
        optim.SGD([{"params": [a, b]}, {"params": [a]}], lr=0.1)
    with pytest.raises(TypeError, match=r"Adam param group 1: every parameter must be a Tensor "
                       r"with requires_grad=True, got array"):
        optim.Adam([{"params": [a]}, {"params": [np.ones(2)]}])
    with pytest.raises(ValueError, match=r"RMSprop param group 0: unknown key 'lrr'; a param group "
                       r"holds 'params' and RMSprop's hyperparameters \(lr, alpha, eps"):
        optim.RMSprop([{"params": [a], "lrr": 0.1}])
    with pytest.raises(TypeError, match=r"SGD: params mixes Tensors and param-group dicts"):
        optim.SGD([a, {"params": [b]}], lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: params must be a list of Tensors or of param-group "
                       r"dicts, got a Tensor; wrap it in a list"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(TypeError, match=r"SGD param group 1: no lr given; pass lr= to SGD or put "
                       r"'lr' in every param group"):
        optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b]}])
    with pytest.raises(ValueError, match=r"Adagrad param group 0 has no parameters"):
        optim.Adagrad([{"params": []}])
    with pytest.raises(ValueError, match=r"NAdam param group 1: learning rate must be positive"):
        optim.NAdam([{"params": [a]}, {"params": [b], "lr": -1.0}])
    with pytest.raises(ValueError, match=r"Adamax: betas must be two numbers in \[0, 1\), got \(0.9,\)"):
        optim.Adamax([a], betas=(0.9,))
    with pytest.raises(ValueError, match=r"RMSprop: alpha and eps and weight_decay and momentum "
                       r"must be >= 0, got momentum=-0.5"):
        optim.RMSprop([a], momentum=-0.5)
    with pytest.raises(TypeError, match=r"SGD param group 0: every parameter must be a Tensor "
                       r"with requires_grad=True, got 3"):
        optim.SGD([{"params": 3}], lr=0.1)
    opt = optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD param group 1: momentum and weight_decay must be "
                       r">= 0, got -1"):
        opt.add_param_group({"params": [b], "momentum": -1})
    with pytest.raises(ValueError, match=r"SGD: a parameter \(shape \(1,\)\) is in param groups 0 and 1"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match=r"SGD.add_param_group: a param group is a dict with a "
                       r"'params' entry"):
        opt.add_param_group([b])
    assert len(opt.param_groups) == 1 and opt.params == [a]  # a refused group leaves no trace


ALL = {
    "SGD": {"lr": 0.1, "momentum": 0.9},
    "Adam": {"lr": 0.1},
    "AdamW": {"lr": 0.1},
    "RMSprop": {"momentum": 0.5, "centered": True},
    "Adagrad": {"lr_decay": 0.1},
    "Adamax": {},
    "NAdam": {"weight_decay": 0.1},
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_grouped_state_dict_resume_equals_uninterrupted(name):
    values, grads = start_values(), grad_sequence(6)
    groups = [{"lr": 0.05}, {}, {"weight_decay": 0.01}]

    def make(vals):
        params = [param(v.copy()) for v in vals]
        opt = getattr(optim, name)([{"params": [p], **g} for p, g in zip(params, groups)], **ALL[name])
        return params, opt

    straight, opt = make(values)
    for gs in grads:
        for p, g in zip(straight, gs):
            p.grad = g
        opt.step()
    first, opt = make(values)
    for gs in grads[:3]:
        for p, g in zip(first, gs):
            p.grad = g
        opt.step()
    state = opt.state_dict()
    resumed, opt2 = make([p.data for p in first])
    for g in opt2.param_groups:
        g["lr"] = 123.0  # overwritten by the state
    opt2.load_state_dict(state)
    for gs in grads[3:]:
        for p, g in zip(resumed, gs):
            p.grad = g
        opt2.step()
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.data, b.data)


def test_a_state_saved_before_param_groups_loads_into_every_group():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    old = {"lr": 0.25, "momentum": 0.5, "weight_decay": 0.0, "nesterov": False, "steps": 3,
           "momentum_buffer.0": np.array([0.1, 0.2])}  # what state_dict() wrote before groups
    opt.load_state_dict(old)
    assert (opt.lr, opt.momentum, opt.steps) == (0.25, 0.5, 3)
    np.testing.assert_array_equal(opt.state["momentum_buffer"][0], [0.1, 0.2])
    grouped = optim.SGD([{"params": [p]}, {"params": [param([0.0])], "lr": 0.5}], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: the state's param groups hold "
                       r"\[1\] parameters, this optimizer's hold \[1, 1\]; build the optimizer "
                       r"with the same param groups"):
        grouped.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: nesterov='yes' is not a boolean"):
        opt.load_state_dict({**opt.state_dict(), "nesterov": "yes"})
    assert opt.lr == 0.25  # a refused state changes nothing


def test_a_grouped_optimizer_round_trips_through_a_checkpoint(tmp_path):
    model = nn.MLP([3, 4, 2], rng=np.random.default_rng(0))
    w0, b0, w1, b1 = model.parameters()
    x = np.random.default_rng(1).standard_normal((5, 3))

    def make(m):
        ps = m.parameters()
        return optim.NAdam([{"params": ps[:2], "lr": 0.01}, {"params": ps[2:], "betas": (0.8, 0.9)}])

    def train(m, opt, n):
        for _ in range(n):
            opt.zero_grad()
            (m(Tensor(x.astype(np.float32))) ** 2).mean().backward()
            opt.step()

    opt = make(model)
    train(model, opt, 2)
    tg.save_checkpoint(tmp_path / "c.npz", model, opt)
    model2 = nn.MLP([3, 4, 2], rng=np.random.default_rng(5))
    opt2 = make(model2)
    tg.restore(tmp_path / "c.npz", model2, opt2)
    assert opt2.param_groups[1]["betas"] == (0.8, 0.9) and opt2.mu_product == opt.mu_product
    train(model, opt, 2)
    train(model2, opt2, 2)
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


# --- schedules against torch.optim.lr_scheduler: the lr of each group after construction and after
# every step of a full run ---


def two_groups(cls=optim.SGD, **kw):
    return cls([{"params": [param([1.0])], "lr": 0.1}, {"params": [param([2.0])], "lr": 0.02}], **kw)


def torch_two_groups(torch, name="SGD", **kw):
    return getattr(torch.optim, name)(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1},
         {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.02}], **kw)


def lr_run(sched, steps, opt, extra=None):
    seq = [[g["lr"] for g in opt.param_groups] + ([g[extra] for g in opt.param_groups] if extra else [])]
    for _ in range(steps):
        sched.step()
        seq.append([g["lr"] for g in opt.param_groups] + ([g[extra] for g in opt.param_groups] if extra else []))
    return np.array(seq, dtype=np.float64)


def flat(values):
    return [v[0] if isinstance(v, tuple) else v for v in values]


SCHEDULES = {
    "linear": (lambda o: optim.LinearLR(o, start_factor=0.25, total_iters=7),
               lambda t, o: t.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=7), 15),
    "linear_defaults": (lambda o: optim.LinearLR(o), lambda t, o: t.optim.lr_scheduler.LinearLR(o), 8),
    "exponential": (lambda o: optim.ExponentialLR(o, gamma=0.9),
                    lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, gamma=0.9), 40),
    "step": (lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
             lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 20),
    "cosine": (lambda o: optim.CosineLR(o, total=20, min_lr=0.001),
               lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001), 20),
    "warmup_then_decay": (
        lambda o: optim.SequentialLR(o, [optim.LinearLR(o, start_factor=0.1, total_iters=5),
                                         optim.ExponentialLR(o, gamma=0.8),
                                         optim.StepLR(o, step_size=2, gamma=0.5)], milestones=[5, 12]),
        lambda t, o: t.optim.lr_scheduler.SequentialLR(
            o, [t.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
                t.optim.lr_scheduler.ExponentialLR(o, gamma=0.8),
                t.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)], milestones=[5, 12]),
        25),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_equal_torch_per_group(name):
    torch = pytest.importorskip("torch")
    ours, theirs, steps = SCHEDULES[name]
    opt, topt = two_groups(), torch_two_groups(torch)
    got = lr_run(ours(opt), steps, opt)
    sched = theirs(torch, topt)
    want = [sched.get_last_lr()]
    for _ in range(steps):
        topt.step()
        sched.step()
        want.append(sched.get_last_lr())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "opt_name, opt_kw, kw",
    [
        ("SGD", {"momentum": 0.9}, {"max_lr": [0.5, 0.2], "total_steps": 40}),
        ("SGD", {}, {"max_lr": 0.3, "epochs": 4, "steps_per_epoch": 7, "pct_start": 0.25,
                     "anneal_strategy": "linear", "three_phase": True, "div_factor": 10.0}),
        ("Adam", {}, {"max_lr": 0.01, "total_steps": 30, "base_momentum": [0.8, 0.7],
                      "max_momentum": 0.9}),
        ("NAdam", {}, {"max_lr": 0.01, "total_steps": 25, "three_phase": True}),
        ("Adagrad", {}, {"max_lr": 0.1, "total_steps": 20, "cycle_momentum": False}),
    ],
)
def test_one_cycle_equals_torch_lr_and_momentum_over_the_full_cycle(opt_name, opt_kw, kw):
    torch = pytest.importorskip("torch")
    opt, topt = two_groups(getattr(optim, opt_name), **opt_kw), torch_two_groups(torch, opt_name, **opt_kw)
    total = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    sched = optim.OneCycleLR(opt, **kw)
    key = {"SGD": "momentum", "Adagrad": None}.get(opt_name, "betas")
    got = [[g["lr"] for g in opt.param_groups] + (flat(g[key] for g in opt.param_groups) if key else [])]
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kw)
    want = [[g["lr"] for g in topt.param_groups] + (flat(g[key] for g in topt.param_groups) if key else [])]
    for _ in range(total):
        sched.step()
        topt.step()
        tsched.step()
        got.append([g["lr"] for g in opt.param_groups] + (flat(g[key] for g in opt.param_groups) if key else []))
        want.append([g["lr"] for g in topt.param_groups] + (flat(g[key] for g in topt.param_groups) if key else []))
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match=rf"OneCycleLR: step {total + 1} is past total_steps={total}"):
        sched.step()


def test_one_cycle_errors():
    with pytest.raises(ValueError, match=r"OneCycleLR: Adagrad has no momentum or betas to cycle; "
                       r"pass cycle_momentum=False"):
        optim.OneCycleLR(two_groups(optim.Adagrad), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match=r"OneCycleLR: give total_steps, or epochs and steps_per_epoch"):
        optim.OneCycleLR(two_groups(), max_lr=0.1)
    with pytest.raises(ValueError, match=r"OneCycleLR: max_lr has 3 values, the optimizer 2 param groups"):
        optim.OneCycleLR(two_groups(), max_lr=[0.1, 0.2, 0.3], total_steps=10)
    with pytest.raises(ValueError, match=r"pct_start=0.1 with total_steps=10 leaves a phase of the "
                       r"cycle no steps"):
        optim.OneCycleLR(two_groups(), max_lr=0.1, total_steps=10, pct_start=0.1)


PLATEAU_METRICS = [5.0, 4.0, 4.0, 4.0, 3.99, 3.99, 3.99, 3.99, 2.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5,
                   1.0, float("nan"), 1.0, 1.0, 1.0, 1.0, 0.9999, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]


@pytest.mark.parametrize(
    "kw",
    [
        {"patience": 2},
        {"patience": 1, "cooldown": 2, "factor": 0.5, "min_lr": [0.004, 0.0]},
        {"mode": "max", "threshold_mode": "abs", "threshold": 0.1, "patience": 0, "min_lr": 0.005},
        {"threshold_mode": "abs", "threshold": 0.5, "patience": 1, "eps": 0.05},
    ],
)
def test_reduce_on_plateau_equals_torch(kw):
    torch = pytest.importorskip("torch")
    opt, topt = two_groups(), torch_two_groups(torch)
    sched, tsched = optim.ReduceLROnPlateau(opt, **kw), torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    got, want = [], []
    for k, metric in enumerate(PLATEAU_METRICS):
        sched.step(Tensor(metric, dtype=np.float64) if k % 2 else metric)  # a number or a tensor
        topt.step()
        tsched.step(metric)
        got.append(sched.get_last_lr())
        want.append(tsched.get_last_lr())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert len({tuple(w) for w in want}) > 1  # the run reduced the rate at least once
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau.step: the metric must be one number "
                       r"\(a float or a size-1 tensor\), got \(2,\)"):
        sched.step(np.ones(2))


def test_schedule_state_round_trips_and_errors():
    opt = two_groups()
    seq = optim.SequentialLR(opt, [optim.LinearLR(opt, total_iters=3), optim.ExponentialLR(opt, 0.5)], [3])
    for _ in range(5):
        seq.step()
    lrs, state = seq.get_last_lr(), seq.state_dict()
    opt2 = two_groups()
    seq2 = optim.SequentialLR(opt2, [optim.LinearLR(opt2, total_iters=3), optim.ExponentialLR(opt2, 0.5)], [3])
    seq2.load_state_dict(state)
    assert seq2.get_last_lr() == lrs
    seq.step()
    seq2.step()
    assert seq2.get_last_lr() == seq.get_last_lr()
    plateau = optim.ReduceLROnPlateau(opt, patience=0)
    for m in (3.0, 3.0, 3.0):
        plateau.step(m)
    again = optim.ReduceLROnPlateau(opt2, patience=0)
    again.load_state_dict(plateau.state_dict())
    assert again.state_dict() == plateau.state_dict()
    with pytest.raises(ValueError, match=r"SequentialLR: 2 schedules need 1 milestones, got 0"):
        optim.SequentialLR(opt, [optim.LinearLR(opt), optim.ExponentialLR(opt, 0.5)], [])
    with pytest.raises(TypeError, match=r"SequentialLR: schedulers\[1\] is a ReduceLROnPlateau"):
        optim.SequentialLR(opt, [optim.LinearLR(opt), plateau], [2])
    with pytest.raises(ValueError, match=r"SequentialLR: schedulers\[0\] drives a different optimizer"):
        optim.SequentialLR(opt, [optim.LinearLR(opt2)], [])
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: factor must be in \[0, 1\), got 1.5"):
        optim.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match=r"LinearLR: need 0 < start_factor <= 1"):
        optim.LinearLR(opt, start_factor=0.0)
    sched = optim.ExponentialLR(opt, 0.5)
    opt.add_param_group({"params": [param([0.0])], "lr": 0.1})
    with pytest.raises(ValueError, match=r"ExponentialLR: the optimizer has 3 param groups, the "
                       r"schedule was built for 2; build the schedule after add_param_group"):
        sched.step()


def test_a_malformed_param_groups_entry_is_named():
    opt = optim.SGD([param([1.0])], lr=0.1)
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: param_groups=\[\{'params': 3\}\] is "
                       r"not a list of dicts each with a 'params' list; the state is corrupt"):
        opt.load_state_dict({**opt.state_dict(), "param_groups": [{"params": 3}]})


def test_nadam_recomputes_its_momentum_product_for_a_state_without_it():
    p = param([1.0, -1.0])
    opt = optim.NAdam([p], momentum_decay=0.05)
    for g in GRADS:
        p.grad = np.asarray(g)
        opt.step()
    state = {k: v for k, v in opt.state_dict().items() if k != "mu_product"}
    again = optim.NAdam([param([1.0, -1.0])], momentum_decay=0.05)
    again.load_state_dict(state)
    np.testing.assert_allclose(again.mu_product, opt.mu_product, rtol=1e-15)
    with pytest.raises(ValueError, match=r"NAdam.load_state_dict: mu_product=\[1.0, 2.0\] is not "
                       r"one number per param group \(1\)"):
        again.load_state_dict({**state, "mu_product": [1.0, 2.0]})
