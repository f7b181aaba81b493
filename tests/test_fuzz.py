"""Fuzzed loaders: random bytes and mutated valid files must end in the library's own error naming
the file (or load, when the mutation happened to keep the file valid), quickly, and without
allocating more than the file could hold."""

import gzip
import io
import json
import signal
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_np as tg
from tinygrad_np import CheckpointError, DataError, nn
from tinygrad_np.data import read_idx, read_mnist_csv

FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
HANG_GUARD_S = 30  # a hang guard, not a timing assertion: these files load in milliseconds


def idx_bytes(shape=(3, 5, 4), code=8):
    arr = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes() + arr.tobytes()


GOOD_IDX = idx_bytes()
GOOD_IDX_GZ = gzip.compress(GOOD_IDX, mtime=0)


@st.composite
def mutated(draw, good: bytes):
    """good with one of: truncation, byte overwrites, an inflated header count, or appended junk."""
    kind = draw(st.sampled_from(["truncate", "overwrite", "inflate", "append"]))
    data = bytearray(good)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "overwrite":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "inflate":  # a dimension claiming up to billions of entries
        at = draw(st.sampled_from([4, 8, 12]))
        data[at : at + 4] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
        return bytes(data)
    return bytes(data) + draw(st.binary(min_size=1, max_size=64))


class Hung(Exception):
    pass


def _hung(signum, frame):
    raise Hung("the loader did not return: a hang, not a slow run")


def check_loader(load, path, error, max_bytes):
    """load(path) returns, or raises `error` naming path; allocation stays bounded, and a hang
    guard (SIGALRM, far beyond any real load of these tiny files) turns a hang into a failure."""
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(HANG_GUARD_S)
    tracemalloc.start()
    try:
        load(path)
    except error as e:
        assert str(e).startswith(str(path)), str(e)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert peak <= max_bytes, f"allocated {peak} bytes for a {path.stat().st_size}-byte file"


def idx_budget(content: bytes) -> int:
    # raw: at most the file; gzip: at most what deflate can expand to (1032:1); plus interpreter slack
    ratio = 1032 if content[:2] == b"\x1f\x8b" else 2
    return 256 * 1024 + ratio * len(content)


@FUZZ
@given(st.binary(max_size=300))
def test_read_idx_random_bytes(tmp_path, content):
    path = tmp_path / "random-idx"
    path.write_bytes(content)
    check_loader(read_idx, path, DataError, idx_budget(content))


@FUZZ
@given(
    st.one_of(
        mutated(GOOD_IDX),
        mutated(GOOD_IDX_GZ),
        mutated(gzip.compress(idx_bytes((2, 2), code=0x0D), mtime=0)),
    )
)
def test_read_idx_mutated(tmp_path, content):
    path = tmp_path / "mutated-idx"
    path.write_bytes(content)
    check_loader(read_idx, path, DataError, idx_budget(content))


def test_gzip_bomb_header_is_refused_before_reading():
    # a tiny gzip file whose header promises 4 GB: refused from the header alone
    import tempfile
    from pathlib import Path

    body = gzip.compress(
        bytes([0, 0, 8, 2]) + np.array([65536, 65536], ">u4").tobytes() + bytes(1000)
    )
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bomb.gz"
        path.write_bytes(body)
        with pytest.raises(DataError, match=r"more than a \d+-byte gzip file can expand to"):
            read_idx(path)


def good_csv() -> bytes:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.integers(0, 256, (3, 784)), columns=[f"pixel{i}" for i in range(784)])
    frame.insert(0, "label", [1, 2, 3])
    return frame.to_csv(index=False).encode()


GOOD_CSV = good_csv()


@settings(FUZZ, max_examples=min(50, settings.default.max_examples))  # pandas parses are slow
@given(st.one_of(st.binary(max_size=400), mutated(GOOD_CSV)))
def test_read_csv_fuzzed(tmp_path, content):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(content)
    check_loader(read_mnist_csv, path, DataError, 64 * 1024 * 1024)


def good_checkpoint() -> bytes:
    model = nn.MLP([4, 3, 2], rng=np.random.default_rng(0))
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    buf = io.BytesIO()
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.npz"
        tg.save_checkpoint(path, model, opt, extra={"epoch": 1})
        buf.write(path.read_bytes())
    return buf.getvalue()


GOOD_CKPT = good_checkpoint()


@FUZZ
@given(st.one_of(st.binary(max_size=400), mutated(GOOD_CKPT)))
def test_load_checkpoint_fuzzed(tmp_path, content):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(content)

    def load(p):
        ckpt = tg.load_checkpoint(p)
        ckpt.build_model()  # whatever survived must also rebuild, or fail as CheckpointError

    check_loader(load, path, CheckpointError, 32 * 1024 * 1024)


def test_checkpoint_with_a_hostile_architecture_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    path.write_bytes(GOOD_CKPT)
    ckpt = tg.load_checkpoint(path)
    ckpt.meta["model"]["config"]["sizes"] = [4, 10**9, 2]  # would allocate gigabytes if trusted
    with pytest.raises(CheckpointError, match=r"does not match the stored weights"):
        ckpt.build_model()
    ckpt.meta["model"]["config"] = {"sizes": [4, 3, 2], "activation": "os.system"}
    with pytest.raises(
        CheckpointError, match=r"bad recorded architecture: MLP: unknown activation"
    ):
        ckpt.build_model()
    json.dumps(ckpt.meta)  # metadata is plain JSON
