"""The convolutional layers: PyTorch's outputs, gradients, initialisation and running statistics,
max pooling's routing of ties, clear errors, state dicts with buffers, and a jitted CNN step that
replays bit for bit. The rules' own gradient checks are in the case table (tests/cases.py)."""

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import Tensor, nn, optim, windows
from tinygrad_np.nn import functional as F

try:
    import torch

    from tinygrad_np.interop import to_torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the oracle) is not installed")


def small_cnn(seed=0, dropout=0.0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout2d(dropout, rng=rng),
        nn.Conv2d(4, 6, 3, rng=rng),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3, rng=rng),
    )


def images(seed=1, n=8):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n)


@needs_torch
def test_cnn_training_steps_match_torch_with_running_statistics():
    """Three SGD steps in float32: losses, every weight and the running statistics to 1e-5, then
    eval() outputs from the running statistics."""
    model = small_cnn()
    twin = to_torch(model)  # the same weights, in torch's layout
    opt = optim.SGD(model.parameters(), lr=0.1)
    topt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for step in range(3):
        x, y = images(seed=step)
        opt.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), y)
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    np.testing.assert_allclose(model.layers[0].weight.data, twin[0].weight.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(model.layers[1].running_mean.data, twin[1].running_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(model.layers[1].running_var.data, twin[1].running_var.numpy(), atol=1e-6)
    model.eval()
    twin.eval()
    x, _ = images(seed=9)
    out = model(Tensor(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, twin(torch.tensor(x)).detach().numpy(), atol=1e-5)


@needs_torch
def test_conv1d_layer_matches_torch():
    rng = np.random.default_rng(0)
    ours = nn.Conv1d(3, 4, 5, stride=2, padding=2, dilation=1, groups=1, rng=rng)
    theirs = torch.nn.Conv1d(3, 4, 5, stride=2, padding=2)
    theirs.weight.data, theirs.bias.data = torch.tensor(ours.weight.data), torch.tensor(ours.bias.data)
    x = rng.standard_normal((2, 3, 11)).astype(np.float32)
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)


def test_conv_initialisation_is_pytorchs_uniform_bound():
    layer = nn.Conv2d(8, 16, 3, groups=2, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(8 // 2 * 9)
    w = layer.weight.data
    assert w.shape == (16, 4, 3, 3) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.1 * bound  # a uniform's std, 576 draws
    assert np.abs(layer.bias.data).max() <= bound


@needs_torch
def test_max_pool_sends_a_tied_window_gradient_to_its_first_maximum_like_torch():
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 3.0, 3.0], [5.0, 5.0, 1.0, 1.0], [5.0, 5.0, 1.0, 1.0]]]])
    for kwargs in ({"kernel_size": 2}, {"kernel_size": 2, "stride": 1}, {"kernel_size": 3, "stride": 1, "padding": 1}):
        ours = Tensor(x, dtype=np.float64, requires_grad=True)
        F.max_pool2d(ours, **kwargs).sum().backward()
        theirs = torch.tensor(x, requires_grad=True)
        torch.nn.functional.max_pool2d(theirs, **kwargs).sum().backward()
        np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())
    assert ours.grad.sum() == 16  # each of the 16 windows gives its 1 to one element


def test_state_dict_holds_running_statistics_and_loads_them_back():
    model, x = small_cnn(), images()[0]
    model(Tensor(x))  # training: the running statistics move
    state = model.state_dict()
    assert "layers.1.running_mean" in state and "layers.1.running_var" in state
    assert not np.all(state["layers.1.running_mean"] == 0)
    fresh = small_cnn(seed=5)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.layers[1].running_var.data, state["layers.1.running_var"])
    assert all(not b.requires_grad for b in fresh.buffers())
    assert len(fresh.parameters()) == 8  # buffers are not parameters


def test_save_and_restore_a_cnn_checkpoint(tmp_path):
    model, opt = small_cnn(), None
    model(Tensor(images()[0]))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    tg.save_checkpoint(tmp_path / "cnn.npz", model, opt)
    fresh = small_cnn(seed=3)
    tg.restore(tmp_path / "cnn.npz", fresh, optim.Adam(fresh.parameters(), lr=1e-3))
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("dropout, smoothing", [(0.0, 0.0), (0.3, 0.1)])
def test_jitted_cnn_step_replays_eager_bit_for_bit(dropout, smoothing):
    def step(model, opt, x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), y, label_smoothing=smoothing)
        loss.backward()
        opt.step()
        return loss

    runs = []
    for jitted in (False, True):
        model = small_cnn(dropout=dropout)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        fn = tg.jit(step) if jitted else step
        losses = [fn(model, opt, *images(seed=i % 4)).data.copy() for i in range(12)]
        runs.append((losses, model.state_dict()))
    (eager, s_eager), (replay, s_replay) = runs
    np.testing.assert_array_equal(replay, eager)
    for name in s_eager:  # weights and running statistics
        np.testing.assert_array_equal(s_replay[name], s_eager[name], err_msg=name)


def test_float32_in_float32_out_through_every_layer():
    model, (x, y) = small_cnn(dropout=0.2), images()
    out = model(Tensor(x))
    F.cross_entropy(out, y).backward()
    assert out.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    assert all(b.dtype == np.float32 for b in model.buffers())


def test_unbatched_input_as_pytorch_allows():
    w = Tensor(np.ones((2, 3, 3, 3)))
    assert F.conv2d(Tensor(np.ones((3, 5, 5))), w).shape == (2, 3, 3)
    assert F.max_pool2d(Tensor(np.ones((3, 4, 4))), 2).shape == (3, 2, 2)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.conv2d(Tensor(np.ones((1, 3, 5, 5))), Tensor(np.ones((2, 2, 3, 3)))), "conv2d: input has 3 channels"),
        (lambda: F.conv2d(Tensor(np.ones((1, 1, 2, 2))), Tensor(np.ones((1, 1, 3, 3)))), "conv2d: the input's spatial size (2, 2)"),
        (lambda: F.conv2d(Tensor(np.ones((1, 1, 5, 5))), Tensor(np.ones((1, 1, 3, 3))), stride=2, padding="same"), "padding='same' needs stride 1"),
        (lambda: F.conv2d(Tensor(np.ones((5, 5))), Tensor(np.ones((1, 1, 3, 3)))), "conv2d: expected input of shape (N, C, H, W)"),
        (lambda: F.conv2d(Tensor(np.ones((1, 1, 5, 5))), Tensor(np.ones((1, 1, 3, 3))), stride=0), "conv2d: stride must be an int >= 1"),
        (lambda: F.conv2d(Tensor(np.ones((1, 1, 5, 5))), Tensor(np.ones((1, 1, 3, 3))), Tensor(np.ones(2))), "conv2d: bias must have shape (1,)"),
        (lambda: F.max_pool2d(Tensor(np.ones((1, 1, 4, 4))), 2, padding=2), "max_pool2d: padding (2, 2) must be at most half"),
        (lambda: F.max_pool2d(Tensor(np.ones((1, 1, 4, 4))), 2, ceil_mode=True), "max_pool2d: ceil_mode=True is not supported"),
        (lambda: F.avg_pool2d(Tensor(np.ones((1, 1, 1, 1))), 3, padding=1, stride=5), None),
        (lambda: F.batch_norm(Tensor(np.ones((1, 2))), None, None, training=True), "more than one value per channel"),
        (lambda: F.batch_norm(Tensor(np.ones((4, 2))), None, None), "training=False) normalises with running_mean"),
        (lambda: nn.BatchNorm2d(3)(Tensor(np.ones((4, 3)))), "BatchNorm2d: expected input with 4 dimensions"),
        (lambda: nn.Conv2d(3, 4, 3, groups=2, rng=np.random.default_rng(0)), "divide by groups 2"),
    ],
)
def test_bad_arguments_raise_errors_naming_the_op(call, message):
    if message is None:  # a window that fits once padded is fine
        assert call().shape == (1, 1, 1, 1)
        return
    with pytest.raises((ValueError, NotImplementedError)) as info:
        call()
    assert message in str(info.value)


def test_mixed_float_dtypes_are_refused():
    with pytest.raises(TypeError, match="conv2d: input is float32 but a parameter is float64"):
        F.conv2d(Tensor(np.ones((1, 1, 4, 4))), Tensor(np.ones((1, 1, 3, 3)), dtype=np.float64))


def test_fused_batch_norm_equals_its_composite():
    """ops.BatchNorm against the expression it replaces: values and all three gradients, float64."""
    rng = np.random.default_rng(0)
    for shape in [(4, 3), (3, 2, 5), (2, 3, 4, 4)]:
        x, w, b = rng.standard_normal(shape), rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
        cot = rng.standard_normal(shape)
        grads = []
        for fused in (True, False):
            ts = [Tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w, b)]
            if fused:
                out = F.batch_norm(ts[0], None, None, ts[1], ts[2], training=True)
            else:
                axes, bshape = (0,) + tuple(range(2, len(shape))), (1, shape[1]) + (1,) * (len(shape) - 2)
                centered = ts[0] - ts[0].mean(axis=axes, keepdims=True)
                var = (centered * centered).mean(axis=axes, keepdims=True)
                out = centered * (var + 1e-5) ** -0.5 * ts[1].reshape(bshape) + ts[2].reshape(bshape)
            out.backward(cot)
            grads.append([out.data] + [t.grad for t in ts])
        for a, e in zip(*grads):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_scratch_arrays_are_never_reused_while_held():
    """The kernels' large outputs come from windows.SCRATCH: a result still held (here, after
    several more calls of the same shape) keeps its values; one let go is handed out again."""
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((16, 8, 3, 3)).astype(np.float32), requires_grad=True)
    xs = [Tensor(rng.standard_normal((16, 8, 32, 32)).astype(np.float32)) for _ in range(6)]
    held = [F.conv2d(x, w, padding=1) for x in xs]  # 1 MiB each (pooled), from 4.5 MiB unfolds
    expected = [F.conv2d(Tensor(x.data.astype(np.float64)), Tensor(w.data.astype(np.float64)), padding=1).data for x in xs]
    for out, ref in zip(held, expected):
        np.testing.assert_allclose(out.data, ref, rtol=1e-4, atol=1e-4)
    big = windows.SCRATCH.empty((1 << 19,), np.float32)  # 2 MiB: pooled
    address = big.__array_interface__["data"][0]
    del big
    again = windows.SCRATCH.empty((1 << 19,), np.float32)
    assert again.__array_interface__["data"][0] == address
    kept = windows.SCRATCH.empty((1 << 19,), np.float32)
    assert kept.__array_interface__["data"][0] != address  # `again` is still held
