"""Files: the one way this library writes a file (atomically, to a temporary name first)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class DataError(ValueError):
    """A data file is missing, corrupt, truncated or not what it claims to be; the message names it."""


def atomic_write(path, write) -> None:
    """Call write(file) on a temporary file beside path, fsync it, then rename it over path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
