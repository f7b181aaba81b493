"""Forward values and gradients against PyTorch in float64 (skipped when torch is not installed)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cases import GRAD_CASES
from tinygrad_np import Tensor

torch = pytest.importorskip("torch")

TORCH_CASES = sorted(name for name, case in GRAD_CASES.items() if case.torch_fn is not None)


def run_both(case, arrays, kwargs, cot_seed=0):
    ours = [Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    ref = case.torch_fn(*theirs, **kwargs)
    if ref is None:  # an input torch cannot express (e.g. a negative slice step)
        return False
    out = case.fn(*ours, **kwargs)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    cot = np.random.default_rng(cot_seed).standard_normal(out.shape)
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    for i, (x, t) in enumerate(zip(ours, theirs)):
        expected = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
        assert x.grad.shape == expected.shape, f"input {i}"
        np.testing.assert_allclose(x.grad, expected, rtol=1e-10, atol=1e-12, err_msg=f"input {i}")
    return True


@pytest.mark.parametrize("name", TORCH_CASES)
# the oracle confirms the same values the gradcheck table (120 draws in CI) checks: fewer draws
@settings(max_examples=min(50, settings.default.max_examples))
@given(data=st.data())
def test_matches_torch(name, data):
    case = GRAD_CASES[name]
    arrays, kwargs = data.draw(case.inputs)
    assume(run_both(case, arrays, kwargs))


def test_relu_at_zero_matches_torch():
    run_both(GRAD_CASES["ReLU"], [np.array([-1.0, 0.0, 2.0])], {})


def test_max_ties_share_gradient_like_amax():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    for kwargs in (
        {"axis": None, "keepdims": False},
        {"axis": 1, "keepdims": True},
        {"axis": 0, "keepdims": False},
    ):
        run_both(GRAD_CASES["Max"], [x], kwargs)
        run_both(GRAD_CASES["min"], [-x], kwargs)


def test_maximum_ties_split_like_torch():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 3.0])
    run_both(GRAD_CASES["Maximum"], [a, b], {})
    run_both(GRAD_CASES["minimum"], [a, b], {})


def test_abs_and_clip_at_kinks_match_torch():
    run_both(GRAD_CASES["abs"], [np.array([-1.0, 0.0, 2.0])], {})
    run_both(
        GRAD_CASES["clip"], [np.array([-1.0, -0.5, 0.0, 0.5, 1.0])], {"low": -0.5, "high": 0.5}
    )


def test_float32_mlp_composites_match_torch():
    """The MLP's float32 path (linear, relu, log_softmax, nll) against torch at float32 tolerances."""
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(8, 5), (5, 3), (3,)])
    labels = rng.integers(0, 3, 8)
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    loss = -(ours[0] @ ours[1] + ours[2]).relu().log_softmax()[np.arange(8), labels].mean()
    ref = torch.nn.functional.cross_entropy(
        (theirs[0] @ theirs[1] + theirs[2]).relu(), torch.from_numpy(labels)
    )
    loss.backward()
    ref.backward()
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-5)
    for o, t in zip(ours, theirs):
        assert o.grad.dtype == np.float32
        np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_cast_matches_torch():
    # float64 -> float32 -> float64 rounds the same way in both (IEEE round to nearest), exactly
    a = np.random.default_rng(0).standard_normal((3, 4))
    ours = Tensor(a, dtype=np.float64, requires_grad=True)
    theirs = torch.tensor(a, requires_grad=True)
    out = (ours.astype(np.float32) * 3.0).astype(np.float64)
    ref = (theirs.float() * 3.0).double()
    np.testing.assert_array_equal(out.data, ref.detach().numpy())
    cot = np.random.default_rng(1).standard_normal((3, 4))
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    assert ours.grad.dtype == np.float64
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())
