"""Checkpoints: exact round trips, clear errors, atomic writes, and no code execution on load."""

import io
import json
import os
import pickle
import re
import struct
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import CheckpointError, Tensor, nn, optim
from tinygrad_np.io import is_checkpoint, npz
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


# --- bounded loading: sizes are checked before any data is decompressed ---

MiB = 1 << 20


def npy(array: np.ndarray) -> bytes:
    """array as the bytes of a .npy file."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_header(shape, dtype) -> bytes:
    """The .npy header (format 1.0) of an array of shape and dtype, without its data."""
    buf = io.BytesIO()
    d = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": tuple(shape),
    }
    np.lib.format.write_array_header_1_0(buf, d)
    return buf.getvalue()


def deflated_zeros(header: bytes, mib: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of header + mib MiB of zeros, cheaply: one 1 MiB block compressed once
    (and fully flushed, so it refers to nothing before it) repeated. Returns (stream, crc, size)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(MiB)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return head + block * mib + c.flush(), crc, len(header) + mib * MiB


def write_zip(path, entries) -> None:
    """A zip of (name, method, payload, crc, size) entries, payload already compressed; sizes of 4 GiB
    and more get zip64 extra fields, as zipfile writes them."""
    out, central = io.BytesIO(), []
    for name, method, payload, crc, size in entries:
        offset, raw = out.tell(), name.encode()
        big = size >= 0xFFFFFFFF or len(payload) >= 0xFFFFFFFF
        sizes = (0xFFFFFFFF, 0xFFFFFFFF) if big else (len(payload), size)
        extra = struct.pack("<HHQQ", 1, 16, size, len(payload)) if big else b""
        out.write(
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 45, 0, method, 0, 33, crc, *sizes, len(raw), len(extra)
            )
            + raw
            + extra
            + payload
        )
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                45,
                45,
                0,
                method,
                0,
                33,
                crc,
                *sizes,
                len(raw),
                len(extra),
                0,
                0,
                0,
                0,
                offset,
            )
            + raw
            + extra
        )
    start = out.tell()
    out.write(b"".join(central))
    out.write(
        struct.pack(
            "<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), out.tell() - start, start, 0
        )
    )
    path.write_bytes(out.getvalue())


def stored(name: str, data: bytes):
    return (name, zipfile.ZIP_STORED, data, zlib.crc32(data), len(data))


def members_of(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def small_checkpoint(path, version=2):
    """A checkpoint of MLP [4, 3, 2] with SGD momentum; version 1 as the old save_checkpoint wrote."""
    model = nn.MLP([4, 3, 2], rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    tg.save_checkpoint(path, model, opt, extra={"epoch": 1})
    if version == 1:
        files = members_of(path)
        meta = json.loads(str(np.load(io.BytesIO(files.pop("meta.npy")))))
        meta["version"] = 1
        del meta["arrays"], meta["optimizer"]["params"]
        arrays = {k[:-4]: np.load(io.BytesIO(v)) for k, v in files.items()}
        np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return model, opt


def peak_while(fn):
    """(the exception fn raised or None, peak traced bytes, seconds)."""
    tracemalloc.start()
    start, raised = time.perf_counter(), None
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - returned to the test to check
        raised = e
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return raised, peak, seconds


BOMB_SHAPE = (65536, 32768)  # float32: 8 GiB


@pytest.fixture(scope="module")
def bomb_stream():
    return deflated_zeros(npy_header(BOMB_SHAPE, np.float32), 8192)


def test_a_zip_bomb_member_is_refused_from_its_header(tmp_path, bomb_stream, capsys):
    path = tmp_path / "bomb.npz"
    small_checkpoint(path)
    entries = [stored(name, data) for name, data in members_of(path).items()]
    name = "model/linears.0.weight.npy"
    entries = [e if e[0] != name else (name, zipfile.ZIP_DEFLATED, *bomb_stream) for e in entries]
    write_zip(path, entries)
    assert path.stat().st_size < 10 * MiB  # the case: ~9 MB claiming 8 GiB
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo(name).file_size > 8 << 30  # a real bomb: zipfile believes it
    raised, peak, seconds = peak_while(lambda: tg.load_checkpoint(path))
    with capsys.disabled():
        print(
            f"\nzip bomb ({path.stat().st_size} bytes claiming {8 << 30} bytes): refused in "
            f"{seconds * 1000:.1f} ms, tracemalloc peak {peak / MiB:.2f} MiB"
        )
    assert isinstance(raised, CheckpointError), raised
    assert re.match(
        rf"{re.escape(str(path))}: member {name} declares shape \(65536, 32768\) float32 "
        rf"\(8589934592 bytes\), but the recorded architecture MLP \[4, 3, 2\] needs shape \(4, 3\)",
        str(raised),
    ), raised
    assert peak < 100 * MiB
    model = nn.MLP([4, 3, 2], rng=np.random.default_rng(0))
    raised, peak, _ = peak_while(lambda: tg.restore(path, model))
    assert isinstance(raised, CheckpointError) and name in str(raised) and peak < 100 * MiB
    assert is_checkpoint(path)  # its meta is intact: only loading refuses it


def test_a_bomb_its_meta_agrees_with_is_refused_by_the_memory_check(
    tmp_path, bomb_stream, monkeypatch
):
    # a non-MLP checkpoint: only the record in the meta says what the arrays are
    path = tmp_path / "bomb.npz"
    model = nn.Sequential(nn.Linear(4, 3, rng=np.random.default_rng(0)))
    tg.save_checkpoint(path, model)
    files = members_of(path)
    meta = json.loads(str(np.load(io.BytesIO(files.pop("meta.npy")))))
    meta["arrays"]["model/layers.0.weight"]["shape"] = list(BOMB_SHAPE)
    entries = [stored("meta.npy", npy(np.array(json.dumps(meta))))]
    for name, data in files.items():
        bomb = name == "model/layers.0.weight.npy"
        entries.append((name, zipfile.ZIP_DEFLATED, *bomb_stream) if bomb else stored(name, data))
    write_zip(path, entries)
    monkeypatch.setattr(npz, "available_memory", lambda: 1 << 30)
    raised, peak, _ = peak_while(lambda: tg.load_checkpoint(path))
    assert isinstance(raised, CheckpointError), raised
    assert str(raised).startswith(
        f"{path}: its arrays need 8589934604 bytes (8.00 GiB), more than the 1073741824 bytes "
        f"(1.00 GiB) of memory available"
    ), raised
    assert peak < 100 * MiB
    # restore knows the model: refused there from the model's shapes, whatever the memory
    monkeypatch.setattr(npz, "available_memory", lambda: 1 << 62)
    with pytest.raises(
        CheckpointError,
        match=r"layers.0.weight has shape \(65536, 32768\) in the "
        r"state but \(4, 3\) in the model",
    ):
        tg.restore(path, model)


def test_arrays_beyond_the_available_memory_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path)
    monkeypatch.setattr(npz, "available_memory", lambda: 100)
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(str(path))}: its arrays need 184 bytes, more than the 100 bytes of "
        r"memory available; free some memory",
    ):
        tg.load_checkpoint(path)
    monkeypatch.setattr(npz, "available_memory", lambda: 184)
    tg.load_checkpoint(path)


def test_available_memory_is_a_positive_number_of_bytes():
    available = npz.available_memory()
    assert isinstance(available, int) and available > 0


def test_a_member_claiming_more_than_deflate_can_expand_to_is_refused(tmp_path):
    path = tmp_path / "liar.npz"
    small_checkpoint(path)
    header = npy_header(BOMB_SHAPE, np.float32)
    payload, crc, _ = deflated_zeros(header, 1)  # ~1 KB of deflate claiming 8 GiB
    name = "model/linears.0.weight.npy"
    entries = [stored(n, d) for n, d in members_of(path).items() if n != name]
    write_zip(path, [*entries, (name, zipfile.ZIP_DEFLATED, payload, crc, len(header) + (8 << 30))])
    with pytest.raises(
        CheckpointError,
        match=rf"{re.escape(str(path))}: not a readable checkpoint \(member '{name}' claims "
        rf"{len(header) + (8 << 30)} bytes from {len(payload)} compressed bytes, more than "
        r"deflate can expand to \(1032:1\)\)",
    ):
        tg.load_checkpoint(path)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_data_after_the_declared_bytes_is_refused(tmp_path, method):
    path = tmp_path / "trailing.npz"
    small_checkpoint(path)
    files = members_of(path)
    name = "model/linears.1.bias.npy"
    files[name] += bytes(64 * MiB)  # the header still says (2,) float32
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data, compress_type=method)
    raised, peak, _ = peak_while(lambda: tg.load_checkpoint(path))
    assert isinstance(raised, CheckpointError), raised
    assert str(raised).startswith(
        f"{path}: not a readable checkpoint (member '{name}': its .npy header (128 bytes) declares "
        f"shape (2,) float32 (8 bytes), 136 bytes in all, but the zip directory gives it "
        f"{136 + 64 * MiB} bytes)"
    ), raised
    assert peak < 16 * MiB  # refused before the 64 MiB were read (the test's own copy is untraced)


def test_the_npz_reader_reads_exactly_the_declared_bytes(tmp_path):
    path = tmp_path / "a.npz"
    fortran = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4))
    np.savez_compressed(path, f=fortran, s=np.array("hi"), e=np.zeros((0, 5)))
    with npz.NpzFile(path) as f:
        assert f.names == ["f.npy", "s.npy", "e.npy"]
        members = {name: f.read_header(name) for name in f.names}
        assert members["f.npy"].fortran_order and members["f.npy"].nbytes == 24
        assert members["e.npy"].describe() == "shape (0, 5) float64 (0 bytes)"
        np.testing.assert_array_equal(f.read_array(members["f.npy"]), fortran)
        assert f.read_array(members["s.npy"])[()] == "hi"
        assert f.read_array(members["e.npy"]).shape == (0, 5)
        with pytest.raises(npz.NpzError, match=r"no member 'x.npy'"):
            f.read_header("x.npy")


def test_unknown_members_are_refused_by_name(tmp_path):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", b"hello")
        zf.writestr("model/../evil.npy", npy(np.zeros(2)))
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(str(path))}: unknown members 'notes.txt', 'model/../evil.npy'; a "
        r"checkpoint holds only meta.npy, model/<name>.npy and optim/<name>.npy",
    ):
        tg.load_checkpoint(path)


@pytest.mark.parametrize("version", [1, 2])
def test_a_member_that_is_not_a_parameter_of_the_architecture_is_refused(tmp_path, version):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path, version)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("model/linears.2.weight.npy", npy(np.zeros((2, 2), np.float32)))
    match = (
        r"member model/linears.2.weight.npy is not a parameter of the recorded MLP \[4, 3, 2\]"
        if version == 1
        else r"its members do not match the record in its meta \(present but not recorded: "
        r"\['model/linears.2.weight.npy'\]\)"
    )
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: {match}"):
        tg.load_checkpoint(path)


def replace_member(path, name, data: bytes) -> None:
    files = members_of(path)
    files[name] = data
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)


@pytest.mark.parametrize("version", [1, 2])
def test_a_member_whose_header_disagrees_with_the_architecture_is_refused(tmp_path, version):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path, version)
    replace_member(path, "model/linears.1.bias.npy", npy(np.zeros(5, np.float32)))
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(str(path))}: member model/linears.1.bias.npy declares shape \(5,\) "
        r"float32 \(20 bytes\), but the recorded architecture MLP \[4, 3, 2\] needs shape \(2,\)",
    ):
        tg.load_checkpoint(path)


@pytest.mark.parametrize("version", [1, 2])
def test_an_optimizer_buffer_must_have_its_parameters_shape(tmp_path, version):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path, version)
    replace_member(path, "optim/momentum_buffer.0.npy", npy(np.zeros(3, np.float32)))
    source = "its record in the meta" if version == 2 else r"parameter 0 \(linears.0.weight\)"
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(str(path))}: member optim/momentum_buffer.0.npy declares shape "
        rf"\(3,\) float32 \(12 bytes\), but {source} needs shape \(4, 3\)",
    ):
        tg.load_checkpoint(path)
    replace_member(path, "optim/momentum_buffer.0.npy", npy(np.zeros((4, 3), np.float32)))
    replace_member(path, "optim/momentum_buffer.9.npy", npy(np.zeros((4, 3), np.float32)))
    with pytest.raises(CheckpointError, match=r"buffer of parameter 9|not recorded"):
        tg.load_checkpoint(path)


def test_a_member_whose_dtype_disagrees_with_the_record_is_refused(tmp_path):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path)
    replace_member(path, "model/linears.1.bias.npy", npy(np.zeros(2, np.float64)))
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(str(path))}: member model/linears.1.bias.npy holds float64 \(<f8\), "
        r"but its record in the meta says <f4",
    ):
        tg.load_checkpoint(path)


def test_a_meta_entry_too_large_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path)
    chars = 5 * MiB  # 20 MiB of UTF-32
    header = npy_header((), f"<U{chars}")
    payload, crc, size = deflated_zeros(header, 20)
    entries = [stored(n, d) for n, d in members_of(path).items() if n != "meta.npy"]
    write_zip(path, [("meta.npy", zipfile.ZIP_DEFLATED, payload, crc, size), *entries])
    raised, peak, _ = peak_while(lambda: tg.load_checkpoint(path))
    assert isinstance(raised, CheckpointError), raised
    assert str(raised).startswith(
        f"{path}: its meta entry declares {4 * chars} bytes, more than the 16777216 bytes a "
        f"checkpoint's metadata may take"
    ), raised
    assert peak < 8 * MiB and not is_checkpoint(path)


def test_a_meta_entry_that_is_not_a_string_is_refused(tmp_path):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path)
    replace_member(path, "meta.npy", npy(np.zeros(3)))
    with pytest.raises(
        CheckpointError,
        match=r"not a tinygrad_np checkpoint \(its meta entry holds "
        r"shape \(3,\) float64 \(24 bytes\), not one string\)",
    ):
        tg.load_checkpoint(path)


def test_a_version_1_checkpoint_still_loads(tmp_path):
    path = tmp_path / "v1.npz"
    model, opt = small_checkpoint(path, version=1)
    ckpt = tg.load_checkpoint(path)
    assert ckpt.meta["version"] == 1 and ckpt.extra == {"epoch": 1}
    rebuilt = ckpt.build_model()
    for (name, a), b in zip(model.named_parameters(), rebuilt.parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    opt2 = optim.SGD(rebuilt.parameters(), lr=1.0)
    tg.restore(path, rebuilt, opt2)
    assert (opt2.lr, opt2.momentum, opt2.steps) == (0.1, 0.9, 1)
    for a, b in zip(opt.state["momentum_buffer"], opt2.state["momentum_buffer"]):
        np.testing.assert_array_equal(a, b)


def test_an_unknown_version_is_refused(tmp_path):
    path = tmp_path / "ckpt.npz"
    small_checkpoint(path)
    files = members_of(path)
    meta = json.loads(str(np.load(io.BytesIO(files["meta.npy"]))))
    for version in (3, True, "2"):
        meta["version"] = version
        replace_member(path, "meta.npy", npy(np.array(json.dumps(meta))))
        with pytest.raises(
            CheckpointError,
            match=r"checkpoint version .*, this library reads "
            r"versions 1, 2",
        ):
            tg.load_checkpoint(path)
        assert is_checkpoint(path)  # ours, only newer (or damaged)


class Table(nn.Module):
    """A module holding a dict of tensors: no recorded architecture, any shapes."""

    def __init__(self, rng):
        self.table = {
            "emb": Tensor(rng.standard_normal((5, 3)), requires_grad=True),
            "scale": Tensor(rng.standard_normal(()), requires_grad=True),
        }

    def forward(self, x):
        return x @ self.table["emb"] * self.table["scale"]


def make_model(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "mlp":
        return nn.MLP([5, 4, 3], activation="tanh", rng=rng)
    if kind == "sequential":
        return nn.Sequential(nn.Linear(5, 4, rng=rng), nn.ReLU(), nn.Linear(4, 3, rng=rng))
    return Table(rng)


def make_optimizer(kind, params):
    if kind == "sgd":
        return optim.SGD(params, lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)
    return optim.AdamW(params, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)


@pytest.mark.parametrize("model_kind", ["mlp", "sequential", "table"])
@pytest.mark.parametrize("opt_kind", ["sgd", "adamw"])
def test_round_trips_of_any_module_and_optimizer_are_exact(tmp_path, model_kind, opt_kind):
    model = make_model(model_kind, 0)
    opt = make_optimizer(opt_kind, model.parameters())
    x = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    for _ in range(3):
        loss = (model(Tensor(x)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "ckpt.npz"
    tg.save_checkpoint(path, model, opt, extra={"kind": model_kind})
    assert is_checkpoint(path)
    meta = tg.load_checkpoint(path).meta
    assert meta["version"] == 2 and len(meta["optimizer"]["params"]) == len(model.parameters())
    model2 = make_model(model_kind, 7)
    opt2 = make_optimizer(opt_kind, model2.parameters())
    assert tg.restore(path, model2, opt2) == {"kind": model_kind}
    for (name, a), b in zip(model.named_parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert a.data.dtype == b.data.dtype
    assert opt2.state_dict().keys() == opt.state_dict().keys()
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(opt2.state_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(model2(Tensor(x)).data, model(Tensor(x)).data)


def test_restore_checks_the_optimizer_before_reading_data(tmp_path):
    model, opt, _ = trained()
    path = tmp_path / "ckpt.npz"
    tg.save_checkpoint(path, model, opt)
    shuffled = optim.SGD(model.parameters()[::-1], lr=0.1)
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(str(path))}: SGD.load_state_dict: momentum_buffer.0 has shape "
        r"\(6, 5\), parameter 0 has \(3,\); the optimizer state belongs to a different model",
    ):
        tg.restore(path, model, shuffled)


def test_an_optimizer_over_tensors_outside_the_model_still_round_trips(tmp_path):
    model = nn.MLP([3, 2], rng=np.random.default_rng(0))
    outside = Tensor(np.ones((4, 4), np.float32), requires_grad=True)
    opt = optim.SGD([*model.parameters(), outside], lr=0.1, momentum=0.5)
    for p in opt.params:
        p.grad = np.ones_like(p.data)
    opt.step()
    path = tmp_path / "ckpt.npz"
    tg.save_checkpoint(path, model, opt)
    ckpt = tg.load_checkpoint(path)
    assert ckpt.meta["optimizer"]["params"] is None
    np.testing.assert_array_equal(ckpt.optimizer_state["momentum_buffer.2"], np.ones((4, 4)))


def test_is_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    small_checkpoint(ckpt)
    v1 = tmp_path / "v1.npz"
    small_checkpoint(v1, version=1)
    assert is_checkpoint(ckpt) and is_checkpoint(str(v1))
    csv = tmp_path / "data.csv"
    csv.write_text("label,pixel0\n1,0\n")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    no_meta = tmp_path / "nometa.zip"
    with zipfile.ZipFile(no_meta, "w") as zf:
        zf.writestr("model/x.npy", npy(np.zeros(2)))
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array(json.dumps({"format": "someone.else"})))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    for path in (csv, noise, no_meta, plain, other, empty, tmp_path / "missing.npz", tmp_path):
        assert not is_checkpoint(path), path
    if hasattr(os, "mkfifo"):  # answered without opening it (opening would block)
        os.mkfifo(tmp_path / "fifo")
        assert not is_checkpoint(tmp_path / "fifo")
        with pytest.raises(CheckpointError, match=r"not a regular file"):
            tg.load_checkpoint(tmp_path / "fifo")


# --- a dict or list of tensors, any module, and the recorded architecture of a Sequential ---


def plain_weights(seed):
    """The README's plain-expression style: the weights are loose tensors."""
    rng = np.random.default_rng(seed)
    W1 = tg.randn(5, 4, rng=rng, requires_grad=True)
    b1 = tg.zeros(4, requires_grad=True)
    W2 = tg.randn(4, 3, rng=rng, requires_grad=True)
    scale = Tensor(np.float32(2.0))  # a constant: saved, not trained
    return {"W1": W1, "b1": b1, "W2": W2, "scale": scale}


def plain_forward(w, x):
    return ((Tensor(x) @ w["W1"] + w["b1"]).relu() @ w["W2"]) * w["scale"]


def test_a_dict_of_tensors_and_its_optimizer_round_trip(tmp_path):
    w = plain_weights(0)
    opt = optim.Adam([w["W1"], w["b1"], w["W2"]], lr=0.01)
    x = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    for _ in range(3):
        loss = F.cross_entropy(plain_forward(w, x), np.array([0, 1, 2, 0, 1, 2]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "plain.npz"
    tg.save_checkpoint(path, w, opt, extra={"step": 3})
    w2 = plain_weights(5)
    opt2 = optim.Adam([w2["W1"], w2["b1"], w2["W2"]], lr=0.5)
    assert tg.restore(path, w2, opt2) == {"step": 3}
    for name in w:
        np.testing.assert_array_equal(w2[name].data, w[name].data, err_msg=name)
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(opt2.state_dict()[key], value, err_msg=key)
    ckpt = tg.load_checkpoint(path)
    assert ckpt.meta["optimizer"]["params"] == ["W1", "b1", "W2"]
    fresh = ckpt.tensors()
    assert list(fresh) == list(w) and fresh["W1"].requires_grad and not fresh["scale"].requires_grad
    np.testing.assert_array_equal(plain_forward(fresh, x).data, plain_forward(w, x).data)
    with pytest.raises(
        CheckpointError,
        match=r"holds a dict of tensors, not a model; take new tensors with "
        r"Checkpoint.tensors\(\), or load into yours with restore",
    ):
        ckpt.build_model()
    w3 = plain_weights(6)
    del w3["scale"]
    with pytest.raises(CheckpointError, match=r"restore\(tensors\): unexpected \['scale'\]"):
        tg.restore(path, w3)


def test_a_list_of_tensors_round_trips_and_bad_entries_are_refused(tmp_path):
    tensors = [Tensor(np.arange(3.0), requires_grad=True), Tensor(np.ones((2, 2), np.float32))]
    path = tmp_path / "list.npz"
    tg.save_checkpoint(path, tensors)
    back = tg.load_checkpoint(path).tensors()
    assert isinstance(back, list) and [t.requires_grad for t in back] == [True, False]
    for a, b in zip(tensors, back):
        np.testing.assert_array_equal(a.data, b.data)
        assert a.data.dtype == b.data.dtype
    into = [Tensor(np.zeros(3), requires_grad=True), Tensor(np.zeros((2, 2), np.float32))]
    tg.restore(path, into)
    np.testing.assert_array_equal(into[1].data, np.ones((2, 2)))
    with pytest.raises(CheckpointError, match=r"1 has shape \(2, 2\) in the state but \(3,\) here"):
        tg.restore(path, [into[0], Tensor(np.zeros(3))])
    with pytest.raises(TypeError, match=r"save_checkpoint: entry 'b' is a ndarray, not a Tensor"):
        tg.save_checkpoint(path, {"a": tensors[0], "b": np.zeros(2)})
    with pytest.raises(ValueError, match=r"each must be a non-empty string without '/', got 'a/b'"):
        tg.save_checkpoint(path, {"a/b": tensors[0]})
    with pytest.raises(TypeError, match=r"restore: expected an nn.Module, or a dict or list of "):
        tg.restore(path, tensors[0])


class Encoder(nn.Module):
    """A user module holding a ModuleList, a ModuleDict, a batch norm (buffers) and a tensor."""

    def __init__(self, rng):
        self.blocks = nn.ModuleList([nn.Linear(4, 4, rng=rng), nn.Linear(4, 4, rng=rng)])
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2, rng=rng), "b": nn.Linear(4, 3, rng=rng)})
        self.norm = nn.BatchNorm1d(4)
        self.gain = Tensor(rng.uniform(1, 2, (4,)).astype(np.float32), requires_grad=True)

    def forward(self, x):
        for block in self.blocks:
            x = block(x).relu()
        x = self.norm(x) * self.gain
        return self.heads["a"](x), self.heads["b"](x)


class Net(nn.Module):
    def __init__(self, rng):
        self.encoder = Encoder(rng)
        self.out = nn.Sequential(nn.Linear(2, 2, rng=rng))

    def forward(self, x):
        a, b = self.encoder(x)
        return self.out(a), b


def test_a_nested_user_module_round_trips_with_its_buffers(tmp_path):
    model = Net(np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
    for _ in range(2):
        a, b = model(Tensor(x))
        loss = (a**2).mean() + (b**2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "net.npz"
    tg.save_checkpoint(path, model, opt)
    names = set(tg.load_checkpoint(path).model_state)
    assert {"encoder.blocks.1.weight", "encoder.heads.b.bias", "encoder.norm.running_var",
            "encoder.gain", "out.layers.0.weight"} <= names  # fmt: skip
    other = Net(np.random.default_rng(9))
    opt2 = optim.SGD(other.parameters(), lr=1.0)
    tg.restore(path, other, opt2)
    model.eval(), other.eval()
    for ours, theirs in zip(model(Tensor(x)), other(Tensor(x))):
        np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(other.encoder.norm.running_mean.data,
                                  model.encoder.norm.running_mean.data)  # fmt: skip
    assert opt2.state_dict()["step"] == 2
    with pytest.raises(CheckpointError, match=r"holds a Net without a recorded architecture; only "
                       r"an nn.MLP and an nn.Sequential of library layers can be rebuilt. Build "
                       r"the model yourself \(model = Net\(...\)\) and load it with "
                       r"restore\(path, model, optimizer\)"):  # fmt: skip
        tg.load_checkpoint(path).build_model()


def library_sequential(rng):
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, rng=rng), nn.BatchNorm2d(3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Identity(),
        nn.AvgPool2d(2, stride=1), nn.AdaptiveAvgPool2d(2), nn.Dropout2d(0.1, rng=rng),
        nn.Flatten(), nn.Dropout(0.2, rng=rng), nn.Linear(12, 6, rng=rng), nn.GELU("tanh"),
        nn.Sequential(nn.LayerNorm(6), nn.Linear(6, 4, bias=False, rng=rng)),
        nn.BatchNorm1d(4, affine=False), nn.LeakyReLU(0.2), nn.Tanh(), nn.Sigmoid(),
    )  # fmt: skip


def test_a_sequential_of_library_layers_is_rebuilt_by_build_model(tmp_path):
    model = library_sequential(np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(np.float32)
    model(Tensor(x))  # training mode: the running statistics move
    opt = optim.AdamW(model.parameters(), lr=0.01)
    path = tmp_path / "seq.npz"
    tg.save_checkpoint(path, model, opt)
    ckpt = tg.load_checkpoint(path)
    rebuilt = ckpt.build_model(np.random.default_rng(3))
    assert repr(rebuilt) == repr(model)
    model.eval(), rebuilt.eval()
    np.testing.assert_array_equal(rebuilt(Tensor(x)).data, model(Tensor(x)).data)
    opt2 = optim.AdamW(rebuilt.parameters(), lr=1.0)
    ckpt.load_into(rebuilt, opt2)
    assert opt2.lr == 0.01
    ids = np.array([[1, 0, 3]])
    emb = nn.Sequential(nn.Embedding(4, 5, padding_idx=0, rng=np.random.default_rng(0)),
                        nn.LayerNorm((3, 5), elementwise_affine=True))  # fmt: skip
    tg.save_checkpoint(path, emb)
    again = tg.load_checkpoint(path).build_model()
    assert again[0].padding_idx == 0 and again[1].normalized_shape == (3, 5)
    np.testing.assert_array_equal(again(ids).data, emb(ids).data)
    conv1d = nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=1, rng=np.random.default_rng(0)))
    tg.save_checkpoint(path, conv1d)
    signal = np.random.default_rng(2).standard_normal((3, 2, 9)).astype(np.float32)
    rebuilt = tg.load_checkpoint(path).build_model()
    assert repr(rebuilt) == repr(conv1d)
    np.testing.assert_array_equal(rebuilt(Tensor(signal)).data, conv1d(Tensor(signal)).data)


def test_a_sequential_that_cannot_be_rebuilt_says_why_and_what_to_do(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "seq.npz"
    tg.save_checkpoint(path, nn.Sequential(nn.Linear(2, 2, rng=rng), Encoder(rng)))
    with pytest.raises(
        CheckpointError,
        match=r"holds a Sequential without a recorded architecture \(layer 1 \(Encoder\) is not "
        r"one of the library layers a record can rebuild .*\); only an nn.MLP .* load it with "
        r"restore\(path, model",
    ):
        tg.load_checkpoint(path).build_model()


def test_a_recorded_architecture_that_disagrees_with_the_weights_is_refused_unbuilt(tmp_path):
    path = tmp_path / "seq.npz"
    tg.save_checkpoint(path, nn.Sequential(nn.Linear(3, 2, rng=np.random.default_rng(0))))
    meta = json.loads(str(np.load(path)["meta"]))
    meta["model"]["config"]["layers"][0].update(n_in=1 << 20, n_out=1 << 20)  # 4 TiB of weights
    replace_member(path, "meta.npy", npy(np.array(json.dumps(meta))))
    ckpt = tg.load_checkpoint(path)  # the arrays are small and agree with their record
    with pytest.raises(
        CheckpointError,
        match=r"the recorded architecture does not match the stored arrays \(they differ at "
        r"\['layers.0.bias', 'layers.0.weight'\]\)",
    ):
        ckpt.build_model()
    meta["model"]["config"]["layers"][0]["type"] = "os.system"
    replace_member(path, "meta.npy", npy(np.array(json.dumps(meta))))
    with pytest.raises(CheckpointError, match=r"bad recorded architecture: layer 0 has unknown "
                       r"type 'os.system'"):  # fmt: skip
        tg.load_checkpoint(path).build_model()
