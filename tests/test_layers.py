"""Embedding, LayerNorm, the recurrent cells and sequences, nn.init, F.dropout and cross_entropy's
options: gradcheck (first and second order, float64), PyTorch to 1e-10 (weights copied into torch's
module), init statistics, errors, and a small RNN trained with clip_grad_norm_."""

import math

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import Tensor, gradcheck, nn
from tinygrad_np.nn import functional as F
from tinygrad_np.nn import init

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
F64 = np.float64


def rng(seed=0):
    return np.random.default_rng(seed)


def t64(a):
    return Tensor(a, dtype=F64)


def tt(a):
    return torch.tensor(np.asarray(a.data if isinstance(a, Tensor) else a))


def copy_into(ours: nn.Module, theirs) -> None:
    """Our parameters into torch's module, by name (both use torch's names and layouts)."""
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr(theirs, name).copy_(tt(p))


def assert_close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def assert_grads_match(ours: nn.Module, theirs) -> None:
    for name, p in ours.named_parameters():
        assert_close(p.grad, getattr(theirs, name).grad.numpy())


# --- gradcheck, first and second order, float64 ---

CELLS = [
    (nn.RNNCell, {}),
    (nn.RNNCell, {"nonlinearity": "relu"}),
    (nn.GRUCell, {}),
    (nn.LSTMCell, {}),
]


def cell_fn(cls, kwargs, bias=True):
    """(x, h[, c], weight_ih, weight_hh[, bias_ih, bias_hh]) -> the cell's output, the cell's
    parameters replaced by the inputs, so gradcheck sees every one of them."""
    cell = cls(3, 2, bias=bias, rng=rng(), dtype=F64, **kwargs)
    names = [n for n, _ in cell.named_parameters()]
    lstm = cls is nn.LSTMCell

    def fn(x, h, *rest):
        c, params = (rest[0], rest[1:]) if lstm else (None, rest)
        for name, p in zip(names, params):
            setattr(cell, name, p)
        if lstm:
            h2, c2 = cell(x, (h, c))
            return tg.concatenate([h2, c2 * 0.5], axis=-1)
        return cell(x, h)

    return fn, cell


@pytest.mark.parametrize("cls, kwargs", CELLS, ids=["rnn_tanh", "rnn_relu", "gru", "lstm"])
@pytest.mark.parametrize("order", [1, 2])
def test_cells_gradcheck(cls, kwargs, order):
    r = rng(1)
    fn, cell = cell_fn(cls, kwargs)
    x, h = r.standard_normal((2, 3)), r.standard_normal((2, 2))
    states = [h, r.standard_normal((2, 2))] if cls is nn.LSTMCell else [h]
    params = [p.data.copy() for p in cell.parameters()]
    if kwargs.get("nonlinearity") == "relu":  # keep the pre-activations off relu's kink
        pre = x @ params[0].T + params[2] + h @ params[1].T + params[3]
        assert np.abs(pre).min() > 1e-3
    assert gradcheck(fn, x, *states, *params, order=order)


def test_cell_without_bias_gradcheck():
    fn, cell = cell_fn(nn.GRUCell, {}, bias=False)
    r = rng(2)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"]
    params = [p.data.copy() for p in cell.parameters()]
    assert gradcheck(fn, r.standard_normal((2, 3)), r.standard_normal((2, 2)), *params, order=2)


def test_lstm_sequence_gradcheck():
    lstm = nn.LSTM(2, 2, num_layers=2, rng=rng(), dtype=F64)
    names = [n for n, _ in lstm.named_parameters()]

    def fn(x, *params):
        for name, p in zip(names, params):
            setattr(lstm, name, p)
        out, (h, c) = lstm(x)
        return out.sum(0) + c[1]

    params = [p.data.copy() for p in lstm.parameters()]
    assert gradcheck(fn, rng(3).standard_normal((3, 1, 2)), *params)


@pytest.mark.parametrize("order", [1, 2])
def test_layer_norm_module_gradcheck(order):
    ln = nn.LayerNorm((2, 3), dtype=F64)

    def fn(x, w, b):
        ln.weight, ln.bias = w, b
        return ln(x)

    r = rng(4)
    assert gradcheck(
        fn, r.standard_normal((2, 2, 3)), r.standard_normal((2, 3)), r.standard_normal((2, 3)),
        order=order,
    )  # fmt: skip


@pytest.mark.parametrize("order", [1, 2])
def test_embedding_module_gradcheck(order):
    emb = nn.Embedding(4, 3, rng=rng(), dtype=F64)
    ids = np.array([[0, 2, 2], [3, 0, 2]])  # repeats: their gradients add up

    def fn(w):
        emb.weight = w
        return emb(ids)

    assert gradcheck(fn, rng(5).standard_normal((4, 3)), order=order)


# --- equal to PyTorch, float64 ---


@needs_torch
@pytest.mark.parametrize("cls, kwargs", CELLS, ids=["rnn_tanh", "rnn_relu", "gru", "lstm"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(cls, kwargs, batched):
    r = rng(6)
    ours = cls(3, 4, rng=r, dtype=F64, **kwargs)
    theirs = getattr(torch.nn, cls.__name__)(3, 4, **kwargs).double()
    copy_into(ours, theirs)
    lead = (5,) if batched else ()
    x, h, c = (r.standard_normal(lead + (n,)) for n in (3, 4, 4))
    xt = tt(x).requires_grad_()
    ours_x = Tensor(x, dtype=F64, requires_grad=True)
    if cls is nn.LSTMCell:
        (h1, c1), (h2, c2) = ours(ours_x, (t64(h), t64(c))), theirs(xt, (tt(h), tt(c)))
        out, ref = h1 * 2.0 + c1, h2 * 2.0 + c2
    else:
        out, ref = ours(ours_x, t64(h)), theirs(xt, tt(h))
    assert out.shape == tuple(ref.shape)
    assert_close(out.data, ref.detach().numpy())
    cot = r.standard_normal(out.shape)
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    assert_grads_match(ours, theirs)
    assert_close(ours_x.grad, xt.grad.numpy())


@needs_torch
def test_cells_default_to_a_zero_state_like_torch():
    r = rng(7)
    for cls in (nn.RNNCell, nn.GRUCell, nn.LSTMCell):
        ours = cls(3, 2, rng=r, dtype=F64)
        theirs = getattr(torch.nn, cls.__name__)(3, 2).double()
        copy_into(ours, theirs)
        x = r.standard_normal((4, 3))
        out, ref = ours(t64(x)), theirs(tt(x))
        if cls is nn.LSTMCell:
            out, ref = out[1], ref[1]
        assert_close(out.data, ref.detach().numpy())


@needs_torch
@pytest.mark.parametrize("cls", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_sequences_match_torch(cls, batch_first):
    r = rng(8)
    kwargs = {"num_layers": 2, "batch_first": batch_first}
    if cls == "RNN":
        kwargs["nonlinearity"] = "relu" if batch_first else "tanh"
    ours = getattr(nn, cls)(3, 4, rng=r, dtype=F64, **kwargs)
    theirs = getattr(torch.nn, cls)(3, 4, **kwargs).double()
    copy_into(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # torch's names, in its order
    x = r.standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    h0, c0 = r.standard_normal((2, 2, 4)), r.standard_normal((2, 2, 4))
    if cls == "LSTM":
        out, (h, c) = ours(t64(x), (t64(h0), t64(c0)))
        ref, (ht, ct) = theirs(tt(x), (tt(h0), tt(c0)))
        final, final_t = h * 1.5 + c, ht * 1.5 + ct
    else:
        out, final = ours(t64(x), t64(h0))
        ref, final_t = theirs(tt(x), tt(h0))
    assert out.shape == tuple(ref.shape) and final.shape == tuple(final_t.shape)
    assert_close(out.data, ref.detach().numpy())
    assert_close(final.data, final_t.detach().numpy())
    cot, cot_final = r.standard_normal(out.shape), r.standard_normal(final.shape)
    ((out * cot).sum() + (final * cot_final).sum()).backward()
    ((ref * torch.from_numpy(cot)).sum() + (final_t * torch.from_numpy(cot_final)).sum()).backward()
    assert_grads_match(ours, theirs)


@needs_torch
def test_unbatched_lstm_and_rnn_match_torch():
    r = rng(9)
    for cls in ("LSTM", "RNN"):
        ours = getattr(nn, cls)(3, 2, rng=r, dtype=F64)
        theirs = getattr(torch.nn, cls)(3, 2).double()
        copy_into(ours, theirs)
        x = r.standard_normal((4, 3))
        out, state = ours(t64(x))
        ref, state_t = theirs(tt(x))
        assert out.shape == (4, 2)
        assert_close(out.data, ref.detach().numpy())
        h, h_t = (state[0], state_t[0]) if cls == "LSTM" else (state, state_t)
        assert h.shape == tuple(h_t.shape) == (1, 2)
        assert_close(h.data, h_t.detach().numpy())


def test_sequence_equals_its_cells_step_by_step():
    """RNN's layer 0 is RNNCell applied along the sequence, with the same weights."""
    seq = nn.RNN(3, 2, rng=rng(), dtype=F64)
    cell = nn.RNNCell(3, 2, rng=rng(1), dtype=F64)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        setattr(cell, name, getattr(seq, name + "_l0"))
    x = rng(2).standard_normal((4, 2, 3))
    out, h = seq(t64(x))
    state = None
    for t in range(4):
        state = cell(t64(x[t]), state)
        np.testing.assert_array_equal(out.data[t], state.data)
    np.testing.assert_array_equal(h.data[0], state.data)


@needs_torch
@pytest.mark.parametrize("shape, affine, bias", [((4,), True, True), ((2, 3), True, False), ((3,), False, False)])  # fmt: skip
def test_layer_norm_matches_torch(shape, affine, bias):
    r = rng(10)
    ours = nn.LayerNorm(shape, eps=1e-3, elementwise_affine=affine, bias=bias, dtype=F64)
    theirs = torch.nn.LayerNorm(shape, eps=1e-3, elementwise_affine=affine, bias=bias).double()
    for p in ours.parameters():  # not the ones and zeros they start at
        p.data[...] = r.standard_normal(p.shape)
    copy_into(ours, theirs)
    x = r.standard_normal((2, 3) + shape)
    ours_x, xt = Tensor(x, dtype=F64, requires_grad=True), tt(x).requires_grad_()
    out, ref = ours(ours_x), theirs(xt)
    assert_close(out.data, ref.detach().numpy())
    cot = r.standard_normal(out.shape)
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    assert_close(ours_x.grad, xt.grad.numpy())
    assert_grads_match(ours, theirs)


@needs_torch
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(padding_idx):
    r = rng(11)
    ours = nn.Embedding(5, 3, padding_idx=padding_idx, rng=r, dtype=F64)
    theirs = torch.nn.Embedding(5, 3, padding_idx=padding_idx).double()
    if padding_idx is not None:  # the padding row starts at zero; give it a value to return
        assert not ours.weight.data[padding_idx].any()
        ours.weight.data[padding_idx] = r.standard_normal(3)
    copy_into(ours, theirs)
    ids = np.array([[0, 2, 4, 2], [4, 4, 1, 3]])
    out, ref = ours(Tensor(ids, dtype=np.int64)), theirs(torch.from_numpy(ids))
    assert out.shape == (2, 4, 3)
    assert_close(out.data, ref.detach().numpy())
    cot = r.standard_normal(out.shape)
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    assert_grads_match(ours, theirs)
    if padding_idx is not None:
        assert not ours.weight.grad[padding_idx].any()


@needs_torch
def test_cross_entropy_options_match_torch():
    """label_smoothing, weight and ignore_index together, each reduction (the case table draws
    the combinations; this is the fixed example with every option at once)."""
    r = rng(12)
    x, w = r.standard_normal((7, 4)), r.uniform(0.3, 2.0, 4)
    labels = np.array([0, 3, -100, 2, 1, 3, -100])
    for reduction in ("mean", "sum", "none"):
        ours, xt = Tensor(x, dtype=F64, requires_grad=True), tt(x).requires_grad_()
        kwargs = {"label_smoothing": 0.2, "reduction": reduction}
        out = F.cross_entropy(ours, labels, weight=w, **kwargs)
        ref = torch.nn.functional.cross_entropy(xt, torch.from_numpy(labels), tt(w), **kwargs)
        assert_close(out.data, ref.detach().numpy())
        cot = r.standard_normal(out.shape)
        out.backward(cot)
        ref.backward(torch.from_numpy(cot))
        assert_close(ours.grad, xt.grad.numpy())


def test_plain_cross_entropy_is_the_fused_primitive_and_equals_the_composite():
    r = rng(13)
    x, labels = t64(r.standard_normal((6, 5))), r.integers(0, 5, 6)
    x.requires_grad = True
    fused = F.cross_entropy(x, labels)
    assert type(fused._op).__name__ == "CrossEntropy"
    # ignore_index pointing at a class that occurs makes it the composite; unused, the same value
    composite = F.cross_entropy(x, labels, ignore_index=int(labels[0]))
    assert type(composite._op).__name__ != "CrossEntropy"
    spelled = F.cross_entropy(x, labels, label_smoothing=0.0, weight=np.ones(5))
    assert type(spelled._op).__name__ != "CrossEntropy"
    np.testing.assert_allclose(spelled.data, fused.data, rtol=1e-14)


# --- float32 in, float32 out ---


def test_layers_keep_float32():
    r = rng(14)
    x = Tensor(r.standard_normal((5, 2, 3)))
    ids = np.array([1, 0, 3])
    outs = [
        nn.LSTM(3, 4, num_layers=2, rng=r)(x)[1][1],
        nn.GRU(3, 4, batch_first=True, rng=r)(x)[0],
        nn.RNNCell(3, 4, rng=r)(x[0]),
        nn.LayerNorm(3)(x),
        nn.Embedding(4, 3, rng=r)(ids),
        F.cross_entropy(x[0], np.array([0, 2]), weight=np.ones(3), label_smoothing=0.1),
        F.dropout(x, 0.3, rng=r),
    ]
    for out in outs:
        assert out.dtype == np.float32


# --- nn.init ---

N_ROWS, N_COLS = 300, 500  # 150,000 draws: the sample std is within 1% of the true one (>5 sigma)


def std_close(values, expected):
    assert abs(values.std() / expected - 1) < 4 / math.sqrt(values.size), (values.std(), expected)
    assert abs(values.mean()) < 5 * expected / math.sqrt(values.size)


@needs_torch
def test_calculate_gain_equals_torch():
    for name in init.NONLINEARITIES:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2)
    )


@pytest.mark.parametrize(
    "fn, kwargs, std",
    [
        (init.xavier_normal_, {"gain": 2.0}, 2.0 * math.sqrt(2 / (N_ROWS + N_COLS))),
        (init.xavier_uniform_, {}, math.sqrt(2 / (N_ROWS + N_COLS))),
        (init.kaiming_normal_, {"nonlinearity": "relu"}, math.sqrt(2 / N_COLS)),
        (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / N_ROWS)),
        (init.kaiming_uniform_, {"a": 0.3}, math.sqrt(2 / (1 + 0.09) / N_COLS)),
        (init.kaiming_uniform_, {"nonlinearity": "tanh", "mode": "fan_out"}, 5 / 3 / math.sqrt(N_ROWS)),  # fmt: skip
        (init.normal_, {"mean": 0.0, "std": 0.3}, 0.3),
        (init.uniform_, {"a": -0.5, "b": 0.5}, 1 / math.sqrt(12)),
    ],
)
def test_init_statistics(fn, kwargs, std):
    """torch's layout: (out, in) = (300, 500), so fan_in is 500 and fan_out 300."""
    t = Tensor(np.zeros((N_ROWS, N_COLS)))
    before = t.data
    assert fn(t, rng=rng(15), **kwargs) is t
    assert t.data is before and t.dtype == np.float32  # in place, in the tensor's dtype
    std_close(t.data.astype(np.float64), std)
    if fn in (init.xavier_uniform_, init.kaiming_uniform_, init.uniform_):
        bound = std * math.sqrt(3)
        assert np.abs(t.data).max() <= bound * (1 + 1e-6)
        assert np.abs(t.data).max() > bound * 0.999  # the bound is reached, not a narrower one


def test_transposed_fans_are_for_weights_stored_in_out():
    t = Tensor(np.zeros((N_COLS, N_ROWS)))  # (in, out), as nn.Linear stores it
    init.kaiming_normal_(t, nonlinearity="relu", rng=rng(16), transposed=True)
    std_close(t.data.astype(np.float64), math.sqrt(2 / N_COLS))
    assert init.calculate_fans((4, 3, 5, 5)) == (75, 100)
    assert init.calculate_fans((7, 4), transposed=True) == (7, 4)


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (4, 3, 2, 2), (5, 5)])
def test_orthogonal(shape):
    t = Tensor(np.zeros(shape), dtype=F64)
    init.orthogonal_(t, gain=1.5, rng=rng(17))
    flat = t.data.reshape(shape[0], -1) / 1.5
    small = min(flat.shape)
    gram = flat @ flat.T if flat.shape[0] == small else flat.T @ flat
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    t32 = Tensor(np.zeros(shape))
    init.orthogonal_(t32, rng=rng(17))
    np.testing.assert_allclose(t32.data, t.data / 1.5, atol=1e-6)  # the same draw, in float32
    assert t32.dtype == np.float32


def test_constant_inits_and_determinism():
    t = Tensor(np.full((2, 3), 7.0))
    assert not init.zeros_(t).data.any()
    assert (init.ones_(t).data == 1).all()
    assert (init.constant_(t, -0.25).data == -0.25).all()
    a, b = Tensor(np.zeros((4, 4))), Tensor(np.zeros((4, 4)))
    init.xavier_uniform_(a, rng=rng(3))
    init.glorot_uniform_(b, rng=rng(3))
    np.testing.assert_array_equal(a.data, b.data)


def test_recurrent_init_is_torch_uniform():
    k = 1 / math.sqrt(50)
    lstm = nn.LSTM(40, 50, num_layers=2, rng=rng(18))
    values = np.concatenate([p.data.ravel() for p in lstm.parameters()]).astype(np.float64)
    assert np.abs(values).max() <= k and np.abs(values).max() > 0.999 * k
    std_close(values, k / math.sqrt(3))
    assert lstm.weight_ih_l0.shape == (200, 40) and lstm.weight_hh_l1.shape == (200, 50)
    assert nn.GRUCell(3, 5, rng=rng()).bias_hh.shape == (15,)


def test_mlp_init_by_activation():
    sizes = [300, 200, 10]
    relu = nn.MLP(sizes, rng=rng(19))
    r = rng(19)  # the relu MLP's weights are exactly the He draws they were before nn.init
    for layer, (a, b) in zip(relu.linears, zip(sizes[:-1], sizes[1:])):
        expected = (r.standard_normal((a, b)) * math.sqrt(2.0 / a)).astype(np.float32)
        np.testing.assert_array_equal(layer.weight.data, expected)
    tanh = nn.MLP(sizes, activation="tanh", rng=rng(19))
    std_close(tanh.linears[0].weight.data.astype(F64), 5 / 3 * math.sqrt(2 / 500))
    sigmoid = nn.MLP(sizes, activation="sigmoid", rng=rng(19))
    std_close(sigmoid.linears[0].weight.data.astype(F64), math.sqrt(2 / 500))


# --- F.dropout ---


def test_functional_dropout():
    x = Tensor(np.ones((200, 500)), requires_grad=True)
    assert F.dropout(x, 0.3, training=False) is x
    assert F.dropout(x, 0.0, rng=rng()) is x
    out = F.dropout(x, 0.3, rng=rng(20))
    kept = out.data != 0
    assert abs(kept.mean() - 0.7) < 5 * math.sqrt(0.21 / kept.size)
    np.testing.assert_allclose(out.data[kept], 1 / 0.7, rtol=1e-6)
    again = F.dropout(x, 0.3, rng=rng(20))
    np.testing.assert_array_equal(out.data, again.data)  # the mask comes from the generator only
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.data)  # the gradient is the mask


# --- errors name the op or layer, the values and the fix ---


def test_errors():
    emb = nn.Embedding(10, 4, rng=rng())
    with pytest.raises(IndexError, match=r"Embedding\(10, 4\): id 12 at position \(1, 0\).*\[0, 10\)"):
        emb([[1, 2], [12, 3]])
    with pytest.raises(IndexError, match=r"Embedding\(10, 4\): id -1"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match=r"Embedding.*integers, got float"):
        emb(np.array([1.0]))
    with pytest.raises(ValueError, match="padding_idx 10"):
        nn.Embedding(10, 4, padding_idx=10, rng=rng())
    with pytest.raises(ValueError, match=r"layer_norm: input of shape \(2, 3\) does not end in normalized_shape \(4,\)"):  # fmt: skip
        nn.LayerNorm(4)(Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"LSTMCell: expected input of shape .* input_size 3, got \(2, 5\)"):  # fmt: skip
        nn.LSTMCell(3, 2, rng=rng())(Tensor(np.zeros((2, 5))))
    with pytest.raises(ValueError, match=r"GRUCell: hx has shape \(2, 3\), expected \(2, 2\)"):
        nn.GRUCell(3, 2, rng=rng())(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 3))))
    with pytest.raises(TypeError, match=r"LSTM: the state must be a pair"):
        nn.LSTM(3, 2, rng=rng())(Tensor(np.zeros((4, 1, 3))), Tensor(np.zeros((1, 1, 2))))
    with pytest.raises(ValueError, match=r"RNN: h0 has shape \(2, 1, 2\), expected \(num_layers=1"):
        nn.RNN(3, 2, rng=rng())(Tensor(np.zeros((4, 1, 3))), Tensor(np.zeros((2, 1, 2))))
    with pytest.raises(ValueError, match="bidirectional=True is not supported"):
        nn.LSTM(3, 2, bidirectional=True, rng=rng())
    with pytest.raises(ValueError, match="RNNCell: nonlinearity must be 'tanh' or 'relu'"):
        nn.RNNCell(3, 2, nonlinearity="sigmoid", rng=rng())
    with pytest.raises(TypeError, match=r"RNNCell: pass rng=np.random.default_rng"):
        nn.RNNCell(3, 2, rng=None)
    x = Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"label 7 at position 1 is outside \[0, 4\) and is not ignore_index \(-100\)"):  # fmt: skip
        F.cross_entropy(x, np.array([0, 7, 1]), label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"label -3 at position 2 is outside \[0, 4\)"):
        F.cross_entropy(x, np.array([0, 1, -3]))  # the fused path still names a bad label
    with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(4,\), got \(3,\)"):  # fmt: skip
        F.cross_entropy(x, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        F.cross_entropy(x, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(TypeError, match=r"dropout: pass rng="):
        F.dropout(x, 0.5)
    with pytest.raises(TypeError, match=r"kaiming_normal_: pass rng="):
        init.kaiming_normal_(x, rng=None)
    with pytest.raises(ValueError, match=r"xavier_uniform_: fan in and fan out need .* shape \(3,\)"):
        init.xavier_uniform_(Tensor(np.zeros(3)), rng=rng())
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(x, mode="fan", rng=rng())
    with pytest.raises(ValueError, match="calculate_gain: unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(TypeError, match="random values need a float tensor"):
        init.normal_(Tensor(np.zeros(3, np.int64), dtype=np.int64), rng=rng())


# --- the new user's program: a character RNN cell trained a few steps with clip_grad_norm_ ---


def test_rnn_cell_trains_with_clip_grad_norm():
    text = "hello world, hello rnn. " * 4
    chars = sorted(set(text))
    ids = np.array([chars.index(ch) for ch in text])
    r = rng(21)
    emb = nn.Embedding(len(chars), 8, rng=r)
    cell = nn.RNNCell(8, 32, rng=r)
    head = nn.Linear(32, len(chars), rng=r, nonlinearity="linear")
    params = emb.parameters() + cell.parameters() + head.parameters()
    opt = tg.optim.Adam(params, lr=0.02)
    losses, norms = [], []
    for step in range(30):
        start = (step * 12) % (len(ids) - 13)
        window = ids[start : start + 13]
        h, loss = None, 0.0
        for t in range(12):  # truncated backpropagation through 12 steps
            h = cell(emb(window[t : t + 1]), h)
            loss = loss + F.cross_entropy(head(h), window[t + 1 : t + 2])
        loss = loss * (1 / 12)
        opt.zero_grad()
        loss.backward()
        norms.append(nn.utils.clip_grad_norm_(params, 1.0))
        clipped = math.sqrt(sum(float((p.grad.astype(F64) ** 2).sum()) for p in params))
        assert clipped <= 1.0 + 1e-4
        opt.step()
        losses.append(loss.item())
    assert max(norms) > 1.0  # clipping did something
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses


def test_a_recurrent_step_replays_under_jit_bit_for_bit():
    """Embedding, LSTMCell, LayerNorm, dropout, a smoothed weighted cross_entropy and
    clip_grad_norm_ captured by tg.jit: the replay equals eager, step by step."""
    r = rng(22)
    ids, targets = r.integers(0, 6, (8, 6, 4)), r.integers(0, 6, (8, 4))
    runs = []
    for jitted in (False, True):
        g = rng(23)
        emb, cell = nn.Embedding(6, 5, padding_idx=0, rng=g), nn.LSTMCell(5, 8, rng=g)
        norm, head = nn.LayerNorm(8), nn.Linear(8, 6, rng=g, nonlinearity="linear")
        params = emb.parameters() + cell.parameters() + norm.parameters() + head.parameters()
        opt, weight = tg.optim.SGD(params, lr=0.3), np.linspace(0.5, 1.5, 6)

        def step(seq, y):
            state, seq = None, Tensor(seq, dtype=np.int64)  # seq[t]: a Tensor op, replayed
            for t in range(seq.shape[0]):
                state = cell(emb(seq[t]), state)
            h = F.dropout(norm(state[0]), 0.2, rng=g)
            loss = F.cross_entropy(head(h), y, weight=weight, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 0.5)
            opt.step()
            return loss

        fn = tg.jit(step) if jitted else step
        runs.append(([float(fn(ids[i], targets[i]).data) for i in range(8)], cell.weight_hh.data.copy()))
    with pytest.raises(IndexError, match=r"Embedding\(6, 5, padding_idx=0\): id 6"):
        fn(np.full((6, 4), 6), targets[0])  # a replay checks that call's ids
    (eager, w_eager), (replay, w_replay) = runs
    np.testing.assert_array_equal(replay, eager)
    np.testing.assert_array_equal(w_replay, w_eager)
    assert len(set(eager)) == 8


@needs_torch
def test_cross_entropy_with_class_probabilities_matches_torch():
    r = rng(24)
    x, w = r.standard_normal((5, 3)), r.uniform(0.3, 2.0, 3)
    probs = r.dirichlet(np.ones(3), 5)
    for kwargs in ({}, {"label_smoothing": 0.25, "reduction": "sum"}, {"reduction": "none"}):
        for weight in (None, w):
            ours, xt = Tensor(x, dtype=F64, requires_grad=True), tt(x).requires_grad_()
            out = F.cross_entropy(ours, probs, weight=weight, **kwargs)
            wt = None if weight is None else tt(weight)
            ref = torch.nn.functional.cross_entropy(xt, tt(probs), wt, **kwargs)
            assert_close(out.data, ref.detach().numpy())
            cot = r.standard_normal(out.shape)
            out.backward(cot)
            ref.backward(torch.from_numpy(cot))
            assert_close(ours.grad, xt.grad.numpy())
    with pytest.raises(ValueError, match=r"class probabilities must have the logits' shape \(5, 3\)"):
        F.cross_entropy(Tensor(x), probs[:, :2])


def test_sequence_dropout_acts_between_layers_while_training_only():
    x = t64(rng(25).standard_normal((4, 2, 3)))
    plain = nn.LSTM(3, 5, num_layers=2, rng=rng(26), dtype=F64)
    dropped = nn.LSTM(3, 5, num_layers=2, dropout=0.5, rng=rng(26), dtype=F64)
    ref_out, (ref_h, _) = plain(x)
    out, (h, _) = dropped(x)
    np.testing.assert_array_equal(h.data[0], ref_h.data[0])  # the first layer sees no dropout
    assert not np.allclose(out.data, ref_out.data)  # the second one's input was dropped
    dropped.eval()
    np.testing.assert_array_equal(dropped(x)[0].data, ref_out.data)
