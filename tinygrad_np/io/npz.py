""".npz files read with bounds: every .npy header before any data, then exactly the declared bytes.

np.load trusts what a member says about itself: a few MB of deflated zeros can declare gigabytes
and are then decompressed in full. NpzFile instead reads each member's .npy header first (a few
hundred bytes, decompressed alone), so a caller can compare shapes, dtypes and their total with what
it expects and with available_memory() before any data is decompressed; read_array() then reads
exactly the declared bytes in 1 MiB chunks, so decompression stops at the declared size. Nothing is
ever unpickled: members holding Python objects are refused from their header.
"""

from __future__ import annotations

import math
import os
import stat
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

CHUNK = 1 << 20  # data is decompressed and copied this much at a time
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand its input more than about 1032:1
MAX_HEADER_BYTES = 1 << 16  # magic, length and header text of one .npy member, at most
_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


class NpzError(ValueError):
    """A .npz member is malformed, unsafe to read, or not what its header says.

    The message says what is wrong with which member; the caller adds the file's path.
    """


def available_memory() -> int:
    """Bytes of memory this machine can give new allocations now.

    Linux: MemAvailable from /proc/meminfo; elsewhere the free physical pages that os.sysconf
    reports (all physical pages where free ones are not reported); sys.maxsize where the platform
    reports neither (no limit known, so nothing is refused for memory).
    """
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f.read(1 << 16).splitlines():
                if line.startswith(b"MemAvailable:"):
                    value, *unit = line.split()[1:]
                    return int(value) * (1024 if unit == [b"kB"] else 1)
    except (OSError, ValueError):
        pass
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            count, size = os.sysconf(pages), os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            continue
        if count > 0 and size > 0:
            return count * size
    return sys.maxsize


@dataclass(frozen=True)
class Member:
    """One .npy member of an .npz file, as its zip directory entry and its .npy header describe it."""

    name: str  # the zip member's name, e.g. 'model/linears.0.weight.npy'
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    header_bytes: int  # magic + header length + header text
    info: zipfile.ZipInfo

    @property
    def key(self) -> str:
        """The name np.savez was given: the member's name without '.npy'."""
        return self.name.removesuffix(".npy")

    @property
    def nbytes(self) -> int:
        """Bytes of data the header declares (and an array of it allocates)."""
        return math.prod(self.shape) * self.dtype.itemsize

    def describe(self) -> str:
        """'shape (2, 3) float32 (24 bytes)'."""
        return f"shape {self.shape} {self.dtype} ({self.nbytes} bytes)"


class _Limited:
    """A read-only view of a stream that refuses to read past limit bytes in total."""

    def __init__(self, stream, limit: int, name: str):
        self.stream, self.limit, self.name, self.count = stream, limit, name, 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or self.count + n > self.limit:
            raise NpzError(
                f"member {self.name!r}: its .npy header is longer than {self.limit} bytes"
            )
        data = self.stream.read(n)
        self.count += len(data)
        return data


class NpzFile:
    """An .npz (zip) file read member by member: read_header() of each first, read_array() after.

    Refuses, as NpzError: a zip that lists one name twice; members compressed other than stored or
    deflated, or encrypted; a deflated member claiming more than DEFLATE_MAX_RATIO times its
    compressed size; a member whose zip entry size is not its .npy header plus its declared data;
    object, structured and zero-size dtypes. OSError and zipfile.BadZipFile pass through from opening.
    """

    def __init__(self, path):
        self.path = Path(path)
        mode = os.stat(self.path).st_mode  # before open(): opening a FIFO would block
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a directory: open() says so
            raise NpzError("not a regular file")
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except BaseException:
            self._file.close()
            raise
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in self._infos:
                self.close()
                raise NpzError(f"member {info.filename!r} is listed twice in the zip directory")
            self._infos[info.filename] = info

    @property
    def names(self) -> list[str]:
        """Member names in the order of the zip directory."""
        return list(self._infos)

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def __enter__(self) -> NpzFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_header(self, name: str) -> Member:
        """Check name's zip entry and parse its .npy header; no data is decompressed."""
        info = self._infos.get(name)
        if info is None:
            raise NpzError(f"no member {name!r}")
        if info.compress_type not in _METHODS:
            raise NpzError(
                f"member {name!r} is compressed with zip method {info.compress_type}; only "
                f"stored and deflated members are read"
            )
        if info.flag_bits & 0x1:
            raise NpzError(f"member {name!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise NpzError(
                f"member {name!r} is stored uncompressed, yet the zip directory gives it "
                f"{info.file_size} bytes and {info.compress_size} stored bytes"
            )
        if (
            info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size > DEFLATE_MAX_RATIO * info.compress_size
        ):
            raise NpzError(
                f"member {name!r} claims {info.file_size} bytes from {info.compress_size} "
                f"compressed bytes, more than deflate can expand to ({DEFLATE_MAX_RATIO}:1)"
            )
        with self._open(info) as stream:
            member = self._header(stream, info)
        if member.header_bytes + member.nbytes != info.file_size:
            raise NpzError(
                f"member {name!r}: its .npy header ({member.header_bytes} bytes) declares "
                f"{member.describe()}, {member.header_bytes + member.nbytes} bytes in all, but "
                f"the zip directory gives it {info.file_size} bytes"
            )
        return member

    def read_array(self, member: Member) -> np.ndarray:
        """Exactly the data member's header declares, read in CHUNK-byte pieces; nothing more.

        After the declared bytes, at most one more byte is read: if there is one, NpzError.
        """
        name = member.name
        with self._open(member.info) as stream:
            again = self._header(stream, member.info)
            if again != member:
                raise NpzError(f"member {name!r} changed while it was read")
            buf = bytearray(member.nbytes)
            view, done = memoryview(buf), 0
            while done < member.nbytes:
                chunk = self._read(stream, name, min(CHUNK, member.nbytes - done))
                if not chunk:
                    raise NpzError(
                        f"member {name!r} ends after {done} of its {member.nbytes} data bytes "
                        f"(truncated)"
                    )
                view[done : done + len(chunk)] = chunk
                done += len(chunk)
            if self._read(stream, name, 1):
                raise NpzError(
                    f"member {name!r} has data after the {member.nbytes} bytes its header declares"
                )
        array = np.frombuffer(buf, dtype=member.dtype)
        if member.fortran_order:
            return array.reshape(member.shape[::-1]).transpose()
        return array.reshape(member.shape)

    # --- internals ---

    def _open(self, info: zipfile.ZipInfo):
        try:
            return self._zip.open(info)
        except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError) as e:
            # NotImplementedError: zip features zipfile lacks (strong encryption, patched data)
            raise NpzError(f"member {info.filename!r}: {type(e).__name__}: {e}") from None

    @staticmethod
    def _read(stream, name: str, n: int) -> bytes:
        try:
            return stream.read(n)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise NpzError(f"member {name!r}: {type(e).__name__}: {e}") from None

    def _header(self, stream, info: zipfile.ZipInfo) -> Member:
        """Parse the .npy header at the start of stream (reading at most MAX_HEADER_BYTES)."""
        name = info.filename
        limited = _Limited(stream, MAX_HEADER_BYTES, name)
        try:
            version = npy_format.read_magic(limited)
            reader = _READERS.get(version)
            if reader is None:
                raise NpzError(
                    f"member {name!r} is .npy format version {version[0]}.{version[1]}; "
                    f"versions 1.0 and 2.0 are read"
                )
            shape, fortran_order, dtype = reader(limited)
        except NpzError:
            raise
        except Exception as e:  # noqa: BLE001 - numpy's header parser (ast, tokenize) and the
            # decompressor fail in many ways on hostile bytes; each means a bad header
            raise NpzError(f"member {name!r}: bad .npy header ({type(e).__name__}: {e})") from None
        if dtype.hasobject:
            raise NpzError(
                f"member {name!r} holds Python objects (dtype {dtype}), which only pickle can "
                f"read; this loader never unpickles (allow_pickle=False)"
            )
        if dtype.names is not None or dtype.subdtype is not None or dtype.kind == "V":
            raise NpzError(f"member {name!r} has a structured dtype {dtype}; plain dtypes are read")
        if dtype.itemsize == 0:
            raise NpzError(f"member {name!r} has a dtype of zero-size items ({dtype})")
        if any(n < 0 for n in shape):
            raise NpzError(f"member {name!r} declares a negative dimension: shape {shape}")
        return Member(name, tuple(shape), dtype, fortran_order, limited.count, info)
