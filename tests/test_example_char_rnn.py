"""examples/char_rnn.py in process on a tiny LSTM/GRU: it learns, it samples, a resumed run equals
an uninterrupted one to the last bit, and bad input or outputs stop it before any work."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
import char_rnn  # noqa: E402

TINY = ["--hidden", "24", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--sample-length", "20", "--no-progress"]


def test_the_bundled_text_is_there_and_named():
    text = char_rnn.TEXT.read_text(encoding="utf-8")
    assert 300_000 < len(text) < 500_000
    assert text.startswith("In the beginning God created the heaven and the earth.")
    assert "King James" in (char_rnn.TEXT.parent / "README.md").read_text()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_tiny_model_learns_and_samples(cell, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert char_rnn.main([*TINY, "--cell", cell, "--steps", "60", "--sample-every", "30",
                          "--lr", "1e-2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("And God said") == 2  # a sample after steps 30 and 60
    metrics = json.loads(out.read_text())
    first, last = metrics["history"]
    # ln(62) = 4.13 nats is a uniform guess over the text's characters
    assert last["val_loss"] < first["val_loss"] < 4.13
    assert metrics["steps"] == 60 and metrics["settings"]["cell"] == cell


def test_resume_continues_exactly(tmp_path, capsys):
    full, part, resumed = tmp_path / "full.json", tmp_path / "ckpt.npz", tmp_path / "res.json"
    args = [*TINY, "--sample-every", "10"]
    assert char_rnn.main([*args, "--steps", "20", "--json", str(full)]) == 0
    assert char_rnn.main([*args, "--steps", "10", "--save", str(part)]) == 0
    # the weights, Adam's state, the carried hidden state and the sampler's generator come back
    assert char_rnn.main(["--resume", str(part), "--steps", "20", "--sample-every", "10",
                          "--sample-length", "20", "--no-progress", "--json", str(resumed)]) == 0
    a, b = json.loads(full.read_text()), json.loads(resumed.read_text())
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]
    assert a["val_loss"] == b["val_loss"]
    samples = [line for line in capsys.readouterr().out.splitlines() if "And God said" in line]
    assert samples[1] == samples[-1]  # the full run's second sample is the resumed run's


def test_load_samples_without_training(tmp_path, capsys):
    ckpt = tmp_path / "c.npz"
    assert char_rnn.main([*TINY, "--steps", "5", "--sample-every", "5", "--save", str(ckpt)]) == 0
    capsys.readouterr()
    assert char_rnn.main(["--load", str(ckpt), "--sample-only", "--prompt", "Moses",
                          "--sample-length", "30"]) == 0
    text_line, model_line, sample = capsys.readouterr().out.split("\n", 2)
    assert model_line.startswith("model: LSTM") and sample.startswith("Moses")
    assert len(sample) == len("Moses") + 30 + 1  # and print's newline
    with pytest.raises(SystemExit, match="the checkpoint's model differs: --hidden 32"):
        char_rnn.main(["--load", str(ckpt), "--hidden", "32", "--sample-only"])
    # --load takes only the weights: other streams and segments are fine
    assert char_rnn.main([*TINY, "--load", str(ckpt), "--batch-size", "3", "--steps", "2",
                          "--sample-every", "2"]) == 0
    # --resume continues the run as it was: only --steps may change
    with pytest.raises(SystemExit, match=r"only --steps may change: --lr 0\.05"):
        char_rnn.main(["--resume", str(ckpt), "--lr", "0.05", "--steps", "9"])
    with pytest.raises(SystemExit, match=r"--batch-size 3 \(the checkpoint has 4\)"):
        char_rnn.main(["--resume", str(ckpt), "--batch-size", "3", "--steps", "9"])


def test_bad_input_and_outputs_stop_before_work(tmp_path):
    with pytest.raises(SystemExit, match=r"--text .*nope.txt: no such file"):
        char_rnn.main([*TINY, "--text", str(tmp_path / "nope.txt")])
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 ".encode("latin-1") * 1000)
    with pytest.raises(SystemExit, match=r"--text .*latin1.txt: not UTF-8"):
        char_rnn.main([*TINY, "--text", str(latin1)])
    short = tmp_path / "short.txt"
    short.write_text("too short")
    with pytest.raises(SystemExit, match="too few"):
        char_rnn.main([*TINY, "--text", str(short)])
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(SystemExit, match="refusing to overwrite"):
        char_rnn.main([*TINY, "--save", str(notes)])
    assert notes.read_text() == "mine"
    import tinygrad_np as tg
    from tinygrad_np import Tensor
    theirs = tmp_path / "mnist.npz"  # another program's checkpoint is not ours to replace
    tg.save_checkpoint(theirs, {"w": Tensor(np.ones(3))})
    before = theirs.read_bytes()
    with pytest.raises(SystemExit, match="is not a char_rnn checkpoint; refusing to overwrite"):
        char_rnn.main([*TINY, "--save", str(theirs)])
    assert theirs.read_bytes() == before
    with pytest.raises(SystemExit, match="is the input of --text"):
        char_rnn.main([*TINY, "--text", str(notes), "--json", str(notes)])
    for bad in (["--lr", "-1"], ["--steps", "0"], ["--prompt", ""]):
        with pytest.raises(SystemExit):
            char_rnn.main([*TINY, *bad])
    with pytest.raises(SystemExit, match=r"--prompt has characters the text lacks: \['~'\]"):
        char_rnn.main([*TINY, "--prompt", "And~", "--save", str(tmp_path / "never.npz")])
    assert not (tmp_path / "never.npz").exists()  # refused before any training


def test_a_tiny_text_with_one_character_segments_trains_and_evaluates(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abcab cabca bcabc " * 22)  # 396 characters
    assert char_rnn.main(["--text", str(text), "--seq-len", "1", "--batch-size", "16",
                          "--hidden", "8", "--embed", "4", "--steps", "4", "--sample-every", "2",
                          "--prompt", "ab", "--sample-length", "5", "--no-progress"]) == 0


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(tmp_path):
    """Ctrl-C is held back until the step in flight is done, so the checkpoint written on the
    way out is a consistent one, and --resume ends where the uninterrupted run does."""
    import signal
    import subprocess
    import time

    args = [*TINY, "--steps", "300", "--sample-every", "100", "--sample-length", "5"]
    full = tmp_path / "full.json"
    assert char_rnn.main([*args, "--json", str(full)]) == 0
    ckpt, resumed = tmp_path / "ckpt.npz", tmp_path / "res.json"
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "char_rnn.py"), *args, "--save", str(ckpt)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run ended before Ctrl-C reached it")
    assert proc.returncode == 130 and "interrupted after step" in err and "Traceback" not in err
    assert char_rnn.main(["--resume", str(ckpt), "--steps", "300", "--sample-every", "100",
                          "--sample-length", "5", "--no-progress", "--json", str(resumed)]) == 0
    a, b = json.loads(full.read_text()), json.loads(resumed.read_text())
    assert a["val_loss"] == b["val_loss"]
    assert a["history"][-1] == {**b["history"][-1], "seconds": a["history"][-1]["seconds"]}
