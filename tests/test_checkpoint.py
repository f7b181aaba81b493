"""Checkpoints: exact round trips, clear errors, atomic writes, and no code execution on load."""

import json
import pickle

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import CheckpointError, Tensor, nn, optim
from tinygrad_np.nn import functional as F


def trained(seed=0):
    rng = np.random.default_rng(seed)
    model = nn.MLP([6, 5, 3], activation="gelu", dropout=0.1, rng=rng)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)
    for _ in range(3):
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt, x


def test_round_trip_gives_identical_predictions_and_optimizer_state(tmp_path):
    model, opt, x = trained()
    path = tmp_path / "ckpt.npz"
    tg.save_checkpoint(path, model, opt, extra={"epoch": 3, "note": "hi"})
    ckpt = tg.load_checkpoint(path)
    rebuilt = ckpt.build_model()
    model.eval(), rebuilt.eval()
    assert repr(rebuilt) == repr(model)
    np.testing.assert_array_equal(rebuilt(Tensor(x)).data, model(Tensor(x)).data)
    assert ckpt.extra == {"epoch": 3, "note": "hi"} and ckpt.optimizer_class == "SGD"
    opt2 = optim.SGD(rebuilt.parameters(), lr=1.0)
    ckpt.load_into(rebuilt, opt2)
    assert (opt2.lr, opt2.momentum, opt2.steps) == (0.1, 0.9, 3)
    for a, b in zip(opt.state["momentum_buffer"], opt2.state["momentum_buffer"]):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


def test_restore_into_a_wrong_model_names_the_parameter(tmp_path):
    model, opt, _ = trained()
    path = tmp_path / "ckpt.npz"
    tg.save_checkpoint(path, model, opt)
    other = nn.MLP([6, 7, 3], rng=np.random.default_rng(0))
    with pytest.raises(
        CheckpointError,
        match=rf"{path}: load_state_dict\(MLP\): linears.0.weight has shape "
        rf"\(6, 5\) in the state but \(6, 7\) in the model",
    ):
        tg.restore(path, other)


def test_saving_over_an_existing_checkpoint_is_atomic(tmp_path, monkeypatch):
    model, opt, _ = trained()
    path = tmp_path / "ckpt.npz"
    tg.save_checkpoint(path, model, opt, extra={"epoch": 1})

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        tg.save_checkpoint(path, model, opt, extra={"epoch": 2})
    assert tg.load_checkpoint(path).extra == {"epoch": 1}  # the old one is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary left


class Payload:
    """Unpickling this creates a marker file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_object_arrays_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    meta = {
        "format": "tinygrad_np.checkpoint",
        "version": 1,
        "model": {"class": "MLP", "config": None},
    }
    np.savez(
        path,
        meta=np.array(json.dumps(meta)),
        **{"model/linears.0.weight": np.array([Payload(marker)], dtype=object)},
    )
    with pytest.raises(
        CheckpointError, match=rf"{path}: not a readable checkpoint .*allow_pickle=False"
    ):
        tg.load_checkpoint(path)
    assert not marker.exists()


def test_a_pickle_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError, match=rf"{path}: not a readable checkpoint"):
        tg.load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"not a readable checkpoint"),
        (b"PK\x03\x04garbage", r"not a readable checkpoint"),
    ],
)
def test_corrupt_checkpoints(tmp_path, content, match):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"{path}: {match}"):
        tg.load_checkpoint(path)


def test_npz_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(2))
    with pytest.raises(CheckpointError, match=r"not a tinygrad_np checkpoint \(no 'meta' entry\)"):
        tg.load_checkpoint(path)
    np.savez(path, meta=np.array(json.dumps({"format": "other"})))
    with pytest.raises(CheckpointError, match=r"not a tinygrad_np checkpoint \(format"):
        tg.load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"no such file"):
        tg.load_checkpoint(tmp_path / "missing.npz")


def test_truncated_checkpoint(tmp_path):
    model, opt, _ = trained()
    path = tmp_path / "ckpt.npz"
    tg.save_checkpoint(path, model, opt)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=rf"{path}: not a readable checkpoint"):
        tg.load_checkpoint(path)
