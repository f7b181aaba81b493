"""Files: the one way this library writes a file (atomically, to a temporary name first), and the
one check of output paths before any work starts."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """A data file is missing, corrupt, truncated or not what it claims to be; the message names it."""


STALE_AFTER_S = 60.0  # a temporary this old whose writer is gone is removed by the next write


def _umask() -> int:
    """The process umask: read from /proc where it is shown, else set and restored (not thread-safe)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _new_file_mode(path: Path) -> int:
    """The mode path keeps if it exists, else what open() would give a new file under the umask."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    return 0o666 & ~_umask()


def _remove_stale_parts(path: Path) -> None:
    """Delete temporaries of path (`.<name>.<pid>.<random>.part`) that a killed writer left: its
    process no longer exists and the file has not changed for STALE_AFTER_S seconds."""
    if os.name != "posix":  # os.kill(pid, 0) probes a process only on POSIX
        return
    pattern = re.compile(rf"\.{re.escape(path.name)}\.([0-9]+)\.[A-Za-z0-9_]+\.part")
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name)
            if match is None or int(match[1]) == os.getpid():
                continue
            try:
                os.kill(int(match[1]), 0)
            except ProcessLookupError:  # the writer is gone: nobody will finish this file
                with contextlib.suppress(OSError):
                    if now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S:
                        os.unlink(entry.path)
            except OSError:  # alive, but another user's process
                pass


def atomic_write(path, write) -> None:
    """Call write(file) on a temporary file beside path, fsync it, then rename it over path.

    The temporary is named `.<name>.<pid>.<random>.part`; one that a killed writer left behind is
    removed by a later write to the same path (once it is STALE_AFTER_S old). The file gets the mode of the file it replaces, or
    the umask's default for a new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(path)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent
    )
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- output paths, checked before the work starts ---


@dataclass(frozen=True)
class Output:
    """A file a run will write: the flag that named it, the path, what it holds, and a test that an
    existing file there is one this output may replace (None: any existing file may be replaced)."""

    flag: str
    path: Path
    what: str
    replaceable: Callable[[Path], bool] | None = None


def _writable_folder(path: Path) -> str | None:
    """None if path's folder exists, or can be created, and a file can be written in it; else why."""
    existing = path.parent
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    try:  # a probe named like the temporary atomic_write makes (so a name too long fails here)
        fd, probe = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=existing
        )
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"cannot write in {existing} ({e.strerror or e})"
    return None


def _same_file(a: Path, b: Path) -> bool:
    """Whether a and b name one file: the same path once links are resolved, or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_replaceable(out: Output, path: Path) -> bool:
    """Whether the existing path may be replaced by out: a regular file passing out's test (a test
    that fails to read the file, or a FIFO or device, which must not even be opened, says no)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        return out.replaceable is None or bool(out.replaceable(path))
    except (OSError, ValueError, RecursionError):
        return False


def check_outputs(
    outputs: list[Output],
    inputs: Iterable[tuple[str, Path]],
    may_replace: set[tuple[str, str]] = frozenset(),
) -> list[str]:
    """Every problem with the outputs of a run, before anything is read or trained; [] if none.

    An output must not be a directory, an input (inputs: (flag, file) pairs; except the (output flag,
    input flag) pairs in may_replace, such as a run continuing its own checkpoint), or another
    output (paths compared with links resolved); its folder must be creatable and writable (probed
    with a temporary file of the name's length); an existing file there must be a regular file
    that passes the output's `replaceable` test. Paths are taken as given (no `~` expansion: the
    file checked is the file written).
    """
    inputs, problems, seen = list(inputs), [], {}
    for out in outputs:
        path = Path(os.path.abspath(out.path))
        name = f"{out.flag} {out.path}"
        if os.path.isdir(path):
            problems.append(f"{name}: is a directory; give a file name inside it")
            continue
        why = _writable_folder(path)
        if why is not None:
            problems.append(f"{name}: {why}")
            continue
        clash = [
            flag
            for flag, p in inputs
            if p is not None and (out.flag, flag) not in may_replace and _same_file(path, Path(p))
        ]
        if clash:
            problems.append(f"{name}: is the input of {clash[0]}; writing it would destroy it")
            continue
        twin = next((flag for p, flag in seen.items() if _same_file(path, p)), None)
        if twin is not None:
            problems.append(f"{name}: {twin} writes the same file; give each output its own path")
            continue
        seen[path] = out.flag
        if os.path.lexists(path) and not _is_replaceable(out, path):
            problems.append(
                f"{name}: exists and is not a {out.what}; refusing to overwrite it (move it "
                f"away or choose another path)"
            )
    return problems
