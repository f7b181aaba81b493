"""Checkpoints: a model's parameters, its architecture and optimizer state in one .npz file.

Arrays are stored as .npy members and everything else as one JSON string, so loading never unpickles
(np.load(allow_pickle=False)). Files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import nn, optim
from .files import DataError, atomic_write

FORMAT, VERSION = "tinygrad_np.checkpoint", 1


class CheckpointError(DataError):
    """A checkpoint file is unreadable, not a checkpoint, or does not fit the model; names the file."""


def save_checkpoint(
    path, model: nn.Module, optimizer: optim.Optimizer | None = None, extra: dict | None = None
) -> None:
    """Write model parameters (+ MLP architecture), optimizer state and JSON-able extra, atomically."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"class": type(model).__name__, "config": getattr(model, "config", None)},
        "extra": extra or {},
    }
    if optimizer is not None:
        scalars = {}
        for k, v in optimizer.state_dict().items():
            if isinstance(v, np.ndarray):
                arrays[f"optim/{k}"] = v
            else:
                scalars[k] = v
        meta["optimizer"] = {"class": type(optimizer).__name__, "state": scalars}
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


@dataclass
class Checkpoint:
    """What a checkpoint file holds."""

    path: Path
    model_state: dict[str, np.ndarray]
    optimizer_state: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def extra(self) -> dict:
        return self.meta.get("extra", {})

    @property
    def optimizer_class(self) -> str | None:
        return self.meta.get("optimizer", {}).get("class")

    def build_model(self, rng: np.random.Generator | None = None) -> nn.Module:
        """Rebuild the saved MLP from its recorded architecture and load its parameters."""
        spec = self.meta.get("model", {})
        if spec.get("class") != "MLP" or not spec.get("config"):
            raise CheckpointError(
                f"{self.path}: holds a {spec.get('class')} without a recorded "
                f"architecture; build the model yourself and use restore()"
            )
        config = spec["config"]
        sizes = config.get("sizes") if isinstance(config, dict) else None
        shapes = (
            [
                self.model_state.get(f"linears.{i}.weight", np.empty(0)).shape
                for i in range(len(sizes) - 1)
            ]
            if isinstance(sizes, list) and len(sizes) > 1
            else None
        )
        if shapes is None or shapes != [tuple(sizes[i : i + 2]) for i in range(len(sizes) - 1)]:
            raise CheckpointError(
                f"{self.path}: the recorded architecture {config!r:.120} does not "
                f"match the stored weights"
            )
        try:
            model = nn.MLP(**config, rng=rng or np.random.default_rng(0))
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{self.path}: bad recorded architecture: {e}") from None
        self.load_into(model)
        return model

    def load_into(self, model: nn.Module, optimizer: optim.Optimizer | None = None) -> None:
        try:
            model.load_state_dict(self.model_state)
            if optimizer is not None and self.optimizer_state:
                optimizer.load_state_dict(self.optimizer_state)
        except ValueError as e:
            raise CheckpointError(f"{self.path}: {e}") from None


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint without executing anything from it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "meta" not in npz.files:
                raise CheckpointError(f"{path}: not a tinygrad_np checkpoint (no 'meta' entry)")
            meta = json.loads(str(npz["meta"]))
            arrays = {k: npz[k] for k in npz.files if k != "meta"}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except CheckpointError:
        raise
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file") from None
    except Exception as e:  # a hostile or corrupt file can fail inside numpy/zipfile in many ways;
        # object arrays (which would need pickle) fail here too: allow_pickle=False refuses them
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinygrad_np checkpoint (format {meta!r:.60})")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')}, this library "
            f"reads version {VERSION}"
        )
    model_state = {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}
    opt_state = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    opt_state.update(meta.get("optimizer", {}).get("state", {}))
    return Checkpoint(path, model_state, opt_state, meta)


def restore(path, model: nn.Module, optimizer: optim.Optimizer | None = None) -> dict:
    """Load a checkpoint into an existing model (and optimizer); return its extra dict."""
    ckpt = load_checkpoint(path)
    ckpt.load_into(model, optimizer)
    return ckpt.extra
