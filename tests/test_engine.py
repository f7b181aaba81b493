"""The graph machinery: topological order, accumulation, aliasing, deep graphs, memory release."""

import gc
import weakref

import sys

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import Op, Tensor, no_grad


def leaf(values, dtype=np.float64):
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True, dtype=dtype)


def test_diamond():
    a = leaf(2.0)
    b = a + a
    c = b * b
    c.backward()
    assert a.grad == 16.0


def test_reuse_accumulates():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)


def test_nonleaf_reused_in_many_places_is_complete_before_propagating():
    a = leaf(3.0)
    b = a * 2.0
    c = b + b * b + b.exp()
    c.backward()
    np.testing.assert_allclose(a.grad, 2 * (1 + 2 * 6.0 + np.exp(6.0)))


def test_deep_chain_of_100k_ops_has_no_recursion_error():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0
    del y  # releasing a long chain must not overflow the C stack either


def test_deep_chain_freed_without_backward():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    del y
    gc.collect()


def test_add_shared_grad_not_aliased():
    p, r = leaf(np.ones(3)), leaf(np.ones(3))
    s = p + r
    (s + p).sum().backward()
    np.testing.assert_array_equal(r.grad, np.ones(3))
    np.testing.assert_array_equal(p.grad, 2 * np.ones(3))
    assert not np.shares_memory(p.grad, r.grad)


def test_leaf_grads_are_owned_writeable_arrays():
    a, b = leaf(np.ones((2, 3))), leaf(np.ones(3))
    (a + b).sum().backward()  # Sum.backward hands out a read-only broadcast view
    for t in (a, b):
        assert t.grad.flags.writeable and t.grad.flags.owndata
    assert not np.shares_memory(a.grad, b.grad)


def test_grads_accumulate_across_calls_until_reset():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_inputs_without_requires_grad_get_no_grad_and_no_work():
    calls = []

    class Spy(Op):
        def forward(self, x, y):
            return x * y

        def backward(self, grad):
            calls.append(self.needs_grad)
            return (grad if self.needs_grad[0] else None, grad if self.needs_grad[1] else None)

    x, c = leaf([1.0, 2.0]), Tensor([3.0, 4.0], dtype=np.float64)
    Spy.apply(x, c).sum().backward()
    assert calls == [(True, False)]
    assert c.grad is None and not c.requires_grad


def test_no_grad_records_nothing_as_context_and_decorator():
    x = leaf([1.0])
    with no_grad():
        y = x * 2.0
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y._op is None

    @no_grad
    def bare(t):
        return t * 2.0

    @no_grad()
    def called(t):
        return t * 2.0

    assert not bare(x).requires_grad and not called(x).requires_grad
    assert bare.__name__ == "bare"
    assert (x * 2.0).requires_grad


def test_no_grad_nests_and_restores_after_an_exception():
    with no_grad():
        with no_grad():
            pass
        assert not tg.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert tg.is_grad_enabled()


def test_graph_released_after_backward_even_while_loss_lives():
    x = leaf(np.ones(4))
    h = x * 2.0
    ref = weakref.ref(h)
    loss = h.sum()
    del h
    assert ref() is not None  # held by the graph until backward
    loss.backward()
    gc.collect()
    assert ref() is None
    assert loss.data == 8.0


def test_graph_freed_when_loss_dropped():
    x = leaf(np.ones(4))
    h = x.exp()
    ref = weakref.ref(h)
    loss = h.sum()
    del h, loss
    assert ref() is None  # reference counting alone: ops hold no Tensors, so no cycles


def test_second_backward_through_a_freed_graph_is_an_error():
    x = leaf(1.0)
    y = x * 2.0
    y.backward()
    with pytest.raises(RuntimeError, match="freed by an earlier backward"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf(1.0)
    y = x * 2.0
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad == 4.0


def test_detach_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


def test_backward_with_explicit_cotangent():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    (x * x).backward(np.array([[1.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_array_equal(x.grad, [[2.0, 0.0], [0.0, 16.0]])


def test_intermediate_gradients_are_freed_as_consumed():
    sizes = []

    class Probe(Op):
        def forward(self, x):
            return x.copy()

        def backward(self, grad):
            sizes.append(len(pending_snapshot()))
            return (grad,)

    # the engine keeps gradients in a dict keyed by node; a chain needs one entry at a time
    import inspect

    def pending_snapshot():
        for frame in inspect.stack():
            if "pending" in frame.frame.f_locals and frame.function == "run_backward":
                return frame.frame.f_locals["pending"]
        return {}

    x = leaf(np.ones(3))
    y = x
    for _ in range(5):
        y = Probe.apply(y)
    y.sum().backward()
    assert sizes == [0] * 5


def test_matmul_plus_bias_is_one_linear_node_and_matches_the_unfused_graph():
    rng = np.random.default_rng(0)
    x, w, b = (leaf(rng.standard_normal(s)) for s in [(5, 3), (3, 4), (4,)])
    fused = x @ w + b
    assert type(fused._op).__name__ == "Linear" and len(fused._parents) == 3
    cot = rng.standard_normal((5, 4))
    fused.backward(cot)
    grads = [t.grad for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    unfused = (x @ w) + b.reshape(1, 4)  # a (1, 4) bias: not fused, Expand + Add
    assert type(unfused._op).__name__ == "Add"
    unfused.backward(cot)
    for got, expected in zip(grads, (x.grad, w.grad, b.grad)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_fusion_lives_in_its_rules_and_the_methods_only_ask_them(monkeypatch):
    """Tensor.__add__ and Tensor.relu do not look at their operands' history: with the rule
    table emptied they record Add and ReLU; a rule registered for an op is what fuses it."""
    from tinygrad_np import fusion, ops

    rng = np.random.default_rng(0)
    x, w, b = (leaf(rng.standard_normal(s)) for s in [(5, 3), (3, 4), (4,)])
    assert type((b + x @ w)._op).__name__ == "Linear"  # the rule takes either order
    assert type((x @ w + b).relu()._op).__name__ == "LinearReLU"
    monkeypatch.setattr(fusion, "RULES", {})
    monkeypatch.setattr(fusion, "DISPATCH", {})
    monkeypatch.setattr(sys.modules["tinygrad_np.tensor"], "FUSIONS", fusion.DISPATCH)
    y = (x @ w + b).relu()
    assert type(y._op).__name__ == "ReLU" and type(y._parents[0]._op).__name__ == "Add"
    calls = []

    @fusion.rule(ops.Mul)
    def spy(a, c):
        calls.append((a, c))
        return None  # declines: the op is recorded as asked

    assert type((x * 2.0)._op).__name__ == "Mul" and calls and calls[0][0] is x


def test_product_used_elsewhere_keeps_its_own_graph():
    x, w, b = leaf(np.ones((2, 3))), leaf(np.ones((3, 2))), leaf(np.ones(2))
    h = x @ w
    y = h + b
    (y.sum() + (h * 2.0).sum()).backward()
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 6.0))
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])
    np.testing.assert_array_equal(h.data, np.full((2, 2), 3.0))  # the product was not modified


def test_adopted_leaf_grads_are_never_shared():
    # Add.backward hands the same array to both inputs; Linear's gradients are fresh arrays
    a, b = leaf(np.ones(3)), leaf(np.ones(3))
    (a + b).backward(np.ones(3))
    assert not np.shares_memory(a.grad, b.grad)
    x, w, c = leaf(np.ones((2, 3))), leaf(np.ones((3, 3))), leaf(np.zeros(3))
    (x @ w + c).backward(np.ones((2, 3)))
    for g in (x.grad, w.grad, c.grad):
        assert g.flags.writeable and g.base is None


def test_fused_paths_record_nothing_without_grad():
    x, w, b = leaf(np.ones((2, 3))), leaf(np.ones((3, 2))), leaf(np.ones(2))
    with no_grad():
        y = (x @ w + b).relu()
    assert not y.requires_grad and y._op is None
    np.testing.assert_array_equal(y.data, np.full((2, 2), 4.0))
    product = x @ w  # recorded; adding the bias under no_grad must not record a Linear node
    with no_grad():
        z = product + b
    assert z._op is None and not z.requires_grad


def test_fused_paths_check_for_anomalies():
    x = leaf(np.array([[1.0, np.inf]]))
    w, b = leaf(np.ones((2, 2))), leaf(np.zeros(2))
    with (
        tg.detect_anomaly(),
        np.errstate(invalid="ignore"),
        pytest.raises(tg.AnomalyError, match=r"MatMul.forward produced inf"),
    ):
        x @ w + b


def test_a_0d_leaf_grad_stays_an_ndarray_across_accumulation():
    x = Tensor(np.float64(2.0), requires_grad=True, dtype=np.float64)
    for expected in (4.0, 8.0, 12.0):
        (x * x).backward()
        assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad == expected
