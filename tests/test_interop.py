"""tinygrad_np.interop: models and weights to and from torch.nn; safetensors files torch loads."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinygrad_np import Tensor, interop, nn, optim  # noqa: E402 - after the skip without torch
from tinygrad_np.interop import InteropError  # noqa: E402
from tinygrad_np.nn import functional as F  # noqa: E402

TOL = {"rtol": 1e-6, "atol": 1e-6}  # float32 both sides


def mlp(seed=0, sizes=(6, 5, 5, 3), activation="relu", dropout=0.0):
    rng = np.random.default_rng(seed)
    return nn.MLP(list(sizes), activation=activation, dropout=dropout, rng=rng)


def cnn(seed=0):
    """conv, batch norm (with running statistics that are not the initial ones), pooling, flatten,
    linear."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=1, padding="same", bias=False, rng=rng),
        nn.BatchNorm2d(6, momentum=0.3),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
        nn.AdaptiveAvgPool2d((2, 2)),
        nn.Flatten(),
        nn.Dropout(0.25, rng=rng),
        nn.Linear(24, 10, rng=rng),
        nn.GELU(),
        nn.Linear(10, 3, rng=rng),
    )
    for bn in (model[1], model[5]):
        bn.running_mean.data[...] = rng.standard_normal(bn.num_features)
        bn.running_var.data[...] = rng.uniform(0.5, 2.0, bn.num_features)
        bn.weight.data[...] = rng.uniform(0.5, 1.5, bn.num_features)
        bn.bias.data[...] = rng.standard_normal(bn.num_features)
    return model


def torch_embedding_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Embedding(11, 8, padding_idx=0),
        torch.nn.LayerNorm(8),
        torch.nn.Flatten(),
        torch.nn.Linear(3 * 8, 8),
        torch.nn.Tanh(),
        torch.nn.Dropout(0.1),
        torch.nn.LayerNorm(8, elementwise_affine=False),
        torch.nn.Linear(8, 4, bias=False),
        torch.nn.Sigmoid(),
    )


def same_logits(ours, theirs, x):
    a = ours(x if isinstance(x, np.ndarray) and x.dtype.kind == "i" else Tensor(x)).data
    b = theirs(torch.from_numpy(x)).detach().numpy()
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "sigmoid", "leaky_relu"])
def test_an_mlp_and_its_torch_twin_agree_both_ways(activation):
    model = mlp(activation=activation, dropout=0.2).eval()
    twin = interop.to_torch(model)
    assert isinstance(twin, torch.nn.Sequential) and not twin.training
    assert [type(m).__name__ for m in twin][:3] == ["Linear", type(twin[1]).__name__, "Dropout"]
    x = np.random.default_rng(1).standard_normal((7, 6)).astype(np.float32)
    same_logits(model, twin, x)
    back = interop.from_torch(twin)
    assert isinstance(back, nn.Sequential) and not back.training
    same_logits(back, twin, x)
    # the gradients agree too (ours (in, out) is torch's (out, in) transposed)
    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    F.cross_entropy(model(Tensor(x)), labels).backward()
    logits = twin(torch.from_numpy(x))
    torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)).backward()
    for linear, t in zip(model.linears, [m for m in twin if isinstance(m, torch.nn.Linear)]):
        np.testing.assert_allclose(linear.weight.grad, t.weight.grad.numpy().T, **TOL)
        np.testing.assert_allclose(linear.bias.grad, t.bias.grad.numpy(), **TOL)


def test_a_cnn_and_its_torch_twin_agree_both_ways_with_batch_norm_in_eval_mode():
    model = cnn().eval()
    twin = interop.to_torch(model)
    x = np.random.default_rng(2).standard_normal((5, 1, 8, 8)).astype(np.float32)
    same_logits(model, twin, x)
    back = interop.from_torch(twin)
    assert [type(m) for m in back.layers] == [type(m) for m in model.layers]
    same_logits(back, twin, x)
    for name, value in model.state_dict().items():  # running statistics came back exactly
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)


def test_a_cnn_in_training_mode_moves_the_running_statistics_as_its_twin_does():
    model = cnn()
    model[10].p = 0.0  # no dropout: the two draw different masks
    twin = interop.to_torch(model)
    assert twin.training
    x = np.random.default_rng(3).standard_normal((6, 1, 8, 8)).astype(np.float32)
    same_logits(model, twin, x)
    twin_state = interop.to_torch_state_dict(model)
    for name, value in twin.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            np.testing.assert_allclose(twin_state[name].numpy(), value.numpy(), **TOL, err_msg=name)


def test_an_embedding_and_layer_norm_model_agrees_both_ways():
    twin = torch_embedding_model().eval()
    model = interop.from_torch(twin)
    assert [type(m).__name__ for m in model.layers][:2] == ["Embedding", "LayerNorm"]
    assert model[0].padding_idx == 0 and model[6].weight is None and model[7].bias is None
    ids = np.random.default_rng(4).integers(0, 11, (9, 3))
    same_logits(model, twin, ids)
    again = interop.to_torch(model)
    same_logits(model, again, ids)
    assert again.state_dict().keys() == twin.state_dict().keys()


def test_state_dicts_round_trip_exactly_under_torchs_names_and_layouts():
    model = cnn()
    sd = interop.to_torch_state_dict(model)
    twin = interop.to_torch(model)
    assert list(sd) == list(twin.state_dict())  # torch's names, in torch's order
    assert sd["11.weight"].shape == (10, 24) and model[11].weight.shape == (24, 10)
    assert sd["1.num_batches_tracked"].dtype == torch.int64
    other = cnn(seed=5)
    interop.load_torch_state_dict(other, twin.state_dict())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[name], value, err_msg=name)
    twin.load_state_dict(sd, strict=True)  # torch takes ours as is


def test_to_torch_draws_no_torch_random_numbers_and_keeps_float64():
    model = nn.Sequential(nn.Linear(3, 2, dtype=np.float64, rng=np.random.default_rng(0)))
    before = torch.random.get_rng_state()
    twin = interop.to_torch(model)
    assert torch.equal(before, torch.random.get_rng_state())
    assert twin[0].weight.dtype == torch.float64 and twin[0].weight.requires_grad
    x = np.random.default_rng(1).standard_normal((4, 3))
    ours, theirs = model(Tensor(x, dtype=np.float64)).data, twin(torch.from_numpy(x))
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-14, atol=1e-15)


def test_a_square_layer_loaded_the_wrong_way_round_is_caught():
    model = mlp(sizes=(4, 4, 4))  # every weight square: a transpose keeps every shape
    ours = model.state_dict()
    before = model.state_dict()
    with pytest.raises(InteropError, match=r"'linears.0.weight' is a numpy array, not a "
                       r"torch.Tensor; a tinygrad_np state_dict\(\)"):  # fmt: skip
        interop.load_torch_state_dict(model, ours)
    as_torch = {k: torch.from_numpy(v) for k, v in ours.items()}
    own_names = r"missing \['0.weight', .*\]; unexpected \['linears.0.weight', .*\] \(these are"
    with pytest.raises(InteropError, match=own_names + r" tinygrad_np's own names"):
        interop.load_torch_state_dict(model, as_torch)
    # torch's names over our (in, out) layout: a non-square layer shows it, and nothing changes
    wide = mlp(sizes=(4, 6, 4))
    renamed = {
        "0.weight": torch.from_numpy(wide.linears[0].weight.data), "0.bias": torch.zeros(6),
        "2.weight": torch.zeros(4, 6), "2.bias": torch.zeros(4),
    }  # fmt: skip
    with pytest.raises(InteropError, match=re.escape(
        "0.weight has shape (4, 6) in the state but torch's layout of the model needs (6, 4) "
        "(the (in, out) layout tinygrad_np stores a Linear weight in")):  # fmt: skip
        interop.load_torch_state_dict(wide, renamed)
    for name, value in before.items():
        np.testing.assert_array_equal(model.state_dict()[name], value)


def test_unsupported_layers_and_options_are_named():
    seq = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Sequential(torch.nn.Conv3d(1, 1, 1)))
    with pytest.raises(InteropError, match=r"layer 1.0 is a torch.nn.Conv3d, which has no "
                       r"tinygrad_np counterpart here; supported: Sequential, Linear"):  # fmt: skip
        interop.from_torch(seq)
    with pytest.raises(InteropError, match=r"layer 0 \(MaxPool2d.*\) uses ceil_mode=True"):
        interop.from_torch(torch.nn.Sequential(torch.nn.MaxPool2d(2, ceil_mode=True)))
    with pytest.raises(InteropError, match=r"from_torch: expected a torch.nn.Sequential, got Lin"):
        interop.from_torch(torch.nn.Linear(2, 2))

    class Block(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(InteropError, match=r"to_torch: layer 1 \(Block\) has no torch.nn "
                       r"counterpart here; supported: Linear"):  # fmt: skip
        interop.to_torch(nn.Sequential(nn.ReLU(), Block()))
    with pytest.raises(InteropError, match=r"to_torch_state_dict: Block is not an nn.MLP or an "
                       r"nn.Sequential"):  # fmt: skip
        interop.to_torch_state_dict(Block())


def test_a_safetensors_file_loads_into_torch_and_back(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    model = cnn().eval()
    path = tmp_path / "cnn.safetensors"
    interop.save_safetensors(model, path, metadata={"note": "test"})
    assert interop.is_safetensors(path) and [p.name for p in tmp_path.iterdir()] == [path.name]
    twin = torch.nn.Sequential(*interop.to_torch(cnn(seed=9)))  # another model's weights, then ...
    twin.load_state_dict(safetensors.load_file(path), strict=True)  # ... torch's own loader
    x = np.random.default_rng(6).standard_normal((3, 1, 8, 8)).astype(np.float32)
    same_logits(model, twin.eval(), x)
    other = cnn(seed=7)
    interop.load_safetensors(other, path)
    same_logits(other.eval(), twin, x)
    torch_file = tmp_path / "torch.safetensors"  # a file torch wrote loads too
    safetensors.save_file(twin.state_dict(), torch_file)
    third = cnn(seed=8).eval()
    interop.load_safetensors(third, torch_file)
    same_logits(third, twin, x)


def test_safetensors_files_are_checked(tmp_path):
    pytest.importorskip("safetensors")
    model = mlp()
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    with pytest.raises(InteropError, match=r"exists and is not a safetensors file; refusing"):
        interop.save_safetensors(model, notes)
    assert notes.read_text() == "keep me"
    with pytest.raises(InteropError, match=r"is a directory"):
        interop.save_safetensors(model, tmp_path)
    with pytest.raises(InteropError, match=r"not a readable safetensors file"):
        interop.load_safetensors(model, notes)
    with pytest.raises(InteropError, match=r"no such file"):
        interop.load_safetensors(model, tmp_path / "missing.safetensors")
    path = tmp_path / "other.safetensors"
    interop.save_safetensors(mlp(sizes=(6, 4, 3)), path)
    with pytest.raises(InteropError, match=r"0.weight has shape \(4, 6\) in the state but torch's "
                       r"layout of the model needs \(5, 6\)"):  # fmt: skip
        interop.load_safetensors(model, path)


def test_a_model_from_torch_trains():
    twin = torch_embedding_model()
    model = interop.from_torch(twin, rng=np.random.default_rng(0))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    ids = np.random.default_rng(4).integers(0, 11, (16, 3))
    target = np.random.default_rng(5).uniform(size=(16, 4)).astype(np.float32)
    losses = []
    for _ in range(5):
        loss = F.mse_loss(model(ids), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert model[0].weight.grad is not None and not model[0].weight.grad[0].any()  # padding row


def test_without_torch_the_import_names_the_extra_and_tinygrad_np_still_imports(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.delitem(sys.modules, "tinygrad_np.interop")
    with pytest.raises(ImportError, match=r"tinygrad_np.interop needs PyTorch: pip install "
                       r"'tinygrad_np\[oracle\]'"):  # fmt: skip
        importlib.import_module("tinygrad_np.interop")
    code = "import sys; sys.modules['torch'] = None; import tinygrad_np; print(tinygrad_np.nn.MLP)"
    root = Path(__file__).resolve().parents[1]  # the checkout under test, as pytest's pythonpath
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0 and "MLP" in done.stdout, done.stderr  # no torch needed


def test_without_safetensors_its_functions_name_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr(interop, "safetensors_numpy", None)
    with pytest.raises(ImportError, match=r"save_safetensors needs the safetensors package: pip "
                       r"install 'tinygrad_np\[safetensors\]'"):  # fmt: skip
        interop.save_safetensors(mlp(), tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
