"""nn: parameters, state dicts, layers, dropout, MLP, and the fused cross-entropy against its composite."""

import numpy as np
import pytest
from hypothesis import given

from tinygrad_np import Tensor, nn
from tinygrad_np.nn import functional as F

from cases import logits_labels


def rng(seed=0):
    return np.random.default_rng(seed)


def test_linear_shapes_and_he_init():
    layer = nn.Linear(784, 256, rng=rng())
    assert layer(Tensor(np.zeros((5, 784)))).shape == (5, 256)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    np.testing.assert_allclose(layer.weight.data.std(), np.sqrt(2 / 784), rtol=0.02)
    assert not layer.bias.data.any()
    np.testing.assert_array_equal(
        nn.Linear(3, 2, rng=rng(1)).weight.data, nn.Linear(3, 2, rng=rng(1)).weight.data
    )
    assert repr(layer) == "Linear(784, 256, bias=True)"


def test_parameters_complete_ordered_and_without_duplicates():
    shared = nn.Linear(4, 4, rng=rng())
    model = nn.Sequential(
        nn.Linear(3, 4, rng=rng()), nn.ReLU(), shared, shared, nn.Linear(4, 2, rng=rng())
    )
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "layers.0.weight",
        "layers.0.bias",
        "layers.2.weight",
        "layers.2.bias",
        "layers.4.weight",
        "layers.4.bias",
    ]
    params = model.parameters()
    assert len({id(p) for p in params}) == len(params) == 6
    assert params == model.parameters()


def test_mlp_structure_and_forward():
    model = nn.MLP([784, 32, 16, 10], activation="tanh", dropout=0.2, rng=rng())
    assert [n for n, _ in model.named_parameters()] == [
        "linears.0.weight",
        "linears.0.bias",
        "linears.1.weight",
        "linears.1.bias",
        "linears.2.weight",
        "linears.2.bias",
    ]
    out = model(Tensor(np.ones((3, 784))))
    assert out.shape == (3, 10) and out.dtype == np.float32
    assert repr(model) == "MLP([784, 32, 16, 10], activation='tanh', dropout=0.2)"


@pytest.mark.parametrize(
    "sizes, activation, match",
    [
        ([784], "relu", r"MLP: sizes must be at least two positive integers"),
        ([784, 0, 10], "relu", r"MLP: sizes must be at least two positive"),
        (
            [784, 10],
            "swish",
            r"MLP: unknown activation 'swish'; choose one of \['gelu', 'leaky_relu'",
        ),
    ],
)
def test_mlp_rejects_bad_configuration(sizes, activation, match):
    with pytest.raises(ValueError, match=match):
        nn.MLP(sizes, activation, rng=rng())


def test_state_dict_round_trip_and_errors():
    a, b = nn.MLP([4, 3, 2], rng=rng(0)), nn.MLP([4, 3, 2], rng=rng(1))
    b.load_state_dict(a.state_dict())
    x = Tensor(np.ones((2, 4)))
    np.testing.assert_array_equal(a(x).data, b(x).data)
    state = a.state_dict()
    state["linears.0.weight"] = np.zeros((5, 3))
    with pytest.raises(
        ValueError,
        match=r"linears.0.weight has shape \(5, 3\) in the state but \(4, 3\) "
        r"in the model",
    ):
        b.load_state_dict(state)
    with pytest.raises(ValueError, match=r"missing \['linears.1.bias'\]; unexpected \['extra'\]"):
        b.load_state_dict(
            {
                **{k: v for k, v in a.state_dict().items() if k != "linears.1.bias"},
                "extra": np.zeros(1),
            }
        )
    sd = a.state_dict()
    sd["linears.0.bias"][:] = 7  # a copy: the model is untouched
    assert not (a.linears[0].bias.data == 7).any()


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.5, rng=rng())
    x = Tensor(np.ones((200, 200)))
    y = drop(x).data
    assert set(np.unique(y)) == {0.0, 2.0}
    assert abs(y.mean() - 1.0) < 0.02 and y.dtype == np.float32
    drop.eval()
    assert drop(x) is x
    model = nn.MLP([4, 4, 2], dropout=0.5, rng=rng())
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\), got 1.0"):
        nn.Dropout(1.0, rng=rng())


def test_activation_modules():
    x = Tensor([-1.0, 0.5])
    np.testing.assert_allclose(nn.ReLU()(x).data, [0, 0.5])
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x).data, [-0.1, 0.5])
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh([-1, 0.5]), rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp([1, -0.5])), rtol=1e-6)
    assert nn.GELU()(x).shape == (2,)


@given(logits_labels())
def test_fused_cross_entropy_matches_composite(case):
    (logits,), kw = case
    a = Tensor(logits, dtype=np.float64, requires_grad=True)
    b = Tensor(logits, dtype=np.float64, requires_grad=True)
    fused, composite = F.cross_entropy(a, kw["labels"]), F.nll_loss(b.log_softmax(), kw["labels"])
    np.testing.assert_allclose(fused.data, composite.data, rtol=1e-12, atol=1e-12)
    fused.backward()
    composite.backward()
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-12)


def test_cross_entropy_finite_for_huge_logits():
    for scale in (1e4, 1e30):
        logits = Tensor(np.array([[scale, 0.0, -scale], [-scale, scale, 0.0]]), requires_grad=True)
        loss = F.cross_entropy(logits, [2, 1])
        loss.backward()
        assert np.isfinite(loss.item()) and np.all(np.isfinite(logits.grad))
        soft = logits.softmax()
        assert np.all(np.isfinite(soft.data)) and np.all(
            np.isfinite(logits.log_softmax().data[:, :2])
        )


def test_cross_entropy_rejects_bad_labels():
    logits = Tensor(np.zeros((3, 10)))
    with pytest.raises(
        ValueError, match=r"cross_entropy: label 10 at position 1 is outside \[0, 10\)"
    ):
        F.cross_entropy(logits, [0, 10, 2])
    for dtype in (np.int64, np.int32, np.int8):  # a negative label must not wrap to the last class
        with pytest.raises(ValueError, match=r"label -1 at position 1 is outside \[0, 10\)"):
            F.cross_entropy(logits, np.array([0, -1, 2], dtype))
    with pytest.raises(ValueError, match=r"cross_entropy: expected integer labels of shape \(3,\)"):
        F.cross_entropy(logits, np.zeros(3))
    with pytest.raises(
        ValueError, match=r"cross_entropy: expected logits of shape \(batch, classes\)"
    ):
        F.cross_entropy(Tensor(np.zeros(10)), [1])


def test_accuracy():
    assert F.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == 0.5


def test_linear_init_draws_the_float64_values_in_float32_without_a_float64_copy():
    layer = nn.Linear(3000, 700, rng=np.random.default_rng(1))  # several row blocks
    expected = np.random.default_rng(1).standard_normal((3000, 700)) * np.sqrt(2 / 3000)
    assert layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, expected.astype(np.float32))


def test_module_call_passes_every_argument():
    class Cell(nn.Module):
        def __init__(self):
            self.w = Tensor(np.ones((2, 2)), requires_grad=True)

        def forward(self, x, h, *, scale=1.0):
            return (x @ self.w + h) * scale

    out = Cell()(Tensor(np.ones((1, 2))), Tensor(np.ones((1, 2))), scale=2.0)
    np.testing.assert_array_equal(out.data, [[6.0, 6.0]])


def test_module_list_and_dict_name_their_entries_and_reach_train_eval():
    rng = np.random.default_rng(0)

    class Net(nn.Module):
        def __init__(self):
            self.blocks = nn.ModuleList([nn.Linear(3, 3, rng=rng), nn.Dropout(0.5, rng=rng)])
            self.heads = nn.ModuleDict({"a": nn.Linear(3, 1, rng=rng), "b": nn.Identity()})
            self.flat = nn.Flatten()

    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "blocks.0.weight",
        "blocks.0.bias",
        "heads.a.weight",
        "heads.a.bias",
    ]
    net.eval()
    assert not net.blocks[1].training and not net.heads["a"].training
    assert len(net.blocks) == 2 and list(net.heads) == ["a", "b"] and "a" in net.heads
    assert net.flat(Tensor(np.ones((2, 3, 4)))).shape == (2, 12)
    x = Tensor(np.ones(3))
    assert net.heads["b"](x) is x
    with pytest.raises(TypeError, match="ModuleList: entries must be Modules, got int"):
        nn.ModuleList([1])
    state = net.state_dict()
    again = Net()
    again.load_state_dict(state)
    np.testing.assert_array_equal(again.heads["a"].weight.data, net.heads["a"].weight.data)


def test_clip_grad_norm_and_value_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal((3, 4)) * 5, rng.standard_normal(4)]
    for norm_type, max_norm in ((2.0, 1.0), (1.0, 3.0), (np.inf, 0.5), (2.0, 1e6)):
        ours = [Tensor(g * 0, dtype=np.float64, requires_grad=True) for g in grads]
        theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
        total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
        ref = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
        assert total == pytest.approx(float(ref), rel=1e-12)
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
    p = Tensor(np.zeros(3), requires_grad=True, dtype=np.float32)
    p.grad = np.array([-3.0, 0.5, 2.0], np.float32)
    nn.utils.clip_grad_value_([p], 1.0)
    assert p.grad.dtype == np.float32 and p.grad.tolist() == [-1.0, 0.5, 1.0]
    with pytest.raises(RuntimeError, match="the total norm of the gradients is inf"):
        p.grad = np.array([np.inf], np.float32)
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_one_hot():
    from tinygrad_np.nn import functional as F

    out = F.one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert out.dtype == np.int64 and out.shape == (2, 2, 3)
    assert out.data[0, 1].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match=r"one_hot: labels must be in \[0, 2\)"):
        F.one_hot(np.array([2]), 2)


def test_a_new_users_logistic_regression_with_bce_learns_two_blobs():
    """The program a new user writes first: a Linear(2, 1), binary_cross_entropy_with_logits, SGD;
    the sigmoid + binary_cross_entropy spelling gives the same loss."""
    from tinygrad_np import optim

    g = rng(3)
    x = np.concatenate([g.normal(-1.5, 1.0, (100, 2)), g.normal(1.5, 1.0, (100, 2))])
    y = np.repeat(np.array([0.0, 1.0]), 100).reshape(-1, 1)
    model = nn.Linear(2, 1, rng=g)
    opt = optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(50):
        logits = model(Tensor(x, dtype=np.float32))
        loss = F.binary_cross_entropy_with_logits(logits, y.astype(np.float32))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0] and losses[-1] < 0.15
    logits = model(Tensor(x, dtype=np.float32))
    assert np.mean((logits.data > 0) == (y > 0.5)) > 0.95  # the blobs overlap a little
    same = F.binary_cross_entropy(logits.sigmoid(), y.astype(np.float32))
    np.testing.assert_allclose(
        float(same.data),
        float(F.binary_cross_entropy_with_logits(logits, y.astype(np.float32)).data),
        rtol=1e-5,
    )
