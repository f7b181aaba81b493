"""IDX and CSV loading (good, corrupt, truncated, hostile), batches, augmentation, and the downloader
against a local HTTP server on 127.0.0.1 (never the network)."""

import gzip
import hashlib
import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinygrad_np import data
from tinygrad_np.data import DataError, DownloadError, read_idx, write_idx
from tinygrad_np.datasets import remote

SAMPLE_TRAIN_COUNTS = [603, 661, 596, 618, 583, 520, 606, 654, 559, 600]
SAMPLE_TEST_COUNTS = [195, 214, 189, 213, 217, 178, 198, 210, 197, 189]


def test_bundled_sample_matches_its_readme():
    d = data.load_mnist("sample")
    assert d.x_train.shape == (6000, 28, 28) and d.x_test.shape == (2000, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert np.bincount(d.y_train).tolist() == SAMPLE_TRAIN_COUNTS
    assert np.bincount(d.y_test).tolist() == SAMPLE_TEST_COUNTS
    assert d.name == "sample" and "bundled" in d.source


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def idx_bytes(arr=None):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4) if arr is None else arr
    return bytes([0, 0, 8, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes() + arr.tobytes()


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"truncated: 0 bytes, too short for an IDX header"),
        (b"\x00\x00", r"truncated: 2 bytes"),
        (b"PK\x03\x04" + bytes(20), r"wrong magic number 0x504b0304"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]), r"unknown IDX dtype code 0x42"),
        (bytes([0, 0, 8, 0]), r"the IDX header declares 0 dimensions"),
        (bytes([0, 0, 8, 3, 0, 0, 0]), r"truncated: the header promises 12 bytes of dimensions"),
        (
            idx_bytes()[:-3],
            r"truncated: the header declares shape \(3, 4\) \(12 bytes of data\) but the file holds 9",
        ),
        (idx_bytes() + b"\x00", r"trailing bytes after the 12 bytes that shape \(3, 4\) declares"),
        (
            bytes([0, 0, 8, 3]) + np.array([60000, 100000, 100000], ">u4").tobytes(),
            r"truncated: the header declares shape \(60000, 100000, 100000\) \(600000000000000 bytes of data\) "
            r"but the file holds 0",
        ),
    ],
)
def test_bad_raw_idx_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^{path}: {match}"):
        read_idx(path)


def test_bad_gzip_idx_files_name_the_file(tmp_path):
    good = gzip.compress(idx_bytes())
    cases = {
        "garbage.gz": (b"\x1f\x8b" + bytes(range(40)), r"not a readable gzip stream"),
        "cut.gz": (good[: len(good) // 2], r"not a readable gzip stream|truncated"),
        "inflated.gz": (
            gzip.compress(bytes([0, 0, 8, 2]) + np.array([4_000_000_000, 4_000], ">u4").tobytes()),
            r"corrupt: the header declares shape \(4000000000, 4000\) \(16000000000000 bytes of data\), "
            r"more than a \d+-byte gzip file can expand to",
        ),
        "short.gz": (
            gzip.compress(idx_bytes()[:-1]),
            r"truncated: the header promises 12 bytes of data, the file has 11",
        ),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError, match=rf"^{path}: ({match})"):
            read_idx(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path / 'nope'}: no such file"):
        read_idx(tmp_path / "nope")
    with pytest.raises(DataError, match=r"not a directory; --data-dir must name a folder"):
        data.load_idx_dir(tmp_path / "nope")
    with pytest.raises(DataError, match=r"no train-images-idx3-ubyte\[.gz\] here"):
        data.load_idx_dir(tmp_path)


def write_mnist_dir(folder: Path, n_train=12, n_test=5, gz=True, dotted=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for key, stem in data.FILES.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        write_idx(folder / (name + (".gz" if gz else "")), arrays[key])
    return arrays


@pytest.mark.parametrize("gz, dotted", [(True, False), (False, False), (False, True)])
def test_load_idx_dir(tmp_path, gz, dotted):
    arrays = write_mnist_dir(tmp_path, gz=gz, dotted=dotted)
    d = data.load_mnist(data_dir=tmp_path)
    np.testing.assert_array_equal(d.x_train, arrays["train_images"])
    np.testing.assert_array_equal(d.y_test, arrays["test_labels"])
    assert d.name == "idx-dir" and str(tmp_path) in d.source


def test_idx_dir_with_mismatched_or_bad_labels(tmp_path):
    arrays = write_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", arrays["train_labels"][:-1])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: 11 labels for the 12 images"):
        data.load_mnist(data_dir=tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(12, 11, np.uint8))
    with pytest.raises(DataError, match=r"label 11 at row 0 is outside 0-9"):
        data.load_mnist(data_dir=tmp_path)


def mnist_frame(n=6, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.integers(0, 256, (n, 784)), columns=[f"pixel{i}" for i in range(784)])
    frame.insert(0, "label", rng.integers(0, 10, n))
    return frame


def test_csv_kaggle_and_headerless(tmp_path):
    frame = mnist_frame()
    frame.to_csv(tmp_path / "train.csv", index=False)  # Kaggle: label,pixel0,...
    frame.to_csv(tmp_path / "mnist_train.csv", index=False, header=False)  # headerless
    for name in ("train.csv", "mnist_train.csv"):
        x, y = data.read_mnist_csv(tmp_path / name)
        np.testing.assert_array_equal(y, frame["label"])
        np.testing.assert_array_equal(x.reshape(len(x), -1), frame.iloc[:, 1:].to_numpy())
        assert x.dtype == np.uint8 and x.shape == (6, 28, 28)
    moved = frame[[f"pixel{i}" for i in range(784)] + ["label"]]  # label column found by name
    moved.to_csv(tmp_path / "moved.csv", index=False)
    np.testing.assert_array_equal(data.read_mnist_csv(tmp_path / "moved.csv")[1], frame["label"])


def test_load_csv_with_and_without_test_file(tmp_path):
    mnist_frame(12).to_csv(tmp_path / "train.csv", index=False)
    mnist_frame(4, seed=1).to_csv(tmp_path / "test.csv", index=False)
    d = data.load_mnist(train_csv=tmp_path / "train.csv", test_csv=tmp_path / "test.csv")
    assert (len(d.y_train), len(d.y_test), d.name) == (12, 4, "csv")
    d = data.load_mnist(train_csv=tmp_path / "train.csv")
    assert (len(d.y_train), len(d.y_test)) == (10, 2) and "held out" in d.source


@pytest.mark.parametrize(
    "mutate, match",
    [
        (
            lambda f: f.drop(columns=["label"]),
            r"expected 785 columns .* got 784 \(this looks like a test file",
        ),
        (lambda f: f.iloc[:, :500], r"expected 785 columns \(a label and 784 pixels\), got 500"),
        (lambda f: f.assign(label=[0, 1, 12, 3, 4, 5]), r"label 12 on line 4 is outside 0-9"),
        (
            lambda f: f.assign(pixel3=[0, 1, 2, 3, 4, 300]),
            r"pixel value 300 on line 7 is not an integer in 0-255",
        ),
        (lambda f: f.assign(pixel3=["0", "1", "x", "3", "4", "5"]), r"non-numeric value"),
        (lambda f: f.assign(pixel3=[0, 1, None, 3, 4, 5]), r"missing value on line 4"),
    ],
)
def test_bad_csv_files_name_the_file(tmp_path, mutate, match):
    path = tmp_path / "bad.csv"
    mutate(mnist_frame()).to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"^{path}: {match}"):
        data.read_mnist_csv(path)


def test_csv_that_is_not_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=rf"^{path}: not a readable CSV"):
        data.read_mnist_csv(path)
    with pytest.raises(DataError, match=r"no such file"):
        data.read_mnist_csv(tmp_path / "missing.csv")


def test_batches_are_seeded_and_complete():
    x, y = np.arange(10)[:, None], np.arange(10)
    first = [yb.tolist() for _, yb in data.batches(x, y, 4, rng=np.random.default_rng(3))]
    again = [yb.tolist() for _, yb in data.batches(x, y, 4, rng=np.random.default_rng(3))]
    assert first == again and [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == list(range(10))
    assert [
        len(b) for _, b in data.batches(x, y, 4, rng=np.random.default_rng(3), drop_last=True)
    ] == [4, 4]
    assert [b.tolist() for _, b in data.batches(x, y, 5, shuffle=False)] == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
    ]
    with pytest.raises(ValueError, match=r"shuffling needs rng="):
        list(data.batches(x, y, 4))


def test_random_shift_moves_content_without_losing_it():
    images = np.zeros((50, 28, 28), np.uint8)
    images[:, 10:18, 10:18] = 200  # content away from the border survives any 2-pixel shift
    shifted = data.random_shift(images, 2, np.random.default_rng(0))
    assert shifted.shape == images.shape and shifted.dtype == np.uint8
    np.testing.assert_array_equal(shifted.sum(axis=(1, 2)), images.sum(axis=(1, 2)))
    assert (shifted != images).any(axis=(1, 2)).sum() > 30  # most moved (1 in 25 stays put)
    assert data.random_shift(images, 0, np.random.default_rng(0)) is images


# --- the downloader, against a local server ---


class Server:
    """A local HTTP server: routes map a path to bytes, or to ('drop', bytes) for a connection that
    dies halfway; anything else is a 404."""

    def __init__(self):
        self.routes, self.hits = {}, []
        routes, hits = self.routes, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                body = routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                drop = isinstance(body, tuple)
                body = body[1] if drop else body
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if drop else body)
                if drop:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def fake_mnist_files(seed=0):
    """The four gzip IDX files of a tiny MNIST, and their MD5s."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 8).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 3).astype(np.uint8),
    }
    files = {name: gzip.compress(idx_bytes(arr), mtime=0) for name, arr in arrays.items()}
    return files, {name: hashlib.md5(body).hexdigest() for name, body in files.items()}


def cache_files(folder: Path):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_download_good_files(server, tmp_path):
    files, md5s = fake_mnist_files()
    for name, body in files.items():
        server.routes[f"/m/{name}"] = body
    folder = data.download("mnist", cache=tmp_path, mirrors=[server.url + "m/"], checksums=md5s)
    assert folder == tmp_path / "mnist" and cache_files(folder) == sorted(files)
    d = data.load_mnist("mnist", cache=tmp_path, checksums=md5s, mirrors=["http://127.0.0.1:9/"])
    assert d.name == "mnist" and len(d.y_train) == 8 and "from the cache" in d.source
    hits = len(server.hits)
    data.download("mnist", cache=tmp_path, mirrors=[server.url + "m/"], checksums=md5s)
    assert len(server.hits) == hits  # verified files are not fetched again


def test_download_wrong_checksum_is_refused_and_leaves_nothing(server, tmp_path):
    files, md5s = fake_mnist_files()
    for name, body in files.items():
        server.routes[f"/m/{name}"] = body
    md5s["t10k-images-idx3-ubyte.gz"] = "0" * 32
    with pytest.raises(
        DownloadError,
        match=r"t10k-images-idx3-ubyte.gz failed on every mirror: .*checksum "
        r"mismatch .* the file was not kept",
    ):
        data.download(
            "mnist", cache=tmp_path, mirrors=[server.url + "m/"], checksums=md5s, attempts=2
        )
    assert "t10k-images-idx3-ubyte.gz" not in cache_files(tmp_path)
    assert not [p for p in cache_files(tmp_path) if p.endswith(".part")]


def test_download_dropped_connection_leaves_nothing_then_falls_back_to_next_mirror(
    server, tmp_path
):
    files, md5s = fake_mnist_files()
    for name, body in files.items():
        server.routes[f"/bad/{name}"] = ("drop", body)
    with pytest.raises(DownloadError, match=r"failed on every mirror"):
        data.download("mnist", cache=tmp_path, mirrors=[server.url + "bad/"], checksums=md5s)
    assert cache_files(tmp_path) == []
    for name, body in files.items():
        server.routes[f"/good/{name}"] = body
    folder = data.download(
        "mnist", cache=tmp_path, mirrors=[server.url + "bad/", server.url + "good/"], checksums=md5s
    )
    assert cache_files(folder) == sorted(files)


def test_auto_falls_back_to_the_sample_with_a_reason(server, tmp_path):
    d = data.load_mnist("auto", cache=tmp_path, mirrors=[server.url + "missing/"], timeout=2)
    assert d.name == "sample" and "could not be downloaded" in d.source and "404" in d.source
    with pytest.raises(DownloadError):
        data.load_mnist("mnist", cache=tmp_path, mirrors=[server.url + "missing/"], timeout=2)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGRAD_NP_DATA", str(tmp_path))
    assert data.cache_dir() == tmp_path
    assert data.cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("TINYGRAD_NP_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c" / "tinygrad_np"


def test_slow_server_times_out_and_retries_a_bounded_number_of_times(tmp_path):
    files, md5s = fake_mnist_files()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            time.sleep(1.5)  # longer than the client's timeout
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DownloadError, match=r"timed out"):
            data.download(
                "mnist",
                cache=tmp_path,
                mirrors=[f"http://127.0.0.1:{httpd.server_address[1]}/"],
                checksums=md5s,
                timeout=0.3,
                attempts=3,
            )
        assert len(hits) == 3  # one file, three attempts, then it gives up
        assert cache_files(tmp_path) == []
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_auto_gives_up_within_its_timeout_when_the_network_hangs(tmp_path):
    class Hang(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(3)  # accepts the connection, never answers in time

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    timeouts = []
    real_fetch = remote._fetch

    def fetch(url, dest, md5, timeout, **kwargs):
        timeouts.append(timeout)
        return real_fetch(url, dest, md5, timeout, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(remote, "_fetch", fetch)
            d = data.load_mnist(
                "auto", cache=tmp_path, mirrors=[url + "a/", url + "b/"], timeout=1.0
            )
        assert d.name == "sample" and "timed out" in d.source
        assert timeouts == [0.5, 0.5]  # one try per mirror, sharing the 1-second budget
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_concurrent_downloads_do_not_corrupt_the_cache(server, tmp_path):
    files, md5s = fake_mnist_files()
    for name, body in files.items():
        server.routes[f"/m/{name}"] = body
    code = (
        "import sys; from tinygrad_np import data; "
        f"data.download('mnist', cache={str(tmp_path)!r}, mirrors=[{server.url + 'm/'!r}], "
        f"checksums={md5s!r})"
    )
    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=root, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()
    folder = tmp_path / "mnist"
    assert cache_files(folder) == sorted(files)  # no temporary files left either
    for name, md5 in md5s.items():
        assert hashlib.md5((folder / name).read_bytes()).hexdigest() == md5


@pytest.fixture
def serve():
    """Start a local server for a handler class; return its URL. Handlers may wait on serve.stop,
    which is set (and the servers shut down) when the test ends."""
    servers, stop = [], threading.Event()

    def start(handler):
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    start.stop = stop
    yield start
    stop.set()
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


TRICKLE_SIZE = 100_000


def trickle_handler(stop, hits):
    """Headers promising TRICKLE_SIZE bytes, then one byte every 0.2 s: each socket read succeeds
    well within any timeout, so only a total deadline ends it."""

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(TRICKLE_SIZE))
            self.end_headers()
            try:
                for _ in range(TRICKLE_SIZE):
                    if stop.wait(0.2):
                        return
                    self.wfile.write(b"x")
            except OSError:  # the client gave up and closed the connection
                pass

        def log_message(self, *args):
            pass

    return Trickle


def bytes_arrived(text):
    import re

    found = re.search(r"gave up after [\d.]+ s \(deadline\); (\d+) of (\d+) bytes arrived", text)
    assert found, text
    return int(found[1]), int(found[2])


def test_auto_falls_back_to_the_sample_when_a_mirror_trickles(serve, tmp_path):
    _, md5s = fake_mnist_files()
    hits = []
    url = serve(trickle_handler(serve.stop, hits))
    d = data.load_mnist("auto", cache=tmp_path, mirrors=[url], timeout=2, checksums=md5s)
    assert d.name == "sample" and "could not be downloaded" in d.source
    assert "gave up after 2 s (deadline)" in d.source  # timeout is each file's deadline in auto
    got, total = bytes_arrived(d.source)
    assert total == TRICKLE_SIZE and got < total
    assert hits == ["/train-images-idx3-ubyte.gz"]  # one try, and no further files attempted
    assert cache_files(tmp_path) == []


def test_download_deadline_gives_up_on_a_trickle_and_leaves_nothing(serve, tmp_path):
    _, md5s = fake_mnist_files()
    hits = []
    url = serve(trickle_handler(serve.stop, hits))
    with pytest.raises(
        DownloadError, match=r"failed on every mirror: .*gave up after 1 s \(deadline\)"
    ) as caught:
        data.download("mnist", cache=tmp_path, mirrors=[url], checksums=md5s, timeout=5, deadline=1)
    got, total = bytes_arrived(str(caught.value))
    assert total == TRICKLE_SIZE and got < total
    assert isinstance(caught.value, OSError)
    assert cache_files(tmp_path) == []  # no *.part file, no target file
    assert len(hits) == 1  # the deadline is per file over all attempts: no retry after it passed


def test_deadline_also_bounds_the_wait_for_a_response(serve, tmp_path):
    _, md5s = fake_mnist_files()
    hits = []

    class Mute(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            serve.stop.wait(20)  # accepts the request, answers nothing until the test ends

        def log_message(self, *args):
            pass

    url = serve(Mute)
    with pytest.raises(DownloadError) as caught:
        data.download(
            "mnist",
            cache=tmp_path,
            mirrors=[url],
            checksums=md5s,
            timeout=30,
            attempts=3,
            deadline=0.5,
        )
    message = str(caught.value)
    # not the 30 s per-operation timeout (nor the server hanging up): the socket wait was capped
    assert "gave up after 0.5 s (deadline); no response yet" in message, message
    assert f"{url}train-images-idx3-ubyte.gz: not retried, the 0.5 s deadline had passed" in message
    assert len(hits) == 1
    assert cache_files(tmp_path) == []


def test_download_deadline_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match=r"deadline must be a positive number"):
        data.download("mnist", cache=tmp_path, mirrors=[], deadline=0)


def test_progress_line_without_tqdm(server, tmp_path, monkeypatch, capsys):
    files, md5s = fake_mnist_files()
    for name, body in files.items():
        server.routes[f"/m/{name}"] = body
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setattr(remote, "_PROGRESS_AFTER_S", 0.0)  # every file counts as slow
    data.download("mnist", cache=tmp_path / "a", mirrors=[server.url + "m/"], checksums=md5s)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(files), lines  # one line per file: each is a single chunk
    for line, (name, body) in zip(lines, files.items()):
        assert line == (
            f"downloading {name} from {server.url}m/: {len(body) / 1e6:.1f} of "
            f"{len(body) / 1e6:.1f} MB"
        )
    d = data.load_mnist(
        "mnist", cache=tmp_path / "b", mirrors=[server.url + "m/"], checksums=md5s, progress=False
    )
    assert d.name == "mnist"
    assert capsys.readouterr().err == ""  # progress=False: nothing printed


def test_progress_line_waits_two_seconds_then_at_most_one_every_few(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    now = [100.0]
    p = remote._Progress(True, "f.gz", "http://h/", 9_900_000, clock=lambda: now[0])
    steps = [(0.5, 1.0), (1.9, 2.0), (2.5, 3.1), (4.0, 4.0), (7.4, 5.0), (8.0, 9.9)]
    for t, megabytes in steps:  # seconds since the start, MB arrived by then
        now[0] = 100.0 + t
        p.update(1, int(megabytes * 1e6))
    p.close()
    assert capsys.readouterr().err.splitlines() == [
        "downloading f.gz from http://h/: 3.1 of 9.9 MB",  # the first after 2 s
        "downloading f.gz from http://h/: 9.9 of 9.9 MB",  # the next 5 s after it
    ]
    p = remote._Progress(False, "f.gz", "http://h/", None, clock=lambda: 1e9)
    p.update(1, 1)
    assert capsys.readouterr().err == ""


def test_progress_bar_with_tqdm(server, tmp_path, monkeypatch):
    import types

    bars = []

    class FakeTqdm:
        def __init__(self, **kwargs):
            self.kwargs, self.n, self.closed = kwargs, 0, False
            bars.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeTqdm))
    files, md5s = fake_mnist_files()
    for name, body in files.items():
        server.routes[f"/m/{name}"] = body
    data.load_mnist("mnist", cache=tmp_path, mirrors=[server.url + "m/"], checksums=md5s)
    assert [b.kwargs["desc"] for b in bars] == list(files)
    for bar, body in zip(bars, files.values()):
        assert bar.kwargs == {
            "total": len(body),
            "unit": "B",
            "unit_scale": True,
            "desc": bar.kwargs["desc"],
            "delay": 1.0,
            "leave": False,
            "disable": None,
            "file": sys.stderr,
        }
        assert bar.n == len(body) and bar.closed


def test_short_download_reason_cuts_at_a_word_boundary():
    from tinygrad_np.datasets import _short

    name = "train-images-idx3-ubyte.gz"
    dns = "<urlopen error [Errno -3] Temporary failure in name resolution>"
    error = DownloadError(
        f"download of {name} failed on every mirror: "
        f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}: {dns}; "
        f"https://storage.googleapis.com/cvdf-datasets/mnist/{name}: {dns}"
    )
    short = _short(error)
    assert len(short) <= 160 and short.startswith(name)
    assert f"ossci-datasets.s3.amazonaws.com: {dns}" in short  # the first mirror's reason, whole
    assert short.endswith("; +1 more")
    long = _short(OSError("a fairly long reason " * 20))
    assert len(long) <= 160 and long.endswith("…")
    assert long[:-1] == ("a fairly long reason " * 20)[: len(long) - 1]
    assert ("a fairly long reason " * 20)[len(long) - 1] == " "  # cut before a space, not mid-word
    assert _short(OSError("short")) == "short"


def test_deadline_bounds_a_server_that_trickles_its_headers(serve, tmp_path):
    """Each byte of the status line arrives well within the per-operation timeout; only the
    deadline can end the wait for urlopen to return."""

    class SlowHeaders(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            try:
                for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"x" * 1000:
                    if serve.stop.wait(0.2):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:
                pass

        def log_message(self, *args):
            pass

    _, md5s = fake_mnist_files()
    url = serve(SlowHeaders)
    with pytest.raises(DownloadError, match=r"gave up after 1 s \(deadline\); no response yet"):
        data.download("mnist", cache=tmp_path, mirrors=[url], checksums=md5s, timeout=5, deadline=1)
    assert cache_files(tmp_path) == []


# --- the files a system package installs (Debian's dataset-fashion-mnist) ---


def test_system_files_come_before_the_cache_and_any_download(server, tmp_path):
    system, cache = tmp_path / "system", tmp_path / "cache"
    arrays = write_mnist_dir(system / "fashion-mnist", n_train=9, n_test=4, seed=1)
    files, md5s = fake_mnist_files()  # a different, complete cache
    for name, body in files.items():
        (cache / "fashion-mnist").mkdir(parents=True, exist_ok=True)
        (cache / "fashion-mnist" / name).write_bytes(body)
    d = data.load_mnist(
        "fashion-mnist", system_dir=system, cache=cache, checksums=md5s, mirrors=[server.url]
    )
    assert (d.name, len(d.y_train), len(d.y_test)) == ("fashion-mnist", 9, 4)
    np.testing.assert_array_equal(d.x_test, arrays["test_images"])
    assert str(system / "fashion-mnist") in d.source and "dataset-fashion-mnist" in d.source
    assert server.hits == []
    # no system files (or system_dir=None): the cache, as before
    for where in (tmp_path / "nowhere", None):
        d = data.load_mnist("fashion-mnist", system_dir=where, cache=cache, checksums=md5s)
        assert len(d.y_train) == 8 and "from the cache" in d.source


def test_an_incomplete_system_folder_is_passed_over(tmp_path):
    system = tmp_path / "system"
    write_mnist_dir(system / "fashion-mnist")
    (system / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert data.system_folder("fashion-mnist", system) is None
    with pytest.raises(DownloadError, match="apt-get install dataset-fashion-mnist"):
        data.load_mnist("fashion-mnist", system_dir=system, cache=tmp_path / "c", mirrors=[])


def test_a_failed_fashion_download_names_the_package(server, tmp_path):
    with pytest.raises(DownloadError) as caught:
        data.load_mnist(
            "fashion-mnist",
            system_dir=tmp_path / "none",
            cache=tmp_path / "c",
            mirrors=[server.url + "missing/"],
            timeout=2,
        )
    message = str(caught.value)
    assert "failed on every mirror" in message and "404" in message
    assert f"apt-get install dataset-fashion-mnist (into {tmp_path / 'none' / 'fashion-mnist'})" in (
        message
    )
    with pytest.raises(DownloadError) as caught:  # MNIST has no such package: no hint
        data.load_mnist(
            "mnist", system_dir=None, cache=tmp_path / "c", mirrors=[server.url], timeout=2
        )
    assert "apt-get" not in str(caught.value)


@pytest.mark.skipif(
    data.system_folder("fashion-mnist") is None,
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_the_installed_fashion_mnist():
    d = data.load_mnist("fashion-mnist", mirrors=[], cache="/nonexistent")  # no cache, no download
    assert d.name == "fashion-mnist" and "/usr/share/datasets/fashion-mnist" in d.source
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.y_train.shape == (60000,)
    for labels in (d.y_train, d.y_test):
        assert labels.min() == 0 and labels.max() == 9
    np.testing.assert_array_equal(np.bincount(d.y_test), [1000] * 10)  # balanced classes
    assert len(data.CLASSES["fashion-mnist"]) == 10
