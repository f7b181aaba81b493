"""A character-level language model: Embedding -> LSTMCell (or GRUCell, RNNCell) -> Linear.

Trained with truncated backpropagation through time on the bundled King James Genesis and Exodus
(examples/data/, public domain; see the README there): the text is cut into --batch-size streams,
each step reads the next --seq-len characters of every stream, and the hidden state carries from
one step to the next with its history cut off. Gradients are clipped with clip_grad_norm_; the step
(forward over the segment, backward, clipping, Adam) is captured once with tinygrad_np.jit and
replayed. A sample is printed after every --sample-every steps.

    python examples/char_rnn.py                      # LSTM 256, 3,000 steps
    python examples/char_rnn.py --cell gru --steps 500 --save rnn.npz
    python examples/char_rnn.py --resume rnn.npz --steps 1000
    python examples/char_rnn.py --load rnn.npz --sample-only --prompt "And Moses said"
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import trainer  # beside this script: the progress bar and Ctrl-C handling the MNIST examples use

import tinygrad_np as tg
from tinygrad_np import Tensor, nn, optim
from tinygrad_np.io.checkpoint import checkpoint_meta
from tinygrad_np.io.files import Output, atomic_write, check_outputs
from tinygrad_np.nn import functional as F
from tinygrad_np.nn.utils import clip_grad_norm_

TEXT = Path(__file__).resolve().parent / "data" / "kjv-genesis-exodus.txt"
CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}
ARCH = ("cell", "embed", "hidden")  # what a checkpoint must match to be loaded
RUN = ARCH + ("seq_len", "batch_size", "lr", "clip", "seed")  # and to be resumed (--steps may grow)
DEFAULTS = dict(
    cell="lstm", embed=64, hidden=256, seq_len=64, batch_size=32, steps=3000, lr=3e-3, clip=1.0,
    seed=0,
)


class CharRNN(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, cell: str, rng):
        self.embed = nn.Embedding(vocab, embed, rng=rng)
        self.cell = CELLS[cell](embed, hidden, rng=rng)
        self.head = nn.Linear(hidden, vocab, rng=rng)
        self.lstm = cell == "lstm"

    def initial(self, n: int) -> tuple[np.ndarray, ...]:
        zeros = np.zeros((n, self.cell.hidden_size), np.float32)
        return (zeros, zeros.copy()) if self.lstm else (zeros,)

    def forward(self, ids, state: tuple[Tensor, ...]):
        """ids (N, T) -> logits (N, T, vocab) and the state after the last character."""
        x = self.embed(ids)
        outs = []
        for t in range(ids.shape[1]):
            state = self.cell(x[:, t], state) if self.lstm else (self.cell(x[:, t], state[0]),)
            outs.append(state[0])
        return self.head(tg.stack(outs, axis=1)), state


def read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"char_rnn: --text {path}: no such file") from None
    except UnicodeDecodeError as e:
        raise SystemExit(f"char_rnn: --text {path}: not UTF-8 text ({e.reason} at byte {e.start})")
    except OSError as e:
        raise SystemExit(f"char_rnn: --text {path}: cannot read it ({e.strerror or e})") from None
    return text


def is_own_checkpoint(path: Path) -> bool:
    """Whether path is a checkpoint this script wrote (only those may be replaced: an MNIST
    example's checkpoint is not). Reads only the checkpoint's meta."""
    meta = checkpoint_meta(path)
    return meta is not None and isinstance(meta.get("extra"), dict) and "char_rnn" in meta["extra"]


def is_metrics(path: Path) -> bool:
    """Whether path holds metrics this script wrote (only those may be replaced)."""
    return trainer.is_json_with(path, {"val_loss", "steps", "settings"})


def streams(ids: np.ndarray, n: int) -> np.ndarray:
    """The id sequence cut into n equal contiguous streams, (n, length)."""
    length = len(ids) // n
    return ids[: n * length].reshape(n, length)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--text", type=Path, default=TEXT, help="a UTF-8 text (default: the bundled KJV)")
    p.add_argument("--cell", choices=sorted(CELLS), help="(default: lstm)")
    p.add_argument("--embed", type=int, help="embedding size (default: 64)")
    p.add_argument("--hidden", type=int, help="hidden size (default: 256)")
    p.add_argument("--seq-len", type=int, help="characters per truncated-BPTT segment (default: 64)")
    p.add_argument("--batch-size", type=int, help="parallel streams (default: 32)")
    p.add_argument("--steps", type=int, help="training steps in all, resumed ones included "
                   "(default: 3000)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: 3e-3)")
    p.add_argument("--clip", type=float, help="clip_grad_norm_ max norm (default: 1.0)")
    p.add_argument("--seed", type=int, help="(default: 0)")
    p.add_argument("--sample-every", type=int, default=500, metavar="N", help="(default: 500)")
    p.add_argument("--sample-length", type=int, default=300, metavar="N", help="(default: 300)")
    p.add_argument("--temperature", type=float, default=0.8, help="(default: 0.8)")
    p.add_argument("--prompt", default="And God said", help='(default: "And God said")')
    p.add_argument("--save", type=Path, metavar="PATH", help="write a checkpoint here")
    p.add_argument("--resume", type=Path, metavar="PATH",
                   help="continue the run in this checkpoint (and write it back)")
    p.add_argument("--load", type=Path, metavar="PATH", help="start from a checkpoint's weights")
    p.add_argument("--sample-only", action="store_true", help="with --load: only print a sample")
    p.add_argument("--json", type=Path, metavar="PATH", help="write metrics here")
    p.add_argument("--no-progress", action="store_true", help="no per-step progress bar")
    args = p.parse_args(argv)
    problems = []
    for key in ("embed", "hidden", "seq_len", "batch_size", "sample_length", "sample_every"):
        value = getattr(args, key)
        if value is not None and value < 1:
            problems.append(f"--{key.replace('_', '-')} must be a positive integer, got {value}")
    for key in ("lr", "clip", "temperature"):
        value = getattr(args, key)
        if value is not None and not (math.isfinite(value) and value > 0):
            problems.append(f"--{key} must be a positive number, got {value}")
    if args.steps is not None and args.steps < 1:
        problems.append(f"--steps must be a positive integer, got {args.steps}")
    if not args.prompt:
        problems.append("--prompt must not be empty (the sample continues it)")
    if args.seed is not None and args.seed < 0:
        problems.append(f"--seed must be a non-negative integer, got {args.seed}")
    if args.resume and args.load:
        problems.append("--resume and --load: give one (--resume continues a run, --load only "
                        "takes its weights)")
    if args.sample_only and not args.load:
        problems.append("--sample-only needs --load PATH")
    if args.resume and args.save and args.save != args.resume:
        problems.append("--resume writes back to its own checkpoint; drop --save")
    if problems:
        p.error("; ".join(problems))
    return args


def settings_of(args, saved: dict | None) -> dict:
    """The run's settings: the command line's, else the checkpoint's, else the defaults."""
    out = {}
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        out[key] = given if given is not None else (saved or {}).get(key, default)
    if saved:
        fixed = RUN if args.resume else ARCH
        clash = [
            f"--{k.replace('_', '-')} {getattr(args, k)} (the checkpoint has {saved[k]})"
            for k in fixed
            if getattr(args, k) is not None and getattr(args, k) != saved[k]
        ]
        if clash and args.resume:
            raise SystemExit(f"char_rnn: --resume continues the run as it was, and only --steps "
                             f"may change: {', '.join(clash)}")
        if clash:
            raise SystemExit(f"char_rnn: the checkpoint's model differs: {', '.join(clash)}")
    return out


def checkpoint_settings(path: Path) -> tuple[dict, str]:
    try:
        ckpt = tg.load_checkpoint(path)
    except (tg.CheckpointError, OSError) as e:
        raise SystemExit(f"char_rnn: {e}") from None
    extra = ckpt.extra
    if "char_rnn" not in extra:
        raise SystemExit(f"char_rnn: {path}: not a char_rnn checkpoint (no settings in it)")
    return extra["char_rnn"], extra["vocab"]


def tensors_of(model: CharRNN, state: tuple[Tensor, ...]) -> dict[str, Tensor]:
    """What a checkpoint holds: the weights and the carried hidden state (so a resumed run goes on
    exactly where it stopped)."""
    named = dict(model.named_parameters())
    named.update({f"carry.{i}": s for i, s in enumerate(state)})
    return named


def sample(model: CharRNN, vocab: str, prompt: str, length: int, temperature: float, rng) -> str:
    index = {ch: i for i, ch in enumerate(vocab)}  # main() checked the prompt against vocab
    model.eval()
    with tg.no_grad():
        state = tuple(Tensor(s) for s in model.initial(1))
        logits, state = model(np.array([[index[ch] for ch in prompt]]), state)
        out = []
        for _ in range(length):
            z = logits.data[0, -1].astype(np.float64) / temperature
            p = np.exp(z - z.max())
            i = int(rng.choice(len(vocab), p=p / p.sum()))
            out.append(vocab[i])
            logits, state = model(np.array([[i]]), state)
    model.train()
    return prompt + "".join(out)


def evaluate(model: CharRNN, ids: np.ndarray, s: dict) -> float:
    """Mean cross-entropy (nats a character) over held-out text, read as streams like training."""
    data = streams(ids, max(1, min(s["batch_size"], len(ids) // (s["seq_len"] + 1))))
    total, count = 0.0, 0
    with tg.no_grad():
        state = tuple(Tensor(a) for a in model.initial(data.shape[0]))
        for start in range(0, data.shape[1] - 1, s["seq_len"]):
            x = data[:, start : start + s["seq_len"]]
            y = data[:, start + 1 : start + 1 + s["seq_len"]]
            x = x[:, : y.shape[1]]
            logits, state = model(x, state)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                           reduction="sum").data)
            count += y.size
    return total / count


def main(argv=None) -> int:
    args = parse_args(argv)
    saved_from = args.resume or args.load
    saved, vocab = checkpoint_settings(saved_from) if saved_from else (None, None)
    s = settings_of(args, saved)
    outputs = [Output(f, p, "char_rnn checkpoint", is_own_checkpoint)
               for f, p in (("--save", args.save), ("--resume", args.resume)) if p]
    if args.json:
        outputs.append(Output("--json", args.json, "char_rnn metrics file", is_metrics))
    problems = check_outputs(
        outputs, [("--text", args.text), ("--load", args.load), ("--resume", args.resume)],
        may_replace={("--resume", "--resume")},
    )
    if problems:
        raise SystemExit("char_rnn: " + "; ".join(problems))

    text = read_text(args.text)
    vocab = vocab if vocab is not None else "".join(sorted(set(text)))
    missing = sorted(set(text) - set(vocab))
    if missing:
        raise SystemExit(f"char_rnn: --text {args.text} has characters the checkpoint's vocabulary "
                         f"lacks: {missing[:10]}")
    index = np.zeros(max(map(ord, vocab)) + 1, np.int64)
    index[[ord(ch) for ch in vocab]] = np.arange(len(vocab))
    ids = index[np.frombuffer(text.encode("utf-32-le"), np.uint32)]
    n_val = max(len(ids) // 20, s["seq_len"] + 1)  # the last 5% is held out
    if len(ids) - n_val < s["batch_size"] * (s["seq_len"] + 1):
        raise SystemExit(f"char_rnn: --text {args.text}: {len(ids)} characters are too few for "
                         f"{s['batch_size']} streams of {s['seq_len'] + 1}; give a longer text or "
                         f"a smaller --batch-size or --seq-len")
    train_ids, val_ids = ids[:-n_val], ids[-n_val:]
    unknown = sorted(set(args.prompt) - set(vocab))
    if unknown:
        raise SystemExit(f"char_rnn: --prompt has characters the text lacks: {unknown}")

    rng = np.random.default_rng(s["seed"])
    model = CharRNN(len(vocab), s["embed"], s["hidden"], s["cell"], rng)
    params = model.parameters()
    opt = optim.Adam(params, lr=s["lr"])
    state = tuple(Tensor(a) for a in model.initial(s["batch_size"]))
    step = 0
    if args.resume:  # everything: weights, Adam, the carried state, the sampler's generator
        extra = tg.restore(args.resume, tensors_of(model, state), opt)
        step = extra["step"]
        rng.bit_generator.state = extra["rng"]
    elif args.load:  # only the weights (the carried state was for the saved run's streams)
        stored = tg.load_checkpoint(args.load).model_state
        for name, p in model.named_parameters():
            p.data[...] = stored[name]
    print(f"text: {args.text.name}, {len(text):,} characters, {len(vocab)} distinct; "
          f"{len(train_ids):,} to train on, {len(val_ids):,} held out")
    print(f"model: {s['cell'].upper()} embed {s['embed']} hidden {s['hidden']}, "
          f"{sum(p.data.size for p in params):,} parameters; Adam lr {s['lr']:g}, "
          f"clip {s['clip']:g}; {s['batch_size']} streams x {s['seq_len']} characters a step")

    if args.sample_only:
        print(sample(model, vocab, args.prompt, args.sample_length, args.temperature, rng))
        return 0

    if step >= s["steps"]:
        print(f"{saved_from} has trained all {s['steps']} steps; give --steps more to go on")
        return 0
    data = streams(train_ids, s["batch_size"])
    per_pass = (data.shape[1] - 1) // s["seq_len"]  # segments a pass over the streams holds

    @tg.jit
    def train_step(x, y, *state):
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y)  # y flat: (N * T,)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(params, s["clip"])
        opt.step()
        return (loss, *state)

    def save(done: int) -> None:
        path = args.resume or args.save
        if path is None:
            return
        extra = {"char_rnn": s, "vocab": vocab, "step": done,
                 "rng": rng.bit_generator.state}
        with trainer.sigint_deferred():
            tg.save_checkpoint(path, tensors_of(model, state), opt, extra=extra)

    history, losses, started, done = [], [], time.perf_counter(), step
    bar = trainer.progress(range(step, s["steps"]), s["steps"] - step, "train",
                           not args.no_progress)
    try:
        for step in bar:
            k = step % per_pass
            if k == 0:  # a new pass over the text: the streams start again from zeros
                state = tuple(Tensor(a) for a in model.initial(s["batch_size"]))
            x = data[:, k * s["seq_len"] : (k + 1) * s["seq_len"]]
            y = data[:, k * s["seq_len"] + 1 : (k + 1) * s["seq_len"] + 1]
            with trainer.sigint_deferred():  # Ctrl-C lands between steps: a save is consistent
                loss, *new = train_step(x, y.reshape(-1), *state)
                state = tuple(Tensor(t.data) for t in new)  # truncate: no history before it
                done = step + 1
            losses.append(float(loss.data))
            if not math.isfinite(losses[-1]):
                raise SystemExit(f"char_rnn: the loss is {losses[-1]} at step {done}; try a "
                                 f"smaller --lr or --clip")
            if done % args.sample_every == 0 or done == s["steps"]:
                val = evaluate(model, val_ids, s)
                row = {"step": done, "train_loss": float(np.mean(losses)), "val_loss": val,
                       "seconds": time.perf_counter() - started}
                history.append(row)
                losses = []
                print(f"step {done:5d}/{s['steps']}  train {row['train_loss']:.3f}  "
                      f"val {val:.3f} nats ({val / math.log(2):.3f} bits) a character  "
                      f"{row['seconds']:.0f}s")
                print("  " + sample(model, vocab, args.prompt, args.sample_length,
                                    args.temperature, rng).replace("\n", "\n  "))
                save(done)
    except KeyboardInterrupt:
        print(f"interrupted after step {done}", file=sys.stderr)
        save(done)
        return 130
    seconds = time.perf_counter() - started
    val = history[-1]["val_loss"] if history else None
    if val is not None:
        print(f"validation loss {val:.3f} nats ({val / math.log(2):.3f} bits) a character after "
              f"{seconds:.1f}s of training")
    if args.json:
        metrics = {"settings": s, "steps": done, "val_loss": val, "train_seconds": seconds,
                   "history": history, "text": str(args.text), "characters": len(text)}
        atomic_write(args.json, lambda f: f.write(json.dumps(metrics, indent=1).encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
