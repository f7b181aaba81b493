"""Writing files: atomic writes keep the umask's mode and clean up after killed writers; output
paths are checked before any work starts."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinygrad_np.io.files import STALE_AFTER_S, Output, atomic_write, check_outputs


def test_atomic_write_gives_a_new_file_the_umask_mode_and_keeps_an_old_files_mode(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", lambda f: f.write(b"x"))
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write(tmp_path / "b.txt", lambda f: f.write(b"x"))
        assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600
        (tmp_path / "a.txt").chmod(0o640)
        atomic_write(tmp_path / "a.txt", lambda f: f.write(b"y"))
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = dead.stdout.strip()
    stale = tmp_path / f".out.npz.{pid}.abc123.part"
    fresh = tmp_path / f".out.npz.{pid}.xyz789.part"  # dead writer, but written a moment ago
    alive = tmp_path / f".out.npz.{os.getppid()}.def456.part"  # a live process: still writing
    other = tmp_path / f".other.npz.{pid}.abc123.part"  # another file's
    sibling = tmp_path / f".out.npz.{pid}.{os.getppid()}.abc123.part"  # the file out.npz.<pid>'s
    old = time.time() - 2 * STALE_AFTER_S
    for p in (stale, fresh, alive, other, sibling):
        p.write_bytes(b"half")
        if p is not fresh:
            os.utime(p, (old, old))
    atomic_write(tmp_path / "out.npz", lambda f: f.write(b"whole"))
    assert (tmp_path / "out.npz").read_bytes() == b"whole"
    assert not stale.exists()
    assert fresh.exists() and alive.exists() and other.exists() and sibling.exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "k.txt"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["k.txt"]


def ours(path: Path) -> bool:
    return path.read_bytes().startswith(b"OURS")


def test_outputs_that_would_destroy_an_input_or_each_other_are_refused(tmp_path):
    data = tmp_path / "mydata.csv"
    data.write_text("label\n")
    ckpt = tmp_path / "k.npz"
    ckpt.write_bytes(b"OURS")
    problems = check_outputs([Output("--save", data, "checkpoint", ours)], [("--train-csv", data)])
    assert problems == [f"--save {data}: is the input of --train-csv; writing it would destroy it"]
    problems = check_outputs(
        [Output("--save", ckpt, "checkpoint", ours), Output("--json", ckpt, "metrics file")], []
    )
    assert problems == [
        f"--json {ckpt}: --save writes the same file; give each output its own path"
    ]
    # continuing one's own checkpoint is allowed where the caller says so
    outputs = [Output("--save", ckpt, "checkpoint", ours)]
    assert check_outputs(outputs, [("--resume", ckpt)]) != []
    assert check_outputs(outputs, [("--resume", ckpt)], {("--save", "--resume")}) == []


def test_a_link_to_an_input_is_the_input(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("x")
    (tmp_path / "link.csv").symlink_to(data)
    problems = check_outputs(
        [Output("--json", tmp_path / "link.csv", "metrics file")], [("--train-csv", data)]
    )
    assert len(problems) == 1 and "is the input of --train-csv" in problems[0]


def test_an_existing_file_must_be_what_the_output_writes(tmp_path):
    notes = tmp_path / "notes.npz"
    notes.write_bytes(b"my notes")
    problems = check_outputs([Output("--save", notes, "tinygrad_np checkpoint", ours)], [])
    assert problems == [
        f"--save {notes}: exists and is not a tinygrad_np checkpoint; refusing to overwrite it "
        f"(move it away or choose another path)"
    ]
    notes.write_bytes(b"OURS")
    assert check_outputs([Output("--save", notes, "tinygrad_np checkpoint", ours)], []) == []
    assert notes.read_bytes() == b"OURS"


def test_directories_files_as_folders_and_unwritable_folders(tmp_path):
    (tmp_path / "file").write_text("x")
    out = check_outputs([Output("--save", tmp_path, "checkpoint")], [])
    assert out == [f"--save {tmp_path}: is a directory; give a file name inside it"]
    out = check_outputs(
        [Output("--save", tmp_path / "file" / "deeper" / "k.npz", "checkpoint")], []
    )
    assert out == [
        f"--save {tmp_path / 'file' / 'deeper' / 'k.npz'}: {tmp_path / 'file'} is a "
        f"file, not a folder"
    ]
    assert check_outputs([Output("--save", tmp_path / "new" / "dir" / "k.npz", "c")], []) == []
    assert not (tmp_path / "new").exists()  # checking creates nothing
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = check_outputs([Output("--json", locked / "m.json", "metrics file")], [])
        assert len(out) == 1 and "cannot write in" in out[0]
    assert sorted(p.name for p in tmp_path.iterdir()) in (["file"], ["file", "locked"])


def test_a_read_only_folder_is_named_with_the_os_error(tmp_path, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = check_outputs([Output("--save", tmp_path / "k.npz", "checkpoint")], [])
    assert out == [
        f"--save {tmp_path / 'k.npz'}: cannot write in {tmp_path} (Read-only file system)"
    ]


def test_paths_the_checks_cannot_stat_or_must_not_open(tmp_path):
    long = tmp_path / ("a" * 300 + ".npz")
    out = check_outputs([Output("--save", long, "checkpoint")], [])
    assert len(out) == 1 and "cannot write in" in out[0] and "File name too long" in out[0]
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000)

    def reads_json(path):
        import json

        return isinstance(json.loads(path.read_text()), dict)

    out = check_outputs(
        [
            Output("--json", fifo, "metrics file", reads_json),
            Output("--plot", deep, "metrics file", reads_json),
        ],
        [],
    )
    assert len(out) == 2 and all("exists and is not a metrics file" in line for line in out)


def test_outputs_through_a_linked_folder_are_the_same_file(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "out")
    out = check_outputs(
        [
            Output("--save", tmp_path / "out" / "k.npz", "c"),
            Output("--json", tmp_path / "alias" / "k.npz", "m"),
        ],
        [],
    )
    assert len(out) == 1 and "--save writes the same file" in out[0]


def test_a_tilde_is_not_expanded_the_file_checked_is_the_file_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "~").mkdir()
    (tmp_path / "~" / "mine.npz").write_text("precious")
    out = check_outputs([Output("--save", Path("~/mine.npz"), "checkpoint", ours)], [])
    assert len(out) == 1 and "exists and is not a checkpoint" in out[0]
