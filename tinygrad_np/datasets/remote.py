"""Downloads: every file's MD5 checked against the published value before it is renamed into the
cache, a bounded number of retries over the mirrors within a total deadline per file, and progress
on stderr when a file takes more than a moment."""

from __future__ import annotations

import hashlib
import math
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..io.files import DataError, atomic_write

_CHUNK = 1 << 20

DEADLINE = 300.0  # seconds per file, over all its mirrors and attempts, for explicit downloads

# The plain progress line (without tqdm): the first once a file has taken this long, then at most
# one every _PROGRESS_EVERY_S seconds.
_PROGRESS_AFTER_S = 2.0
_PROGRESS_EVERY_S = 5.0

# MD5 of the published gzip files (from the datasets' own pages; Fashion-MNIST uses the same names).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}


def cache_dir(cache=None) -> Path:
    """Where downloads go: cache if given, else $TINYGRAD_NP_DATA, else the user cache directory."""
    if cache is not None:
        return Path(cache)
    if os.environ.get("TINYGRAD_NP_DATA"):
        return Path(os.environ["TINYGRAD_NP_DATA"])
    base = (
        os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA") or Path.home() / ".cache"
    )
    return Path(base) / "tinygrad_np"


class DownloadError(OSError):
    """Every mirror failed for a file; the message lists what each one said."""


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Deadline:
    """The end of one file's time: `seconds` after it was created, on the monotonic clock."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0

    def error(self, what: str) -> TimeoutError:
        return TimeoutError(f"gave up after {self.seconds:g} s (deadline); {what}")


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f}"


class _Progress:
    """Progress of one file: a tqdm byte bar when tqdm is installed (shown only when stderr is a
    terminal, and only once the file has taken a second), else at most one plain line to stderr
    every few seconds once the file has taken more than about two."""

    def __init__(self, enabled: bool, name: str, mirror: str, total: int | None, clock=None):
        self.enabled, self.name, self.mirror, self.total = enabled, name, mirror, total
        self.clock = clock or time.monotonic
        self.start = self.clock()
        self.last_line = None
        self.bar = None
        if enabled:
            try:  # an optional extra: imported only when a download wants a bar
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=name,
                    delay=1.0,
                    leave=False,
                    disable=None,  # hidden when stderr is not a terminal
                    file=sys.stderr,
                )

    def update(self, n: int, got: int) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self.clock()
        if now - self.start < _PROGRESS_AFTER_S:
            return
        if self.last_line is not None and now - self.last_line < _PROGRESS_EVERY_S:
            return
        self.last_line = now
        size = f" of {_megabytes(self.total)} MB" if self.total is not None else " MB so far"
        print(
            f"downloading {self.name} from {self.mirror}: {_megabytes(got)}{size}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _set_socket_timeout(response, seconds: float) -> None:
    """Bound the response's next socket operation by seconds. Best effort: the socket sits inside
    http.client's buffered reader; where it cannot be reached, urlopen's timeout holds."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        try:
            sock.settimeout(seconds)
        except OSError:
            pass


def _is_timeout(error: BaseException) -> bool:
    reason = getattr(error, "reason", None)  # URLError wraps the socket's error
    return isinstance(error, (TimeoutError, socket.timeout)) or isinstance(
        reason, (TimeoutError, socket.timeout)
    )


def _open_within(url: str, timeout: float, deadline: _Deadline):
    """urlopen(url), but given up when the deadline passes: a server that trickles its headers, or
    a slow name lookup or handshake, is bounded only per socket operation inside urlopen. The
    opening runs in a daemon thread; one abandoned at the deadline ends with its own timeouts."""
    result = {}

    def opener():
        try:
            result["response"] = urllib.request.urlopen(url, timeout=timeout)
        except BaseException as e:  # handed to the caller, whatever it is
            result["error"] = e

    worker = threading.Thread(target=opener, daemon=True, name="tinygrad_np-urlopen")
    worker.start()
    worker.join(max(deadline.left(), 0.0) if math.isfinite(deadline.left()) else None)
    if worker.is_alive():
        raise deadline.error("no response yet (the server has not finished its headers)")
    if "error" in result:
        raise result["error"]
    return result["response"]


def _fetch(
    url: str,
    dest: Path,
    md5: str,
    timeout: float,
    deadline: _Deadline | None = None,
    progress: bool = False,
) -> None:
    """Download url to dest via a temporary file; keep it only if complete and its MD5 matches.

    timeout bounds each network operation; deadline (if given) bounds the whole file: it is checked
    after every chunk, and no socket operation may wait past it.
    """
    digest = hashlib.md5(usedforsecurity=False)
    deadline = deadline or _Deadline(float("inf"))
    name = url.rsplit("/", 1)[-1]
    mirror = url[: len(url) - len(name)]

    def op_timeout() -> float:
        left = deadline.left()
        if left <= 0:
            raise deadline.error("no response yet")
        return min(timeout, left)

    def write(f):
        try:
            response = _open_within(url, op_timeout(), deadline)
        except OSError as e:
            if _is_timeout(e) and deadline.passed():
                raise deadline.error(f"no response yet ({e})") from e
            raise
        with response:
            expected = response.headers.get("Content-Length")
            total = int(expected) if expected is not None and expected.isdigit() else None
            got = 0
            bar = _Progress(progress, name, mirror, total)
            try:
                while True:
                    if deadline.passed():
                        raise deadline.error(f"{got} of {expected or 'unknown'} bytes arrived")
                    _set_socket_timeout(response, op_timeout())
                    try:
                        chunk = response.read1(_CHUNK)  # what has arrived, not a full megabyte
                    except OSError as e:
                        if _is_timeout(e) and deadline.passed():
                            raise deadline.error(
                                f"{got} of {expected or 'unknown'} bytes arrived"
                            ) from e
                        raise
                    if not chunk:
                        break
                    f.write(chunk)
                    digest.update(chunk)
                    got += len(chunk)
                    bar.update(len(chunk), got)
            finally:
                bar.close()
            if total is not None and got != total:
                raise OSError(f"connection dropped after {got} of {expected} bytes")
        if digest.hexdigest() != md5:
            raise DataError(
                f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, expected {md5}); "
                f"the file was not kept"
            )

    atomic_write(dest, write)


def _fetch_one(
    name: str,
    dest: Path,
    md5: str,
    mirrors,
    timeout: float,
    attempts: int,
    deadline: float,
    progress: bool,
) -> list[str] | None:
    """Try each mirror in turn, `attempts` rounds, until dest is written or the deadline passes;
    return None when the file arrived, else what each failed try said."""
    errors: list[str] = []
    end = _Deadline(deadline)

    def skipped(mirror: str, attempt: int) -> list[str]:
        what = "retried" if attempt else "tried"
        return errors + [f"{mirror}{name}: not {what}, the {deadline:g} s deadline had passed"]

    for attempt in range(attempts):
        for mirror in mirrors:
            if end.passed():
                return skipped(mirror, attempt)
            try:
                _fetch(mirror + name, dest, md5, timeout, deadline=end, progress=progress)
                return None
            except (OSError, DataError) as e:  # URLError, timeouts and resets are OSErrors
                errors.append(f"{mirror}{name}: {e}")
        if attempt + 1 < attempts and mirrors:
            pause = 0.2 * (attempt + 1)
            if end.left() <= pause:
                return skipped(mirrors[0], attempt + 1)
            time.sleep(pause)
    return errors


def download(
    dataset: str = "mnist",
    cache=None,
    mirrors=None,
    timeout: float = 10.0,
    attempts: int = 2,
    checksums: dict[str, str] | None = None,
    deadline: float = DEADLINE,
    progress: bool = True,
) -> Path:
    """Fetch the four IDX files of dataset ('mnist' or 'fashion-mnist') into the cache; return the folder.

    checksums (file name -> MD5) defaults to the dataset's published files. Files already there
    with the right checksum are kept. Each file is tried on every mirror, `attempts` times each,
    with `timeout` seconds per network operation (connecting, or waiting for the next bytes) and
    `deadline` seconds (default 300) for the whole file over all its mirrors and attempts: a mirror
    that keeps trickling a few bytes is given up on once the deadline passes (a TimeoutError,
    "gave up after N s (deadline); X of Y bytes arrived", listed with the other mirrors' errors).
    A file is written under a temporary name and renamed into place only after its checksum
    matched. progress: a tqdm byte bar per file on stderr when tqdm is installed and stderr is a
    terminal, else a plain line on stderr every few seconds once a file has taken more than ~2 s.
    """
    if dataset not in CHECKSUMS:
        raise ValueError(
            f"download: unknown dataset {dataset!r}; choose one of {sorted(CHECKSUMS)}"
        )
    if not deadline > 0:
        raise ValueError(
            f"download: deadline must be a positive number of seconds, got {deadline!r}"
        )
    folder = cache_dir(cache) / dataset
    mirrors = MIRRORS[dataset] if mirrors is None else mirrors
    for name, md5 in (checksums or CHECKSUMS[dataset]).items():
        dest = folder / name
        if dest.is_file() and _md5(dest) == md5:
            continue
        errors = _fetch_one(name, dest, md5, mirrors, timeout, attempts, deadline, progress)
        if errors is not None:
            raise DownloadError(f"download of {name} failed on every mirror: " + "; ".join(errors))
    return folder


def cached(
    dataset: str = "mnist", cache=None, checksums: dict[str, str] | None = None
) -> Path | None:
    """The cache folder if all four files of dataset are there (they were verified when written)."""
    folder = cache_dir(cache) / dataset
    ok = all((folder / name).is_file() for name in (checksums or CHECKSUMS[dataset]))
    return folder if ok else None
