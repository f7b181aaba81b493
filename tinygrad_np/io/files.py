"""Files: the one way this library writes a file (atomically, to a temporary name first), and the
one check of output paths before any work starts."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """A data file is missing, corrupt, truncated or not what it claims to be; the message names it."""


def _new_file_mode(path: Path) -> int:
    """The mode path keeps if it exists, else what open() would give a new file under the umask."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_stale_parts(path: Path) -> None:
    """Delete temporaries of path left by a writer that was killed (its process no longer exists)."""
    prefix = f".{path.name}."
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(".part")):
                continue
            pid = name[len(prefix) :].split(".", 1)[0]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:  # the writer is gone: nobody will finish this file
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            except OSError:  # alive, but another user's process
                pass


def atomic_write(path, write) -> None:
    """Call write(file) on a temporary file beside path, fsync it, then rename it over path.

    The temporary is named `.<name>.<pid>.<random>.part`; one that a killed writer left behind is
    removed by the next write to the same path. The file gets the mode of the file it replaces, or
    the umask's default for a new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(path)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
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
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"cannot write in {existing} ({e.strerror or e})"
    return None


def _same_file(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(
    outputs: list[Output],
    inputs: Iterable[tuple[str, Path]],
    may_replace: set[tuple[str, str]] = frozenset(),
) -> list[str]:
    """Every problem with the outputs of a run, before anything is read or trained; [] if none.

    An output must not be a directory, an input (inputs: (flag, file) pairs; except the (output flag,
    input flag) pairs in may_replace, such as a run continuing its own checkpoint), or another
    output; its folder must be creatable and writable (probed with a temporary file); an existing
    file there must pass the output's `replaceable` test.
    """
    inputs, problems, seen = list(inputs), [], {}
    for out in outputs:
        path = Path(os.path.abspath(out.path.expanduser()))
        name = f"{out.flag} {out.path}"
        if path.is_dir():
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
        if path.exists() and out.replaceable is not None and not out.replaceable(path):
            problems.append(
                f"{name}: exists and is not a {out.what}; refusing to overwrite it (move it "
                f"away or choose another path)"
            )
    return problems
