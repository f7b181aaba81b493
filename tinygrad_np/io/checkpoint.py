"""Checkpoints: a model's parameters, its architecture and optimizer state in one .npz file.

What is saved: any nn.Module (its state_dict: parameters and buffers, nested modules by dotted
name), or a dict (name -> Tensor) or list of Tensors, as the README's plain-expression style holds
its weights; with the optimizer over them. The architecture of an nn.MLP and of an nn.Sequential of
library layers (nn.architecture) is recorded, so Checkpoint.build_model() rebuilds them; anything
else is loaded into a model you construct (restore()), and a dict or list into its tensors
(restore(), or Checkpoint.tensors() for new ones).

Arrays are stored as .npy members and everything else as one JSON string (the 'meta' member), so
loading never unpickles. Loading is bounded (io.npz): the meta member is read first (at most
META_MAX_BYTES), then every member's zip entry and .npy header are checked against what the
checkpoint needs (an MLP's recorded architecture, the shapes and dtypes recorded in the meta, the
model and optimizer given to restore()) and their total against the memory available, all before
any member's data is decompressed. Files are written to a temporary name and renamed into place.

Version 2 records every array's shape and dtype and which model parameter each optimizer buffer
belongs to; version-1 files (which the trainer wrote for MLPs) are still read. A Sequential's
record (model.config = {"layers": [...]}) and a dict or list of tensors (model.class "dict" or
"list", with the names of those that require grad) are additions a version-2 reader without them
loads as plain parameter states.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import nn, optim
from ..nn import architecture
from ..tensor import Tensor
from . import npz
from .files import DataError, atomic_write

FORMAT, VERSION = "tinygrad_np.checkpoint", 2
READABLE_VERSIONS = (1, 2)
META_MAX_BYTES = 16 << 20  # declared bytes of the meta member's data (4 per character), at most
_MEMBER = re.compile(r"(model|optim)/[^/]+\.npy")
_BUFFER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.(0|[1-9][0-9]*)")  # optimizer '<buffer>.<index>'
_DTYPE = re.compile(r"[<>|=][biufc][0-9]{1,2}")  # a recorded numeric dtype, as dtype.str gives it
_FLOAT = "floating"  # an expected dtype: any floating dtype (version 1 records none)


class CheckpointError(DataError):
    """A checkpoint file is unreadable, not a checkpoint, or does not fit the model; names the file."""


Tensors = dict[str, Tensor] | list[Tensor] | tuple[Tensor, ...]  # the plain-expression style


def save_checkpoint(
    path,
    model: nn.Module | Tensors,
    optimizer: optim.Optimizer | None = None,
    extra: dict | None = None,
) -> None:
    """Write a model's parameters and buffers (+ its architecture where it can be recorded),
    optimizer state and JSON-able extra, atomically. model is a Module, or a dict (name -> Tensor)
    or list of Tensors (saved under their keys, or '0', '1', ...).

    The meta records every array's shape and dtype, and for the optimizer the name of the model
    parameter behind each buffer index (None when the optimizer holds tensors outside the model).
    """
    named = named_tensors(model, "save_checkpoint")
    if isinstance(model, nn.Module):
        state = model.state_dict()  # a subclass's own state_dict, if it has one
    else:
        state = {k: t.data.copy() for k, t in named.items()}
    arrays = {f"model/{k}": v for k, v in state.items()}
    meta = {"format": FORMAT, "version": VERSION, "model": _model_record(model, named)}
    meta["extra"] = extra or {}
    if optimizer is not None:
        scalars = {}
        for k, v in optimizer.state_dict().items():
            if isinstance(v, np.generic):  # a 0-d parameter's buffer can come as a numpy scalar
                v = np.asarray(v) if _BUFFER.fullmatch(k) else v.item()
            if isinstance(v, np.ndarray):
                arrays[f"optim/{k}"] = v
            else:
                scalars[k] = v
        names = {}
        for name, t in named.items():
            names.setdefault(id(t), name)  # a tensor under two names: the first
        owners = [names.get(id(p)) for p in optimizer.params]
        meta["optimizer"] = {
            "class": type(optimizer).__name__,
            "state": scalars,
            "params": None if None in owners else owners,
        }
    meta["arrays"] = {k: {"shape": list(v.shape), "dtype": v.dtype.str} for k, v in arrays.items()}
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def named_tensors(target, where: str) -> dict[str, Tensor]:
    """name -> Tensor for what a checkpoint stores of target: a Module's parameters and buffers
    (its state_dict's names), a dict's entries by key, a list's by position ('0', '1', ...)."""
    if isinstance(target, nn.Module):
        return {**dict(target.named_parameters()), **dict(target.named_buffers())}
    if isinstance(target, dict):
        items = list(target.items())
    elif isinstance(target, (list, tuple)):
        items = [(str(i), t) for i, t in enumerate(target)]
    else:
        raise TypeError(
            f"{where}: expected an nn.Module, or a dict or list of Tensors, got "
            f"{type(target).__name__}"
        )
    for key, t in items:
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(
                f"{where}: the dict's keys name the stored arrays, so each must be a non-empty "
                f"string without '/', got {key!r:.60}"
            )
        if not isinstance(t, Tensor):
            raise TypeError(
                f"{where}: entry {key!r:.60} is a {type(t).__name__}, not a Tensor; wrap arrays "
                f"in tg.Tensor(...) (or keep them in extra= if they are not weights)"
            )
    return dict(items)


def _model_record(model, named: dict[str, Tensor]) -> dict:
    """meta['model']: the class, and the architecture where one can be recorded (an MLP's config,
    a Sequential's layers); for a dict or list of tensors, which of them require grad."""
    if not isinstance(model, nn.Module):
        grads = [name for name, t in named.items() if t.requires_grad]
        return {"class": "dict" if isinstance(model, dict) else "list",
                "config": None, "requires_grad": grads}  # fmt: skip
    record = {"class": type(model).__name__, "config": getattr(model, "config", None)}
    if type(model) is nn.Sequential:
        try:
            config = architecture.describe(model)
            json.dumps(config)
        except architecture.ArchitectureError as e:
            record["unrecorded"] = str(e)  # build_model says why it cannot rebuild this one
        except (TypeError, ValueError) as e:
            record["unrecorded"] = f"a layer's settings are not JSON: {e}"
        else:
            record["config"] = config
    return record


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
        """Rebuild the saved nn.MLP or nn.Sequential of library layers from its recorded
        architecture (weights drawn from rng, default np.random.default_rng(0), are then replaced
        by the stored ones; Dropout layers draw their masks from rng) and load its state."""
        spec = self.meta.get("model", {})
        cls = spec.get("class")
        if cls == "MLP" and spec.get("config"):
            model = self._build_mlp(spec["config"], rng)
        elif cls == "Sequential" and isinstance(spec.get("config"), dict):
            model = self._build_sequential(spec["config"], rng)
        elif cls in ("dict", "list") and "requires_grad" in spec:
            raise CheckpointError(
                f"{self.path}: holds a {cls} of tensors, not a model; take new tensors with "
                f"Checkpoint.tensors(), or load into yours with restore(path, your_{cls}, "
                f"optimizer)"
            )
        else:
            why = spec.get("unrecorded")
            why = f" ({why!s:.200})" if isinstance(why, str) else ""
            raise CheckpointError(
                f"{self.path}: holds a {cls!s:.60} without a recorded architecture{why}; only an "
                f"nn.MLP and an nn.Sequential of library layers can be rebuilt. Build the model "
                f"yourself (model = {cls!s:.60}(...)) and load it with restore(path, model, "
                f"optimizer)"
            )
        self.load_into(model)
        return model

    def _build_mlp(self, config, rng) -> nn.Module:
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
            return nn.MLP(**config, rng=rng or np.random.default_rng(0))
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{self.path}: bad recorded architecture: {e}") from None

    def _build_sequential(self, config: dict, rng) -> nn.Module:
        """Check the record against the stored arrays (names and shapes, nothing allocated) and
        only then build it, so a record cannot ask for more memory than the file holds."""
        try:
            shapes = architecture.state_shapes(config)
        except (architecture.ArchitectureError, RecursionError) as e:  # RecursionError: nesting
            raise CheckpointError(f"{self.path}: bad recorded architecture: {e}") from None
        stored = {k: v.shape for k, v in self.model_state.items()}
        if shapes != stored:
            names = shapes.keys() | stored.keys()
            differ = sorted(k for k in names if shapes.get(k) != stored.get(k))
            raise CheckpointError(
                f"{self.path}: the recorded architecture does not match the stored arrays "
                f"(they differ at {differ[:5]}); the file is corrupt or was edited"
            )
        try:
            return architecture.build(config, rng or np.random.default_rng(0))
        except (architecture.ArchitectureError, RecursionError) as e:
            raise CheckpointError(f"{self.path}: bad recorded architecture: {e}") from None

    def tensors(self) -> dict[str, Tensor] | list[Tensor]:
        """New Tensors holding a saved dict or list of tensors (as saved: a dict by key, a list in
        order), requires_grad as they had it; for a model's checkpoint, a dict by state name."""
        spec = self.meta.get("model", {})
        grads = spec.get("requires_grad", [])
        if not isinstance(grads, list):
            raise CheckpointError(
                f"{self.path}: its meta records requires_grad as {grads!r:.60}, not a list of "
                f"names; the file is corrupt or was edited"
            )
        out = {
            k: Tensor(v.copy(), requires_grad=k in grads and v.dtype.kind == "f")
            for k, v in self.model_state.items()
        }
        if spec.get("class") != "list":
            return out
        if sorted(out) != [str(i) for i in range(len(out))]:
            raise CheckpointError(
                f"{self.path}: a saved list holds the entries {sorted(out)[:5]}, not 0 to "
                f"{len(out) - 1}; the file is corrupt or was edited"
            )
        return [out[str(i)] for i in range(len(out))]

    def load_into(
        self, model: nn.Module | Tensors, optimizer: optim.Optimizer | None = None
    ) -> None:
        """Copy the stored state into model (a Module, or a dict or list of Tensors, in place)
        and optimizer; every mismatch is named before anything changes."""
        try:
            if isinstance(model, nn.Module):
                model.load_state_dict(self.model_state)
            else:
                named = named_tensors(model, "restore")
                check_tensors(named, {k: v.shape for k, v in self.model_state.items()})
                for name, t in named.items():
                    t.data[...] = self.model_state[name]
            if optimizer is not None and self.optimizer_state:
                optimizer.load_state_dict(self.optimizer_state)
        except (TypeError, ValueError) as e:  # TypeError: a recorded hyperparameter not a number
            raise CheckpointError(f"{self.path}: {e}") from None


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint without executing anything from it, and without trusting its sizes.

    Every member is checked (see the module docstring) before any data is decompressed; a file
    that fails a check is a CheckpointError naming the file, the member and what is wrong.
    """
    return _load(Path(path))


def check_tensors(named: dict[str, Tensor], shapes: dict[str, tuple[int, ...]]) -> None:
    """ValueError naming every missing, unexpected or wrongly shaped entry of a state with these
    names and shapes, for a dict or list of tensors (Module.check_state's counterpart)."""
    problems = []
    missing = [k for k in named if k not in shapes]
    unexpected = [k for k in shapes if k not in named]
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    for name, t in named.items():
        if name in shapes and tuple(shapes[name]) != t.shape:
            problems.append(
                f"{name} has shape {tuple(shapes[name])} in the state but {t.shape} here"
            )
    if problems:
        raise ValueError(
            "restore(tensors): " + "; ".join(problems) + "; pass the tensors the checkpoint was "
            "saved from (the same keys, or list length, and shapes)"
        )


def restore(path, model: nn.Module | Tensors, optimizer: optim.Optimizer | None = None) -> dict:
    """Load a checkpoint into an existing model (a Module, or a dict or list of Tensors, whose
    arrays are overwritten in place) and optimizer; return its extra dict.

    The stored shapes are also checked against the model's parameters (and the optimizer's) before
    any data is decompressed.
    """
    if not isinstance(model, nn.Module):
        named_tensors(model, "restore")  # a TypeError or ValueError of the caller's, not the file's
    ckpt = _load(Path(path), model, optimizer)
    ckpt.load_into(model, optimizer)
    return ckpt.extra


def is_checkpoint(path) -> bool:
    """True if path is a file holding a tinygrad_np checkpoint (of any version).

    Cheap and bounded: reads only the meta member (at most META_MAX_BYTES of it). False for a
    missing file, a directory, a non-zip, a zip without meta or an npz of another format; never
    raises for a regular file.
    """
    return checkpoint_meta(path) is not None


def checkpoint_meta(path) -> dict | None:
    """The meta of the checkpoint at path (its format, model record, extra, ...), read as
    is_checkpoint reads it; None if path holds no checkpoint."""
    path = Path(path)
    try:
        with npz.NpzFile(path) as f:
            return _read_meta(path, f)
    except Exception:  # whatever a file that is not a checkpoint makes fail, the answer is no
        return None


# --- loading, bounded ---


def _load(
    path: Path, model: nn.Module | Tensors | None = None, optimizer: optim.Optimizer | None = None
) -> Checkpoint:
    """Read path, checking every member before any data is decompressed (see the module docstring)."""
    try:
        with npz.NpzFile(path) as f:
            meta = _read_meta(path, f)
            _check_meta(path, meta)
            members = _read_headers(path, f)
            _check_members(path, meta, members)
            if model is not None:
                _check_model(path, model, members)
            if optimizer is not None:
                _check_optimizer(path, optimizer, members)
            _check_memory(path, members)
            arrays = {key: f.read_array(member) for key, member in members.items()}
    except CheckpointError:
        raise
    except npz.NpzError as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file") from None
    except PermissionError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror})") from None
    except Exception as e:  # a hostile or corrupt file can fail inside zipfile/numpy in many ways
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {e})"
        ) from None
    model_state = {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}
    opt_state = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    opt_state.update(meta.get("optimizer", {}).get("state", {}))
    return Checkpoint(path, model_state, opt_state, meta)


def _read_meta(path: Path, f: npz.NpzFile) -> dict:
    """The meta member's JSON, read first and bounded; CheckpointError if f is not a checkpoint."""
    if "meta.npy" not in f.names:
        raise CheckpointError(f"{path}: not a tinygrad_np checkpoint (no 'meta' entry)")
    member = f.read_header("meta.npy")
    if member.dtype.kind != "U" or member.shape != ():
        raise CheckpointError(
            f"{path}: not a tinygrad_np checkpoint (its meta entry holds "
            f"{member.describe()}, not one string)"
        )
    if member.nbytes > META_MAX_BYTES:
        raise CheckpointError(
            f"{path}: its meta entry declares {member.nbytes} bytes, more than the "
            f"{META_MAX_BYTES} bytes a checkpoint's metadata may take; the file is corrupt "
            f"or not a tinygrad_np checkpoint"
        )
    text = str(f.read_array(member)[()])
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (its meta entry is not JSON: {e})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinygrad_np checkpoint (format {meta!r:.60})")
    return meta


def _check_meta(path: Path, meta: dict) -> None:
    """The version is one this library reads, and the meta's entries have the types loading uses."""
    version = meta.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint version {version!r:.20}, this library reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    model, opt = meta.get("model"), meta.get("optimizer", {})
    problems = []
    if not isinstance(model, dict) or not isinstance(model.get("class"), str):
        problems.append(f"'model' is {model!r:.60}, not a dict with a class name")
    if not isinstance(meta.get("extra", {}), dict):
        problems.append("'extra' is not a dict")
    if not isinstance(opt, dict) or not isinstance(opt.get("state", {}), dict):
        problems.append(f"'optimizer' is {opt!r:.60}, not a dict with a 'state' dict")
    if problems:
        raise CheckpointError(
            f"{path}: its meta is malformed ({'; '.join(problems)}); the file is corrupt or was edited"
        )


def _read_headers(path: Path, f: npz.NpzFile) -> dict[str, npz.Member]:
    """npz key -> Member for every array member (headers only); unknown members are refused."""
    unknown = [name for name in f.names if name != "meta.npy" and not _MEMBER.fullmatch(name)]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise CheckpointError(
            f"{path}: unknown member{'s' if len(unknown) > 1 else ''} {shown}; a checkpoint "
            f"holds only meta.npy, model/<name>.npy and optim/<name>.npy, so this file was "
            f"edited or is not a tinygrad_np checkpoint"
        )
    members = (f.read_header(name) for name in f.names if name != "meta.npy")
    return {member.key: member for member in members}


def _mlp_shapes(path: Path, spec: dict) -> dict[str, tuple[int, ...]] | None:
    """parameter name -> shape for the recorded MLP, in parameter order; None if not an MLP."""
    if spec.get("class") != "MLP":
        return None
    config = spec.get("config")
    sizes = config.get("sizes") if isinstance(config, dict) else None
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or not all(type(n) is int and n >= 1 for n in sizes)
    ):
        raise CheckpointError(
            f"{path}: holds an MLP whose recorded architecture {config!r:.120} gives no layer "
            f"sizes to check its weights against; the file is corrupt or was edited"
        )
    shapes = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        shapes[f"linears.{i}.weight"], shapes[f"linears.{i}.bias"] = (a, b), (b,)
    return shapes


def _recorded(path: Path, meta: dict, members: dict[str, npz.Member]) -> dict | None:
    """npz key -> (shape, dtype str) from a version-2 meta's record; None for version 1."""
    if meta["version"] < 2:
        return None
    record = meta.get("arrays")
    if not isinstance(record, dict):
        raise CheckpointError(
            f"{path}: its meta has no record of its arrays; the file is corrupt or was edited"
        )
    out = {}
    for key, spec in record.items():
        shape = spec.get("shape") if isinstance(spec, dict) else None
        dtype = spec.get("dtype") if isinstance(spec, dict) else None
        if (
            not isinstance(shape, list)
            or not all(type(n) is int and n >= 0 for n in shape)
            or not isinstance(dtype, str)
            or not _DTYPE.fullmatch(dtype)
        ):
            raise CheckpointError(
                f"{path}: its meta records {key!r:.80} as {spec!r:.80}, not a shape and a "
                f"numeric dtype; the file is corrupt or was edited"
            )
        out[key] = (tuple(shape), dtype)
    problems = []
    missing = [f"{k}.npy" for k in out if k not in members]
    unrecorded = [f"{k}.npy" for k in members if k not in out]
    if missing:
        problems.append(f"recorded but missing: {missing!r:.200}")
    if unrecorded:
        problems.append(f"present but not recorded: {unrecorded!r:.200}")
    if problems:
        raise CheckpointError(
            f"{path}: its members do not match the record in its meta ({'; '.join(problems)}); "
            f"the file is truncated or was edited"
        )
    return out


_Need = tuple[str, tuple[int, ...] | None, str | None]  # (who needs it, shape, dtype)


def _check_members(path: Path, meta: dict, members: dict[str, npz.Member]) -> None:
    """Each member's header has the shape and dtype the checkpoint's own records require."""
    needs = _needs(path, meta, members)
    for key, member in members.items():
        if member.dtype.kind not in "biufc":
            raise CheckpointError(
                f"{path}: member {member.name} holds {member.dtype}, not numbers; the file is "
                f"corrupt or not a tinygrad_np checkpoint"
            )
        for source, shape, dtype in needs[key]:
            if shape is not None and member.shape != shape:
                raise CheckpointError(
                    f"{path}: member {member.name} declares {member.describe()}, but {source} "
                    f"needs shape {shape}; the file is corrupt or was edited"
                )
            if dtype == _FLOAT and member.dtype.kind != "f":
                raise CheckpointError(
                    f"{path}: member {member.name} holds {member.dtype}, but {source} needs "
                    f"floating-point numbers; the file is corrupt or was edited"
                )
            if dtype not in (None, _FLOAT) and member.dtype.str != dtype:
                raise CheckpointError(
                    f"{path}: member {member.name} holds {member.dtype} ({member.dtype.str}), "
                    f"but {source} says {dtype}; the file is corrupt or was edited"
                )


def _needs(path: Path, meta: dict, members: dict[str, npz.Member]) -> dict[str, list[_Need]]:
    """npz key -> what each of the checkpoint's records says that member must be.

    The records: an MLP's architecture (model members; version 1 and 2), the meta's record of
    every array (version 2), and for optimizer buffers '<buffer>.<i>' the shape of parameter i
    (the parameter the meta names for index i; for a version-1 MLP, its i-th parameter).
    """
    needs: dict[str, list[_Need]] = {k: [] for k in members}
    mlp = _mlp_shapes(path, meta["model"])
    recorded = _recorded(path, meta, members)
    if mlp is not None:
        sizes = meta["model"]["config"]["sizes"]
        for key in members:
            if key.startswith("model/"):
                if key[6:] not in mlp:
                    raise CheckpointError(
                        f"{path}: member {key}.npy is not a parameter of the recorded MLP "
                        f"{sizes}; the file is corrupt or was edited"
                    )
                needs[key].append((f"the recorded architecture MLP {sizes}", mlp[key[6:]], _FLOAT))
    if recorded is not None:
        for key, (shape, dtype) in recorded.items():
            needs[key].append(("its record in the meta", shape, dtype))
    owners = _buffer_owners(path, meta, mlp)
    if mlp is not None:
        param_shapes = mlp
    else:
        param_shapes = {k[6:]: v[0] for k, v in (recorded or {}).items() if k.startswith("model/")}
    for key in members:
        if not key.startswith("optim/"):
            continue
        match = _BUFFER.fullmatch(key[6:])
        if match is None:
            raise CheckpointError(
                f"{path}: member {key}.npy is not an optimizer buffer ('<buffer>.<index>'); "
                f"the file is corrupt or was edited"
            )
        if owners is None:
            continue
        i = int(match[2])
        owner = owners[i] if i < len(owners) else None
        if owner not in param_shapes:
            which = f"{len(owners)} optimized parameters" if owner is None else f"no {owner!r}"
            raise CheckpointError(
                f"{path}: member {key}.npy is the optimizer buffer of parameter {i}, but the "
                f"checkpoint's model has {which}; the file is corrupt or was edited"
            )
        needs[key].append((f"parameter {i} ({owner})", param_shapes[owner], None))
    return needs


def _buffer_owners(path: Path, meta: dict, mlp: dict | None) -> list[str] | None:
    """The model parameter name behind each optimizer buffer index; None where unknown."""
    opt = meta.get("optimizer", {})
    if meta["version"] < 2 or "params" not in opt:
        return list(mlp) if mlp is not None else None  # an MLP's optimizer takes its parameters
    owners = opt["params"]
    if owners is not None and not (
        isinstance(owners, list) and all(isinstance(n, str) for n in owners)
    ):
        raise CheckpointError(
            f"{path}: its meta records the optimizer's parameters as {owners!r:.80}, not a "
            f"list of names; the file is corrupt or was edited"
        )
    return owners


def _check_model(path: Path, model, members: dict[str, npz.Member]) -> None:
    """The stored parameters are the model's, in name and shape (load_state_dict's own check)."""
    shapes = {k[6:]: m.shape for k, m in members.items() if k.startswith("model/")}
    try:
        if isinstance(model, nn.Module):
            model.check_state(shapes)
        else:
            check_tensors(named_tensors(model, "restore"), shapes)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


def _check_optimizer(path: Path, optimizer, members: dict[str, npz.Member]) -> None:
    """Every stored buffer the optimizer will load has its parameter's shape."""
    for key, member in members.items():
        match = _BUFFER.fullmatch(key[6:]) if key.startswith("optim/") else None
        if match is None or match[1] not in optimizer.state:
            continue
        i = int(match[2])
        if i < len(optimizer.params) and member.shape != optimizer.params[i].shape:
            raise CheckpointError(
                f"{path}: {type(optimizer).__name__}.load_state_dict: {key[6:]} has shape "
                f"{member.shape}, parameter {i} has {optimizer.params[i].shape}; the "
                f"optimizer state belongs to a different model"
            )


def _size(n: int) -> str:
    """'8589934592 bytes (8.00 GiB)'."""
    if n >= 2**30:
        return f"{n} bytes ({n / 2**30:.2f} GiB)"
    return f"{n} bytes ({n / 2**20:.1f} MiB)" if n >= 2**20 else f"{n} bytes"


def _check_memory(path: Path, members: dict[str, npz.Member]) -> None:
    """The arrays fit in the memory available now."""
    total = sum(member.nbytes for member in members.values())
    available = npz.available_memory()
    if total > available:
        raise CheckpointError(
            f"{path}: its arrays need {_size(total)}, more than the {_size(available)} of "
            f"memory available; free some memory or load it on a machine with more"
        )
