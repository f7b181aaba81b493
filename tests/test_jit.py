"""tinygrad_np.jit: replay equals eager bit for bit (optimizers, dropout, schedules, the example's
model), guards recapture or raise, what cannot be replayed is refused, and each pass is shown on a
program before and after."""

import functools
import sys

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import JitError, Tensor, nn, optim
from tinygrad_np.nn import functional as F

jit_module = sys.modules["tinygrad_np.jit"]


def batches(n=10, batch=8, n_in=12, classes=4, seed=1):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((n, batch, n_in)).astype(np.float32)
    return xs, rng.integers(0, classes, (n, batch))


def mlp(seed=0, dropout=0.0):
    return nn.MLP([12, 16, 4], dropout=dropout, rng=np.random.default_rng(seed))


def example_step(model, opt, x, y, schedule=None):
    opt.zero_grad()
    loss = F.cross_entropy(model(Tensor(x)), y)
    loss.backward()
    opt.step()
    if schedule is not None:
        schedule.step()
    return loss


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "momentum": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    "nesterov_decay": lambda ps: optim.SGD(
        ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3
    ),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "rmsprop_centered_momentum": lambda ps: optim.RMSprop(
        ps, lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3
    ),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1),
    "adamax": lambda ps: optim.Adamax(ps, lr=1e-2, weight_decay=1e-3),
    "nadam_groups": lambda ps: optim.NAdam(
        [{"params": ps[:2]}, {"params": ps[2:], "lr": 5e-3, "decoupled_weight_decay": True}],
        lr=1e-2,
        weight_decay=1e-2,
    ),
}


def run_both(make_opt, steps=200, dropout=0.0, schedule=False, step_fn=example_step, **jit_kw):
    """Eager and jitted runs from the same weights and data: every loss and every final weight."""
    xs, ys = batches()
    results = []
    for jitted in (False, True):
        model = mlp(dropout=dropout)
        opt = make_opt(model.parameters())
        sched = optim.CosineLR(opt, total=steps, min_lr=0.0) if schedule else None
        fn = tg.jit(step_fn, **jit_kw) if jitted else step_fn
        losses = [fn(model, opt, xs[i % 10], ys[i % 10], sched).data.copy() for i in range(steps)]
        results.append((np.array(losses), [p.data.copy() for p in model.parameters()], fn))
    return results


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_replay_equals_eager_bit_for_bit_over_200_steps(name):
    (eager, w_eager, _), (replay, w_replay, fn) = run_both(OPTIMIZERS[name])
    assert fn.captures == 2 and fn.program(*_probe(fn)) is not None
    np.testing.assert_array_equal(replay, eager)
    for a, b in zip(w_replay, w_eager):
        np.testing.assert_array_equal(a, b)


def _probe(fn):
    """Arguments with the captured signature, for Program lookup (the model and optimizer by id)."""
    return fn._last_args


@pytest.mark.parametrize("passes", [(), ("dead_code",)])
def test_dropout_masks_are_drawn_anew_and_a_cosine_schedule_is_read_every_call(passes):
    (eager, w_eager, _), (replay, w_replay, fn) = run_both(
        OPTIMIZERS["adam"], dropout=0.3, schedule=True, passes=passes
    )
    np.testing.assert_array_equal(replay, eager)
    for a, b in zip(w_replay, w_eager):
        np.testing.assert_array_equal(a, b)
    assert len(set(map(float, replay[2:12]))) > 5  # the losses move: the masks are not replayed


def plateau_step(model, opt, x, y, schedule):
    loss = example_step(model, opt, x, y)
    schedule.step(loss)  # the loss tensor: its value each call is what the schedule reads
    return loss


SCHEDULES = {
    "one_cycle_sgd_groups": (
        lambda ps: optim.SGD([{"params": ps[:2], "lr": 0.05}, {"params": ps[2:]}], lr=0.1),
        lambda o: optim.OneCycleLR(o, max_lr=[0.2, 0.1], total_steps=60),
        example_step,
    ),
    "warmup_then_decay_adam": (
        OPTIMIZERS["adam"],
        lambda o: optim.SequentialLR(
            o, [optim.LinearLR(o, start_factor=0.1, total_iters=10), optim.ExponentialLR(o, 0.97)], [10]
        ),
        example_step,
    ),
    "plateau_rmsprop": (
        lambda ps: optim.RMSprop(ps, lr=1e-2),
        lambda o: optim.ReduceLROnPlateau(o, patience=1, threshold=0.05, cooldown=1),
        plateau_step,
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_new_schedules_are_replayed_every_call(name):
    make_opt, make_sched, step_fn = SCHEDULES[name]
    xs, ys = batches()
    results = []
    for jitted in (False, True):
        model = mlp()
        opt = make_opt(model.parameters())
        sched = make_sched(opt)
        fn = tg.jit(step_fn) if jitted else step_fn
        losses = [fn(model, opt, xs[i % 10], ys[i % 10], sched).data.copy() for i in range(60)]
        lrs = [g["lr"] for g in opt.param_groups]
        results.append((np.array(losses), [p.data.copy() for p in model.parameters()], lrs, fn))
    (eager, w_eager, lr_eager, _), (replay, w_replay, lr_replay, fn) = results
    assert fn.captures == 2
    np.testing.assert_array_equal(replay, eager)
    for a, b in zip(w_replay, w_eager):
        np.testing.assert_array_equal(a, b)
    assert lr_replay == lr_eager
    assert lr_eager != [g["lr"] for g in make_opt(mlp().parameters()).param_groups]  # it moved


def plain_run(passes, steps=200, also_return_logp=False):
    """The README's plain expressions trained eagerly and jitted: losses, final weight, the jit."""
    xs, ys = batches()
    runs = []
    for jitted in (False, True):
        rng = np.random.default_rng(0)
        w1 = Tensor(rng.standard_normal((12, 16)) * 0.3, requires_grad=True)
        b1 = Tensor(np.zeros(16), requires_grad=True)
        w2 = Tensor(rng.standard_normal((16, 4)) * 0.3, requires_grad=True)
        opt = optim.SGD([w1, b1, w2], lr=0.1, momentum=0.9)

        def step(x, y):
            logp = ((Tensor(x) @ w1 + b1).relu() @ w2).log_softmax(axis=-1)
            loss = -logp[np.arange(len(y)), y].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return (loss, logp) if also_return_logp else loss

        fn = tg.jit(step, passes=passes) if jitted else step

        def loss_of(out):
            return float((out[0] if also_return_logp else out).data)

        losses = [loss_of(fn(xs[i % 10], ys[i % 10])) for i in range(steps)]
        runs.append((np.array(losses), w1.data.copy(), fn))
    return runs


def test_the_readme_plain_expressions_replay_bit_for_bit_with_the_passes_that_keep_arithmetic():
    (eager, w_eager, _), (replay, w_replay, _) = plain_run(("dead_code",))
    np.testing.assert_array_equal(replay, eager)
    np.testing.assert_array_equal(w_replay, w_eager)


def _three_layer_step(model_seed=0, return_hidden=False, reuse_product=False):
    rng = np.random.default_rng(model_seed)
    ps = [Tensor(rng.standard_normal(s).astype(np.float32) * 0.3, requires_grad=True)
          for s in [(12, 16), (16,), (16, 16), (16,), (16, 4), (4,)]]
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)

    def step(x, y):
        product = Tensor(x) @ ps[0]
        h1 = (product + ps[1]).relu()
        h2 = (h1 @ ps[2] + ps[3]).relu()
        logits = h2 @ ps[4] + ps[5]
        if reuse_product:
            logits = logits + (product * 0.0).sum()  # the product is read again: not in place
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return (loss, h1) if return_hidden else loss

    return step, ps


@pytest.mark.parametrize("variant", ["plain", "return_hidden", "reuse_product"])
def test_inplace_pass_keeps_every_bit_and_skips_buffers_still_in_use(variant):
    """inplace adds the bias into the dead product, takes relu in the dead pre-activation and
    masks the dead output gradient, as hand-written numpy does; a buffer the step returns or reads
    again keeps its own array. Losses, returned values and weights equal eager bit for bit."""
    xs, ys = batches()
    kw = {"return_hidden": variant == "return_hidden", "reuse_product": variant == "reuse_product"}
    results = []
    for passes in (None, ("dead_code", "inplace")):
        step, ps = _three_layer_step(**kw)
        fn = step if passes is None else tg.jit(step, passes=passes)
        outs = []
        for i in range(30):
            out = fn(xs[i % 10].astype(np.float32), ys[i % 10])
            outs.append([t.data.copy() for t in (out if isinstance(out, tuple) else (out,))])
        results.append((outs, [p.data.copy() for p in ps], fn))
    (eager, w_eager, _), (replay, w_replay, jitted) = results
    for a, b in zip(eager, replay):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    for u, v in zip(w_eager, w_replay):
        np.testing.assert_array_equal(u, v)
    if variant == "return_hidden":  # a returned tensor is not overwritten by the next call
        first = jitted(xs[0].astype(np.float32), ys[0])[1]
        kept = first.data.copy()
        jitted(xs[1].astype(np.float32), ys[1])
        np.testing.assert_array_equal(first.data, kept)
    kinds = [type(ins.args[0]).__name__ for ins in next(iter(jitted.cache.values())).code
             if ins.fn in (jit_module.forward_kernel, jit_module.vjp_kernel)]
    # three Linear forwards; two LinearReLU forwards and their two vjps
    expected = {"plain": (3, 4), "return_hidden": (3, 4), "reuse_product": (2, 4)}[variant]
    assert (kinds.count("LinearInto"), kinds.count("LinearReLUInto")) == expected


@pytest.mark.parametrize("variant", ["plain", "return_hidden", "reuse_product"])
def test_buffers_pass_keeps_every_bit_and_writes_into_arrays_made_once(variant):
    """buffers rewrites the matmuls, Linear, LinearReLU, the fused cross-entropy and their vjps
    to write into arrays made with the program; losses, returned values, weights and gradients
    equal eager bit for bit, a returned tensor keeps its own array."""
    xs, ys = batches()
    kw = {"return_hidden": variant == "return_hidden", "reuse_product": variant == "reuse_product"}
    results = []
    for passes in (None, ("dead_code", "inplace", "buffers")):
        step, ps = _three_layer_step(**kw)
        fn = step if passes is None else tg.jit(step, passes=passes)
        outs = []
        for i in range(30):
            out = fn(xs[i % 10], ys[i % 10])
            outs.append([t.data.copy() for t in (out if isinstance(out, tuple) else (out,))])
        results.append((outs, [(p.data.copy(), p.grad.copy()) for p in ps], fn))
    (eager, w_eager, _), (replay, w_replay, jitted) = results
    for a, b in zip(eager, replay):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    for (u, gu), (v, gv) in zip(w_eager, w_replay):
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(gu, gv)
    program = next(iter(jitted.cache.values()))
    names = [ins.name for ins in program.code]
    before = [ins.name for ins in program.debug_code]  # the program the pass was given
    assert "CrossEntropy into" in names and "CrossEntropy" in before and "CrossEntropy" not in names
    assert names.count("vjp LinearReLU into") == 2 and names.count("adopt") == 6
    assert "deliver" in before and "deliver" not in names
    if variant == "return_hidden":  # h1 is returned: its group (product, pre-activation) is not planned
        assert names.count("MatMul into") == 2
        first = jitted(xs[0], ys[0])[1]
        kept = first.data.copy()
        jitted(xs[1], ys[1])
        np.testing.assert_array_equal(first.data, kept)
    else:
        assert names.count("MatMul into") == 3


def _allocations(program, arrays):
    """Bytes each instruction of program allocates in one replay (tracemalloc's peak over its
    start, the program run instruction by instruction)."""
    import tracemalloc

    env = [None] * program.n
    for i, a in zip(program.inputs, arrays):
        env[i] = a
    found = []
    tracemalloc.start()
    try:
        for ins, free in zip(program.code, program.free):
            args = [jit_module._resolve(a, env) for a in ins.args]
            kwargs = {k: jit_module._resolve(v, env) for k, v in ins.kwargs.items()}
            start = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = ins.fn(*args, **kwargs)
            found.append((ins.name, tracemalloc.get_traced_memory()[1] - start))
            outs = ins.outs
            for o, r in [(outs, result)] if isinstance(outs, int) else zip(outs or (), result or ()):
                if o is not None:
                    env[o] = r
            for i in free:
                env[i] = None
            args = result = None
    finally:
        tracemalloc.stop()
    return found


def _readme_step(make_opt, n_in=784, hidden=128):
    rng = np.random.default_rng(0)
    ps = [Tensor(a.astype(np.float32), requires_grad=True) for a in (
        rng.standard_normal((n_in, hidden)) * 0.05, np.zeros(hidden),
        rng.standard_normal((hidden, 10)) * 0.1, np.zeros(10))]  # fmt: skip
    opt = make_opt(ps)

    def step(x, y):
        h = (Tensor(x) @ ps[0] + ps[1]).relu()
        logp = (h @ ps[2] + ps[3]).log_softmax(axis=-1)
        loss = -logp[np.arange(len(y)), y].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step, ps


@pytest.mark.parametrize("name", ["momentum", "adam"])
@pytest.mark.parametrize("batch", [32, 128])
def test_a_replayed_step_makes_no_new_arrays(name, batch):
    """The README's MLP step (784-128-10) with every pass: counted with tracemalloc, instruction by
    instruction, a replay allocates only numpy's own scratch (a bool mask cast, broadcasts of a
    row: at most 8,192 elements each, not arrays), the returned loss and small Python objects -
    under 1/20 of the bytes of the same program without the buffers pass, whose temporaries are
    new arrays every step. Every planned kernel writes the same arrays at every replay, and 100 compiled replays
    leave the traced memory where it was."""
    import tracemalloc

    rng = np.random.default_rng(3)
    data = [(rng.standard_normal((batch, 784)).astype(np.float32), rng.integers(0, 10, batch)) for _ in range(4)]
    totals = {}
    for passes in (("cross_entropy", "dead_code", "inplace"), ("cross_entropy", "dead_code", "inplace", "buffers")):
        step, ps = _readme_step(OPTIMIZERS[name])
        fn = tg.jit(step, passes=passes)
        for i in range(4):
            fn(*data[i])
        program = fn.program(*data[0])
        _allocations(program, data[0])  # the optimizer's scratch arrays are made at its first update
        per_ins = _allocations(program, data[1])
        totals[passes[-1]] = sum(b for _, b in per_ins)
    assert totals["buffers"] < totals["inplace"] / 20, totals
    assert totals["inplace"] > 784 * 128 * 4  # the weight gradient alone: the count sees arrays
    # what is left is numpy's scratch: the cast of the relu mask (bool to float32, 8,192 elements
    # at most) in one kernel, broadcasts of n numbers in cross-entropy, small Python objects
    assert max(b for _, b in per_ins) <= 8192 * 4 + 2048, per_ins
    # the planned kernels' outputs are the same arrays at every replay
    grads = [p.grad for p in ps]
    fn(*data[2])
    assert all(p.grad is g for p, g in zip(ps, grads))
    tracemalloc.start()
    try:
        fn(*data[3])
        start = tracemalloc.get_traced_memory()[0]
        for i in range(100):
            fn(*data[i % 4])
        assert tracemalloc.get_traced_memory()[0] - start < 4096
    finally:
        tracemalloc.stop()


def test_buffers_pass_leaves_alone_what_a_returned_view_shows_and_takes_any_integer_labels():
    """A returned logits.T (a view made by a kernel the pass does not plan) keeps its values after
    later calls; uint64 labels replay as eager."""
    xs, ys = batches()
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((12, 4)).astype(np.float32), requires_grad=True)

    def step(x, y):
        logits = Tensor(x) @ w
        loss = F.cross_entropy(logits, y)
        loss.backward()
        return loss, logits.T

    eager_out = [step(xs[i], ys[i].astype(np.uint64)) for i in range(5)]
    w.grad = None
    fn = tg.jit(step)
    kept = [fn(xs[i], ys[i].astype(np.uint64)) for i in range(5)]
    for (loss, view), (e_loss, e_view) in zip(kept, eager_out):
        np.testing.assert_array_equal(view.data, e_view.data)
        np.testing.assert_array_equal(loss.data, e_loss.data)
    assert "MatMul into" not in [ins.name for ins in next(iter(fn.cache.values())).code]


def test_buffers_pass_with_gradients_accumulated_over_calls():
    """No zero_grad between calls: the planned gradient array a leaf still holds is copied before
    the next replay writes it (unshare), so accumulation equals eager bit for bit."""
    xs, ys = batches()
    results = []
    for jitted in (False, True):
        model = mlp()
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

        def step(x, y, update):
            loss = F.cross_entropy(model(Tensor(x)), y)
            loss.backward()
            if update:
                opt.step()
                opt.zero_grad()
            return loss

        fn = tg.jit(step) if jitted else step
        losses = [fn(xs[i % 10], ys[i % 10], i % 3 == 2).data.copy() for i in range(30)]
        results.append((losses, [p.data.copy() for p in model.parameters()]))
    (eager, w_eager), (replay, w_replay) = results
    np.testing.assert_array_equal(replay, eager)
    for a, b in zip(w_replay, w_eager):
        np.testing.assert_array_equal(a, b)


def test_cross_entropy_pass_fuses_the_plain_spelling_to_float32_rounding():
    (eager, w_eager, _), (replay, w_replay, fn) = plain_run(("cross_entropy", "dead_code"))
    assert abs(replay[0] - eager[0]) <= 1e-6 * abs(eager[0])
    assert np.max(np.abs(replay - eager) / np.abs(eager)) <= 1e-3
    # weights: within 1e-3 of their scale after 200 momentum steps (rounding compounds), and
    # within 1e-6 after the first replayed step (call 3)
    assert np.max(np.abs(w_replay - w_eager)) <= 1e-3 * np.max(np.abs(w_eager))
    (_, w3_eager, _), (_, w3_replay, _) = plain_run(("cross_entropy",), steps=3)
    assert np.max(np.abs(w3_replay - w3_eager)) <= 1e-6 * np.max(np.abs(w3_eager))
    fused = [ins.name for ins in next(iter(fn.cache.values())).code]
    unfused = [ins.name for ins in plain_run((), steps=2)[1][2].cache.popitem()[1].code]
    for name in ("Index", "Exp", "Log", "finite_max", "negative"):
        assert name in unfused and name not in fused
    assert fused.count("CrossEntropy") == 1 and fused.count("vjp CrossEntropy") == 1
    assert len(fused) < len(unfused) - 20


def test_cross_entropy_pass_leaves_a_chain_whose_log_probabilities_are_used():
    (eager, _, _), (replay, _, fn) = plain_run(("cross_entropy",), steps=20, also_return_logp=True)
    np.testing.assert_array_equal(replay, eager)  # not fused: the same arithmetic
    assert "CrossEntropy" not in [ins.name for ins in next(iter(fn.cache.values())).code]


def test_a_learning_rate_changed_between_calls_is_used():
    (eager, _, _), _ = run_both(OPTIMIZERS["sgd"], steps=1)  # warm the cache of nothing
    xs, ys = batches()
    out = []
    for jitted in (False, True):
        model = mlp()
        opt = optim.SGD(model.parameters(), lr=0.1)
        fn = tg.jit(example_step) if jitted else example_step
        losses = []
        for i in range(12):
            opt.lr = 0.1 / (1 + i)  # a hyperparameter: read when the step runs, not baked in
            losses.append(float(fn(model, opt, xs[i % 10], ys[i % 10]).data))
        out.append(losses)
    assert out[0] == out[1]


def test_returned_tensors_are_not_overwritten_by_the_next_call():
    model, xs, ys = mlp(), *batches()
    opt = optim.SGD(model.parameters(), lr=0.1)
    fn = tg.jit(example_step)
    kept = [fn(model, opt, xs[i], ys[i]) for i in range(6)]
    values = [float(k.data) for k in kept]
    fn(model, opt, xs[7], ys[7])
    assert [float(k.data) for k in kept] == values and len(set(values)) == 6


def test_a_new_shape_recaptures_and_the_cache_is_bounded():
    model, xs, ys = mlp(), *batches()
    opt = optim.SGD(model.parameters(), lr=0.1)
    fn = tg.jit(example_step, cache_size=2)
    for n in (8, 5, 3):  # the last partial batch of an epoch is a new shape
        for _ in range(3):
            fn(model, opt, xs[0][:n], ys[0][:n])
    assert fn.captures == 6 and len(fn.cache) == 2


def test_on_change_error_names_the_argument_the_captured_and_the_actual_value():
    model, xs, ys = mlp(), *batches()
    opt = optim.SGD(model.parameters(), lr=0.1)
    fn = tg.jit(example_step, on_change="error")
    fn(model, opt, xs[0], ys[0])
    with pytest.raises(JitError, match=r"captured with argument 2: array of shape \(8, 12\).*"
                                       r"now called with argument 2: array of shape \(5, 12\)"
                                       r".*last partial batch"):  # fmt: skip
        fn(model, opt, xs[0][:5], ys[0][:5])


@pytest.mark.parametrize(
    "body, message",
    [
        (lambda loss: loss.item(), r"\.item\(\) inside a jitted step"),
        (lambda loss: loss.numpy(), r"\.numpy\(\) inside a jitted step"),
        (lambda loss: bool(loss > 0), r"Python branching on a tensor's value"),
        (lambda loss: float(loss), r"\.item\(\) inside a jitted step"),
        (lambda loss: np.asarray(loss), r"np.asarray\(tensor\) inside a jitted step"),
    ],
)
def test_reading_a_value_inside_the_step_is_refused(body, message):
    model, xs, ys = mlp(), *batches()
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        loss = example_step(model, opt, x, y)
        body(loss)
        return loss

    with pytest.raises(JitError, match=message):
        tg.jit(step)(xs[0], ys[0])
    assert tg.engine.CAPTURING.now is None  # the failed capture left nothing behind


def test_returning_a_python_number_is_refused_with_the_fix():
    with pytest.raises(JitError, match=r"returned a float.*call \.item\(\) on the result outside"):
        tg.jit(lambda x: 1.5)(np.ones(3))


@pytest.mark.parametrize(
    "pick, message",
    [
        # numpy on an argument: a constant to a capture, as an operand or as an op's attribute
        (lambda logp, y: logp * np.eye(4, dtype=np.float32)[y],
         r"Mul reads a tensor made inside the step from numpy work"),
        (lambda logp, y: tg.where(y[:, None] == np.arange(4), logp, 0.0),
         r"Where reads an array that differs between two calls"),
    ],
)  # fmt: skip
def test_an_array_computed_outside_the_ops_is_caught_at_the_second_call(pick, message):
    model, xs, ys = mlp(), *batches()
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        logp = model(Tensor(x)).log_softmax(axis=-1)
        loss = -pick(logp, y).sum() / len(y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = tg.jit(step)
    fn(xs[0], ys[0])
    with pytest.raises(JitError, match=message):
        fn(xs[1], ys[1])


def test_branching_on_a_counter_is_caught():
    model, xs, ys = mlp(), *batches()
    opt = optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def step(x, y):
        calls.append(1)
        out = model(Tensor(x))
        if len(calls) % 2 == 0:
            out = out.tanh()
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss

    fn = tg.jit(step)
    fn(xs[0], ys[0])
    with pytest.raises(JitError, match=r"different (programs|kernels)"):
        fn(xs[1], ys[1])


def test_detect_anomaly_at_replay_names_the_op():
    w = Tensor(np.ones((3, 2)), requires_grad=True)

    def step(x):
        return (Tensor(x) @ w).log().sum()

    fn = tg.jit(step)
    fine = np.ones((4, 3))
    fn(fine)
    fn(fine)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"Log.forward produced NaN"):
        fn(-fine)


def test_dead_code_pass_removes_unused_work_and_keeps_effects():
    model, xs, ys = mlp(), *batches()
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        unused = (Tensor(x) * 2.0).exp().sum()  # noqa: F841 - computed and never used
        return example_step(model, opt, x, y)

    kept, dropped = tg.jit(step, passes=("dead_code",)), tg.jit(step, passes=())
    for fn in (kept, dropped):
        fn(xs[0], ys[0])
        fn(xs[1], ys[1])
    with_dead = dropped.cache[next(iter(dropped.cache))]
    without = kept.cache[next(iter(kept.cache))]
    names = [ins.name for ins in with_dead.code]
    assert "Exp" in names and "Exp" not in [ins.name for ins in without.code]
    assert len(without.code) == len(with_dead.code) - 4  # the read of 2.0, Mul, Exp, Sum
    effects = [ins.name for ins in with_dead.code if ins.effect]
    assert effects == [ins.name for ins in without.code if ins.effect]
    a, b = kept(xs[2], ys[2]), dropped(xs[2], ys[2])
    assert a.data != b.data  # each took its own step: the weights moved twice
    assert np.isfinite(float(a.data))


def test_dead_code_on_a_hand_written_program():
    def ins(name, reads, writes, effect=False):
        args = tuple(jit_module.Slot(i) for i in reads)
        return jit_module.Instruction(print, args, {}, writes, effect, name)

    code = [
        ins("a", [0], 1),
        ins("dead", [1], 2),
        ins("b", [1], 3),
        ins("write", [3], None, effect=True),
        ins("out", [1], 4),
    ]
    assert [i.name for i in jit_module.dead_code(code, {4})] == ["a", "b", "write", "out"]
    assert [i.name for i in jit_module.dead_code(code, set())] == ["a", "b", "write"]


def test_gradient_clipping_inside_the_step_is_replayed():
    xs, ys = batches()
    out = []
    for jitted in (False, True):
        model = mlp()
        opt = optim.SGD(model.parameters(), lr=0.5)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(Tensor(x)), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.05)
            opt.step()
            return loss

        fn = tg.jit(step) if jitted else step
        out.append([float(fn(xs[i % 10], ys[i % 10]).data) for i in range(20)])
    assert out[0] == out[1]


def _edit_grad_in_place(model):
    model.parameters()[0].grad *= 0.5


def _rebind_grad(model):
    p = model.parameters()[1]
    p.grad = p.grad * 0.5


def _clip_weights_after_the_step(model):
    w = model.parameters()[0]
    np.clip(w.data, -0.01, 0.01, out=w.data)


def _replace_weights(model):
    w = model.parameters()[0]
    w.data = w.data * 0.9


@pytest.mark.parametrize(
    "edit, where, attr",
    [
        (_edit_grad_in_place, "before", "grad"),
        (_rebind_grad, "before", "grad"),
        (_clip_weights_after_the_step, "at the end of the step", "data"),
        (_replace_weights, "at the end of the step", "data"),
    ],
)
def test_a_hand_edit_of_grad_or_data_inside_the_step_is_refused_at_capture(edit, where, attr):
    """A replay runs only recorded calls: p.grad *= 0.5 before step(), or weight clipping on .data
    after it, would silently vanish from every replay, so the first capture refuses them."""
    xs, ys = batches()
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)

    @tg.jit
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), y)
        loss.backward()
        if attr == "grad":
            edit(model)
        opt.step()
        if attr == "data":
            edit(model)
        return loss

    with pytest.raises(JitError, match=rf"changed the \.{attr} of a tensor\(.*found {where}"):
        step(xs[0], ys[0])


def test_edits_between_calls_are_read_live_by_the_replay():
    """Outside the step, .data may be edited freely: every replay reads parameters as they are."""
    xs, ys = batches()
    out = []
    for jitted in (False, True):
        model = mlp()
        opt = optim.SGD(model.parameters(), lr=0.1)
        step = functools.partial(example_step, model, opt)
        fn = tg.jit(step) if jitted else step
        losses = []
        for i in range(8):
            losses.append(float(fn(xs[i], ys[i]).data))
            w = model.parameters()[0]
            np.clip(w.data, -0.05, 0.05, out=w.data)  # a weight constraint, between calls
        out.append(losses)
    assert out[0] == out[1]


def test_unknown_pass_and_bad_on_change_are_refused():
    with pytest.raises(ValueError, match=r"unknown passes \['fuse_everything'\]"):
        tg.jit(example_step, passes=("fuse_everything",))
    with pytest.raises(ValueError, match="on_change must be"):
        tg.jit(example_step, on_change="ignore")


def test_decorator_forms():
    @tg.jit
    def f(x):
        return Tensor(x) * 2.0

    @tg.jit(passes=())
    def g(x):
        return Tensor(x) * 3.0

    for _ in range(3):
        assert f(np.ones(2, np.float32)).data.tolist() == [2.0, 2.0]
        assert g(np.ones(2, np.float32)).data.tolist() == [3.0, 3.0]
    assert f.__name__ == "f" and len(f.cache) == 1


def test_a_gradient_for_a_tensor_argument_is_refused():
    def step(x):
        loss = (x * x).sum()
        loss.backward()
        return loss

    with pytest.raises(JitError, match=r"gradient of a Tensor argument .*Keep parameters in the model"):
        tg.jit(step)(Tensor(np.ones(3), requires_grad=True))
