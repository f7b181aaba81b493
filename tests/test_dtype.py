"""float32 in -> float32 out and float32 gradients, for every op; casts are explicit only."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import GRAD_CASES
from tinygrad_np import Tensor


# a dtype follows the op and the shapes, not the values: fewer draws than the gradient tables
@pytest.mark.parametrize("name", sorted(set(GRAD_CASES) - {"Cast"}))
@settings(max_examples=40)
@given(data=st.data())
def test_float32_stays_float32(name, data):
    case = GRAD_CASES[name]
    arrays, kwargs = data.draw(case.inputs)
    xs = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = case.fn(*xs, **kwargs)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    for x in xs:
        assert x.grad.dtype == np.float32


def test_cast_is_explicit_and_its_gradient_comes_back_in_the_input_dtype():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * 2.0).sum().backward()
    assert x.grad.dtype == np.float32


def test_default_dtype_is_float32():
    assert Tensor(1.0).dtype == np.float32
    assert Tensor([[1, 2]]).dtype == np.float32
    assert Tensor(np.zeros(3)).dtype == np.float32  # float64 arrays come in as float32 unless asked
    assert Tensor(np.zeros(3), dtype=np.float64).dtype == np.float64
    assert Tensor([1, 2], dtype=np.int64).dtype == np.int64


@pytest.mark.parametrize(
    "make",
    [
        Tensor.zeros,
        Tensor.ones,
        lambda *s: Tensor.randn(*s, rng=np.random.default_rng(0)),
        lambda *s: Tensor.uniform(*s, rng=np.random.default_rng(0)),
    ],
)
def test_constructors_default_to_float32(make):
    t = make(2, 3)
    assert t.dtype == np.float32 and t.shape == (2, 3)
    assert make((4,)).shape == (4,)


def test_python_and_numpy_constants_take_the_tensor_dtype():
    x = Tensor([1.0, 2.0], requires_grad=True)
    for y in (x * 2.0, x * np.float64(2.0), x + np.ones(2), 1.0 / x, 2.0**x, x - np.float64(1)):
        assert y.dtype == np.float32


def test_mixed_float_tensors_are_refused_not_upcast():
    with pytest.raises(TypeError, match=r"add: dtypes float32 and float64 differ"):
        Tensor([1.0]) + Tensor([1.0], dtype=np.float64)


def test_bool_and_int_tensors_take_the_float_dtype():
    x = Tensor([1.0, -2.0], requires_grad=True)
    y = x * (x > 0)
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0])


def test_training_step_has_no_float64_anywhere():
    """The MLP's float32 path: every recorded value, op state array, gradient and optimizer buffer."""
    from tinygrad_np import nn, optim
    from tinygrad_np.nn import functional as F
    from tinygrad_np.engine import _toposort

    rng = np.random.default_rng(0)
    for opt_cls in (optim.SGD, optim.AdamW):
        model = nn.MLP([20, 16, 8, 4], activation="relu", dropout=0.1, rng=rng)
        kwargs = (
            {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}
            if opt_cls is optim.SGD
            else {}
        )
        opt = opt_cls(model.parameters(), lr=0.01, **kwargs)
        for _ in range(2):
            x = rng.standard_normal((5, 20)).astype(np.float32)
            loss = F.cross_entropy(model(Tensor(x)), rng.integers(0, 4, 5))
            for node in _toposort(loss):
                assert node.dtype == np.float32, node
                state = vars(node._op).values() if node._op is not None else ()
                for value in state:
                    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                        assert value.dtype == np.float32, (type(node._op).__name__, value.dtype)
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert loss.dtype == np.float32 and isinstance(loss.item(), float)
        for p in model.parameters():
            assert p.dtype == np.float32 and p.grad.dtype == np.float32
        for bufs in opt.state.values():
            assert all(b.dtype == np.float32 for b in bufs)
