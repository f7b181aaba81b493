"""PyTorch interop: models and weights to and from torch.nn, and safetensors files torch loads.

    from tinygrad_np import interop
    torch_model = interop.to_torch(model)     # nn.MLP or nn.Sequential -> torch.nn.Sequential
    model = interop.from_torch(torch_model)   # torch.nn.Sequential -> nn.Sequential
    sd = interop.to_torch_state_dict(model)   # torch's names and layouts, torch tensors
    interop.load_torch_state_dict(model, torch_model.state_dict())
    interop.save_safetensors(model, "model.safetensors")  # torch's load_state_dict takes it

This module imports torch, so tinygrad_np itself never does: `import tinygrad_np` works without
torch, `from tinygrad_np import interop` needs it (the `oracle` extra). The safetensors functions
need the `safetensors` package too (the `safetensors` extra); the rest works without it.

Names and layouts. Our nn.Sequential names its entries 'layers.0.weight', torch's '0.weight';
nn.MLP's 'linears.1.weight' is torch's '2.weight' (the activation, and dropout where p > 0, take
indices between the linear layers, as they would in the torch.nn.Sequential that to_torch builds).
Our Linear stores its weight (in, out) and torch's (out, in), so it is transposed both ways; every
other layer has torch's names and layouts already. BatchNorm's num_batches_tracked (torch counts
batches; ours does not, and with a float momentum the count changes nothing) is written as 0 and
ignored on load.

A transposed square Linear weight has the right shape either way, so load_torch_state_dict only
takes what comes from torch: torch tensors under torch's names (our state_dict() holds numpy arrays
under our names, and is refused for both), every shape checked against the model's torch layout;
load_safetensors reads arrays from a safetensors file under torch's names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

try:
    import torch
except ImportError as e:
    raise ImportError(
        "tinygrad_np.interop needs PyTorch: pip install 'tinygrad_np[oracle]' (or torch itself)"
    ) from e

try:
    from safetensors import numpy as safetensors_numpy
    from safetensors import safe_open
except ImportError:  # the safetensors extra: save_safetensors/load_safetensors say so
    safetensors_numpy = safe_open = None

from . import nn
from .io.files import Output, atomic_write, check_outputs

SAFETENSORS_HEADER_MAX = 100 << 20  # the safetensors format's own limit on its JSON header


class InteropError(ValueError):
    """A model, layer, option or state with no counterpart on the other side; names it."""


# --- our layers, in the order torch's Sequential holds them ---

_MLP_ACTIVATIONS = {  # nn.MLP's activation names as layers (its "gelu" is the tanh form)
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": lambda: nn.GELU("tanh"),
}

_LEAVES = (  # layers whose state has torch's names and layouts (Linear's weight: transposed)
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.Embedding, nn.Dropout, nn.Dropout2d,
    nn.Flatten, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.GELU, nn.LeakyReLU,
)  # fmt: skip


def _steps(model, where: str) -> list[tuple[str, nn.Module]]:
    """(our name prefix, layer) for each entry of the torch.nn.Sequential equal to model."""
    if isinstance(model, nn.MLP):
        c = model.config
        steps = []
        for i, linear in enumerate(model.linears):
            steps.append((f"linears.{i}.", linear))
            if i < len(model.linears) - 1:
                steps.append(("", _MLP_ACTIVATIONS[c["activation"]]()))
                if c["dropout"]:
                    steps.append(("", model.dropout))
        return steps
    if isinstance(model, nn.Sequential):
        return [(f"layers.{i}.", layer) for i, layer in enumerate(model.layers)]
    raise InteropError(
        f"{where}: {type(model).__name__} is not an nn.MLP or an nn.Sequential of library layers; "
        f"for another model, build its torch twin yourself and copy the weights one by one "
        f"(transposing each Linear weight: ours is (in, out), torch's (out, in))"
    )


def _leaf(layer, where: str, at: str):
    if type(layer) not in _LEAVES:
        raise InteropError(
            f"{where}: layer {at} ({type(layer).__name__}) has no torch.nn counterpart here; "
            f"supported: {', '.join(t.__name__ for t in _LEAVES)}, nn.Sequential, nn.MLP"
        )
    return layer


class Entry(NamedTuple):
    """One entry of a model's state on both sides."""

    ours: str | None  # our state_dict name; None for batch norm's num_batches_tracked (torch only)
    theirs: str  # torch's name
    transposed: bool  # a Linear weight: ours (in, out), torch's (out, in)
    tensor: object  # our Tensor (None with ours)


def _entries(model, where: str, ours: str = "", theirs: str = "") -> list[Entry]:
    """Every state entry of model (an nn.MLP or nn.Sequential), in torch's order."""
    out = []
    for i, (prefix, layer) in enumerate(_steps(model, where)):
        here = f"{theirs}{i}."
        if isinstance(layer, (nn.Sequential, nn.MLP)):
            out += _entries(layer, where, ours + prefix, here)
            continue
        _leaf(layer, where, here[:-1])
        for name, t in [*layer.named_parameters(), *layer.named_buffers()]:
            transposed = isinstance(layer, nn.Linear) and name == "weight"
            out.append(Entry(ours + prefix + name, here + name, transposed, t))
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) and layer.running_mean is not None:
            out.append(Entry(None, here + "num_batches_tracked", False, None))
    return out


# --- to torch ---


def _torch_dtype(layer) -> torch.dtype:
    return torch.from_numpy(np.empty(0, layer.weight.data.dtype)).dtype


def _to_torch_layer(layer, where: str, at: str) -> torch.nn.Module:
    """The torch.nn layer with layer's hyperparameters (on the meta device: weights come after)."""
    T = torch.nn
    if isinstance(layer, (nn.Sequential, nn.MLP)):
        steps = _steps(layer, where)
        return T.Sequential(
            *(_to_torch_layer(m, where, f"{at}{i}.") for i, (_, m) in enumerate(steps))
        )
    kind = type(_leaf(layer, where, at.rstrip(".")))
    if kind is nn.Linear:
        n_in, n_out = layer.weight.shape
        return T.Linear(n_in, n_out, bias=layer.bias is not None, dtype=_torch_dtype(layer))
    if kind in (nn.Conv1d, nn.Conv2d):
        conv = T.Conv1d if kind is nn.Conv1d else T.Conv2d
        return conv(**layer.config, bias=layer.bias is not None, dtype=_torch_dtype(layer))
    if kind is nn.MaxPool2d:
        return T.MaxPool2d(layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    if kind is nn.AvgPool2d:
        return T.AvgPool2d(
            layer.kernel_size, layer.stride, layer.padding,
            count_include_pad=layer.count_include_pad,
        )  # fmt: skip
    if kind is nn.AdaptiveAvgPool2d:
        return T.AdaptiveAvgPool2d(layer.output_size)
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        bn = T.BatchNorm1d if kind is nn.BatchNorm1d else T.BatchNorm2d
        affine, track = layer.weight is not None, layer.running_mean is not None
        dtype = None  # neither weights nor statistics: nothing has a dtype
        if affine or track:
            dtype = torch.from_numpy((layer.weight if affine else layer.running_mean).data).dtype
        return bn(layer.num_features, layer.eps, layer.momentum, affine, track, dtype=dtype)
    if kind is nn.LayerNorm:
        affine = layer.weight is not None
        return T.LayerNorm(
            layer.normalized_shape, layer.eps, affine, bias=layer.bias is not None,
            dtype=_torch_dtype(layer) if affine else None,
        )  # fmt: skip
    if kind is nn.Embedding:
        return T.Embedding(
            layer.num_embeddings, layer.embedding_dim, layer.padding_idx, dtype=_torch_dtype(layer)
        )
    simple = {
        nn.Dropout: lambda: T.Dropout(layer.p),
        nn.Dropout2d: lambda: T.Dropout2d(layer.p),
        nn.Flatten: lambda: T.Flatten(layer.start_dim, layer.end_dim),
        nn.ReLU: T.ReLU, nn.Tanh: T.Tanh, nn.Sigmoid: T.Sigmoid, nn.Identity: T.Identity,
        nn.GELU: lambda: T.GELU(layer.approximate),
        nn.LeakyReLU: lambda: T.LeakyReLU(layer.negative_slope),
    }  # fmt: skip
    return simple[kind]()


def to_torch_state_dict(model) -> dict[str, torch.Tensor]:
    """model's parameters and buffers under torch's names, in torch's layouts, as new torch
    tensors (of our dtypes): what the torch.nn.Sequential to_torch builds loads (strict=True)."""
    out = {}
    for _, theirs, transposed, t in _entries(model, "to_torch_state_dict"):
        if t is None:  # num_batches_tracked
            out[theirs] = torch.tensor(0, dtype=torch.int64)
            continue
        arr = t.data.T if transposed else t.data
        out[theirs] = torch.from_numpy(np.ascontiguousarray(arr).copy())
    return out


def to_torch(model) -> torch.nn.Sequential:
    """The torch.nn.Sequential that computes what model (an nn.MLP, or an nn.Sequential of library
    layers, nested Sequentials included) computes, with a copy of its weights and running
    statistics, in its train/eval mode. No torch random number is drawn."""
    with torch.device("meta"):  # no initialisation runs on real memory, no torch RNG is consumed
        module = _to_torch_layer(model, "to_torch", "")
    module.load_state_dict(to_torch_state_dict(model), strict=True, assign=True)
    return module.train(model.training)


# --- from torch ---


def _numpy_dtype(t: torch.Tensor, where: str) -> np.dtype:
    if t.dtype not in (torch.float16, torch.float32, torch.float64):
        raise InteropError(f"{where}: weights of dtype {t.dtype} have no numpy counterpart here; "
                           f"convert the module first (module.float())")  # fmt: skip
    return torch.empty(0, dtype=t.dtype).numpy().dtype


def _refuse(where: str, at: str, layer, option: str) -> None:
    raise InteropError(
        f"{where}: layer {at} ({layer!r:.80}) uses {option}, which tinygrad_np's layer does not "
        f"have; rebuild it without"
    )


def _from_torch_layer(layer, rng: np.random.Generator, where: str, at: str) -> nn.Module:
    T = torch.nn
    kind = type(layer)
    if kind is T.Sequential:
        return nn.Sequential(*(_from_torch_layer(m, rng, where, f"{at}.{i}".lstrip("."))
                               for i, m in enumerate(layer)))  # fmt: skip
    if kind is T.Linear:
        dtype = _numpy_dtype(layer.weight, where)
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                         dtype=dtype, rng=rng)  # fmt: skip
    if kind in (T.Conv1d, T.Conv2d):
        if layer.padding_mode != "zeros":
            _refuse(where, at, layer, f"padding_mode={layer.padding_mode!r}")
        conv = nn.Conv1d if kind is T.Conv1d else nn.Conv2d
        return conv(
            layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
            layer.dilation, layer.groups, bias=layer.bias is not None,
            dtype=_numpy_dtype(layer.weight, where), rng=rng,
        )  # fmt: skip
    if kind in (T.MaxPool2d, T.AvgPool2d):
        if layer.ceil_mode:
            _refuse(where, at, layer, "ceil_mode=True")
        if kind is T.MaxPool2d:
            if layer.return_indices:
                _refuse(where, at, layer, "return_indices=True")
            return nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding, layer.dilation)
        if layer.divisor_override is not None:
            _refuse(where, at, layer, f"divisor_override={layer.divisor_override}")
        return nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, layer.count_include_pad)
    if kind is T.AdaptiveAvgPool2d:
        return nn.AdaptiveAvgPool2d(layer.output_size)
    if kind in (T.BatchNorm1d, T.BatchNorm2d):
        if layer.momentum is None:
            _refuse(where, at, layer, "momentum=None (a cumulative average)")
        ref = layer.weight if layer.affine else layer.running_mean
        dtype = np.float32 if ref is None else _numpy_dtype(ref, where)
        bn = nn.BatchNorm1d if kind is T.BatchNorm1d else nn.BatchNorm2d
        return bn(layer.num_features, layer.eps, layer.momentum, layer.affine,
                  layer.track_running_stats, dtype=dtype)  # fmt: skip
    if kind is T.LayerNorm:
        affine = layer.elementwise_affine
        dtype = _numpy_dtype(layer.weight, where) if affine else np.float32
        return nn.LayerNorm(layer.normalized_shape, layer.eps, affine, bias=layer.bias is not None,
                            dtype=dtype)  # fmt: skip
    if kind is T.Embedding:
        if layer.max_norm is not None or layer.scale_grad_by_freq:
            _refuse(where, at, layer, "max_norm or scale_grad_by_freq")
        return nn.Embedding(layer.num_embeddings, layer.embedding_dim, layer.padding_idx,
                            dtype=_numpy_dtype(layer.weight, where), rng=rng)  # fmt: skip
    simple = {
        T.Dropout: lambda: nn.Dropout(layer.p, rng=rng),
        T.Dropout2d: lambda: nn.Dropout2d(layer.p, rng=rng),
        T.Flatten: lambda: nn.Flatten(layer.start_dim, layer.end_dim),
        T.ReLU: nn.ReLU, T.Tanh: nn.Tanh, T.Sigmoid: nn.Sigmoid, T.Identity: nn.Identity,
        T.GELU: lambda: nn.GELU(layer.approximate),
        T.LeakyReLU: lambda: nn.LeakyReLU(layer.negative_slope),
    }  # fmt: skip
    if kind not in simple:
        raise InteropError(
            f"{where}: layer {at} is a torch.nn.{kind.__name__}, which has no tinygrad_np "
            f"counterpart here; supported: Sequential, Linear, Conv1d, Conv2d, MaxPool2d, "
            f"AvgPool2d, AdaptiveAvgPool2d, BatchNorm1d, BatchNorm2d, LayerNorm, Embedding, "
            f"{', '.join(t.__name__ for t in simple)}"
        )
    return simple[kind]()


def from_torch(module: torch.nn.Sequential, *, rng: np.random.Generator | None = None):
    """The nn.Sequential that computes what a torch.nn.Sequential of supported layers computes,
    with a copy of its weights and running statistics, in its train/eval mode. rng (default
    np.random.default_rng(0), as Checkpoint.build_model) is what Dropout layers draw masks from."""
    if type(module) is not torch.nn.Sequential:
        raise InteropError(
            f"from_torch: expected a torch.nn.Sequential, got {type(module).__name__}; for "
            f"another module, build the tinygrad_np model yourself and use "
            f"load_torch_state_dict where its layers line up"
        )
    model = _from_torch_layer(module, rng or np.random.default_rng(0), "from_torch", "")
    load_torch_state_dict(model, module.state_dict())
    return model.train(module.training)


# --- loading a torch state ---


def _check_state(model, shapes: dict[str, tuple[int, ...]], where: str) -> list[tuple]:
    """model's entries, once every name and shape of a state with these torch names and shapes is
    checked; InteropError naming each problem (and the likely cause) before anything changes."""
    entries = _entries(model, where)
    expected = {e.theirs: e for e in entries}
    problems = []
    missing = [k for k, e in expected.items() if k not in shapes and e.ours is not None]
    unexpected = [k for k in shapes if k not in expected]
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        ours = {e.ours for e in entries}
        hint = (
            " (these are tinygrad_np's own names: load such a state with model.load_state_dict())"
            if any(k in ours for k in unexpected) else ""
        )  # fmt: skip
        problems.append(f"unexpected {unexpected}{hint}")
    for name, (_, _, transposed, t) in expected.items():  # an Entry
        if name not in shapes:
            continue
        want = () if t is None else (t.shape[::-1] if transposed else t.shape)
        got = tuple(shapes[name])
        if got != want:
            note = (
                " (the (in, out) layout tinygrad_np stores a Linear weight in; torch's is "
                "(out, in): convert with to_torch_state_dict())"
                if transposed and got == t.shape else ""
            )  # fmt: skip
            problems.append(f"{name} has shape {got} in the state but torch's layout of the "
                            f"model needs {want}{note}")  # fmt: skip
    if problems:
        raise InteropError(
            f"{where}({type(model).__name__}): " + "; ".join(problems) + "; the state must come "
            f"from the torch twin of this model (to_torch(model), or the module from_torch built "
            f"it from)"
        )
    return entries


def _load_arrays(model, arrays: dict[str, np.ndarray], where: str) -> None:
    entries = _check_state(model, {k: np.shape(v) for k, v in arrays.items()}, where)
    for ours, theirs, transposed, t in entries:
        if ours is None:
            continue
        arr = np.asarray(arrays[theirs])
        if arr.dtype.kind != "f":
            raise InteropError(f"{where}: {theirs} holds {arr.dtype}, not floating-point numbers")
        t.data[...] = arr.T if transposed else arr  # into the model's dtype, as load_state_dict


def load_torch_state_dict(model, state_dict) -> None:
    """Copy a torch state dict (torch_module.state_dict(): torch tensors under torch's names, in
    torch's layouts) into model, an nn.MLP or nn.Sequential of library layers, in place. Every
    name and shape is checked before anything changes; numpy arrays are refused, since that is
    what our own state_dict() (Linear weights (in, out)) holds."""
    where = "load_torch_state_dict"
    if not hasattr(state_dict, "items"):
        raise InteropError(f"{where}: expected a dict of torch tensors, got "
                           f"{type(state_dict).__name__}")  # fmt: skip
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            what = "numpy array" if isinstance(value, np.ndarray) else type(value).__name__
            raise InteropError(
                f"{where}: {key!r:.60} is a {what}, not a torch.Tensor; a "
                f"tinygrad_np state_dict() (numpy arrays, Linear weights (in, out)) loads with "
                f"model.load_state_dict(), a torch one is torch_module.state_dict()"
            )
        arrays[key] = value.detach().cpu()
    _load_arrays(model, {k: v.numpy() for k, v in arrays.items()}, where)


# --- safetensors ---


def _need_safetensors(where: str) -> None:
    if safetensors_numpy is None:
        raise ImportError(
            f"{where} needs the safetensors package: pip install 'tinygrad_np[safetensors]' "
            f"(or safetensors itself)"
        )


def is_safetensors(path) -> bool:
    """True if path is a regular file that starts like a safetensors file (an 8-byte header
    length within the file and the limit, then a JSON object); reads at most 9 bytes."""
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= min(SAFETENSORS_HEADER_MAX, size - 8) and head[8:9] == b"{"


def save_safetensors(model, path, metadata: dict[str, str] | None = None) -> None:
    """Write to_torch_state_dict(model) to a safetensors file (metadata format 'pt', plus any
    str -> str metadata), atomically: torch_module.load_state_dict(safetensors.torch.load_file(
    path)) takes it. An existing file at path is replaced only if it is a safetensors file."""
    _need_safetensors("save_safetensors")
    problems = check_outputs([Output("save_safetensors", Path(path), "safetensors file",
                                     is_safetensors)], [])  # fmt: skip
    if problems:
        raise InteropError("; ".join(problems))
    meta = {"format": "pt", **(metadata or {})}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise InteropError(f"save_safetensors: metadata must map str to str, got "
                           f"{json.dumps(meta, default=repr)[:80]}")  # fmt: skip
    arrays = {k: v.numpy() for k, v in to_torch_state_dict(model).items()}
    data = safetensors_numpy.save(arrays, metadata=meta)
    atomic_write(path, lambda f: f.write(data))


def load_safetensors(model, path) -> None:
    """Load a safetensors file of torch's names and layouts (save_safetensors', or torch's
    safetensors.torch.save_file(module.state_dict())) into model, in place. The names and shapes
    are checked from the file's header before any tensor is read."""
    where = "load_safetensors"
    _need_safetensors(where)
    try:
        with safe_open(path, framework="numpy") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            _check_state(model, shapes, where)
            arrays = {k: f.get_tensor(k) for k in shapes}
    except InteropError:
        raise
    except FileNotFoundError:
        raise InteropError(f"{where}: {path}: no such file") from None
    except Exception as e:  # safetensors' SafetensorError and OSErrors for a corrupt file
        raise InteropError(
            f"{where}: {path}: not a readable safetensors file ({type(e).__name__}: {e})"
        ) from None
    _load_arrays(model, arrays, where)
