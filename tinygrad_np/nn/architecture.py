"""A Sequential of library layers as plain JSON data, and back.

describe(model) records an nn.Sequential (nested Sequentials included) as {"layers": [...]}, one
dict per layer: {"type": "Linear", "n_in": 784, ...}, holding the constructor's arguments and the
dtype; state_shapes(record) gives the parameter and buffer shapes the record implies, without
building anything (so a checkpoint can check a record against its stored arrays before a single
weight is allocated); build(record, rng) constructs the layers (fresh weights: load a state into
them). A layer type not in LAYERS, a subclass of one, or an option a record cannot hold raises
ArchitectureError naming the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import (
    GELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dropout,
    Dropout2d,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from .module import Module

DTYPES = ("float16", "float32", "float64")


class ArchitectureError(ValueError):
    """A model that a record cannot describe, or a record that does not describe a model."""


def _dtype(layer: Module) -> str:
    """The layer's dtype: its weight's, else its running statistics' (batch norm without affine),
    else float32 (nothing stored, so nothing to keep)."""
    for name in ("weight", "running_mean"):
        t = getattr(layer, name, None)
        if t is not None:
            return t.data.dtype.name
    return "float32"


def _tuples(value):
    """JSON gives lists where the layer was given tuples: turn them back (kernel sizes, strides)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _conv(layer) -> dict:
    return {**layer.config, "bias": layer.bias is not None, "dtype": _dtype(layer)}


def _batch_norm(layer) -> dict:
    return {
        "num_features": layer.num_features, "eps": layer.eps, "momentum": layer.momentum,
        "affine": layer.weight is not None,
        "track_running_stats": layer.running_mean is not None, "dtype": _dtype(layer),
    }  # fmt: skip


def _layer_norm(layer) -> dict:
    return {
        "normalized_shape": list(layer.normalized_shape), "eps": layer.eps,
        "elementwise_affine": layer.weight is not None, "bias": layer.bias is not None,
        "dtype": _dtype(layer),
    }  # fmt: skip


def _fields(*names: str) -> Callable[[Module], dict]:
    """A describer reading the constructor's arguments off attributes of the same names."""
    return lambda layer: {n: getattr(layer, n) for n in names}


def _no_state(spec: dict) -> dict:
    return {}


def _linear_shapes(s: dict) -> dict:
    n_in, n_out = _size(s, "n_in"), _size(s, "n_out")
    return {"weight": (n_in, n_out), **({"bias": (n_out,)} if s.get("bias", True) else {})}


def _conv_shapes(s: dict) -> dict:
    c_in, c_out, groups = _size(s, "in_channels"), _size(s, "out_channels"), _size(s, "groups")
    kernel = s.get("kernel_size")
    if not isinstance(kernel, (list, tuple)) or not all(type(k) is int and k >= 1 for k in kernel):
        raise ArchitectureError(f"kernel_size {kernel!r:.40} is not a list of positive ints")
    weight = (c_out, c_in // groups, *kernel)
    return {"weight": weight, **({"bias": (c_out,)} if s.get("bias", True) else {})}


def _batch_norm_shapes(s: dict) -> dict:
    n = (_size(s, "num_features"),)
    out = {"weight": n, "bias": n} if s.get("affine", True) else {}
    if s.get("track_running_stats", True):
        out.update(running_mean=n, running_var=n)
    return out


def _layer_norm_shapes(s: dict) -> dict:
    shape = s.get("normalized_shape")
    if not isinstance(shape, (list, tuple)) or not all(type(n) is int and n >= 1 for n in shape):
        raise ArchitectureError(f"normalized_shape {shape!r:.40} is not a list of positive ints")
    if not s.get("elementwise_affine", True):
        return {}
    return {"weight": tuple(shape), **({"bias": tuple(shape)} if s.get("bias", True) else {})}


def _embedding_shapes(s: dict) -> dict:
    return {"weight": (_size(s, "num_embeddings"), _size(s, "embedding_dim"))}


def _size(spec: dict, key: str) -> int:
    value = spec.get(key)
    if type(value) is not int or value < 1:
        raise ArchitectureError(f"{key} is {value!r:.40}, not a positive int")
    return value


@dataclass(frozen=True)
class Kind:
    """How one layer type is recorded (describe), sized (shapes) and rebuilt (build)."""

    cls: type
    describe: Callable[[Module], dict]
    shapes: Callable[[dict], dict]
    build: Callable[[dict, np.random.Generator], Module]


def _with_dtype(cls, *, rng_arg: bool):
    def build(args: dict, rng: np.random.Generator) -> Module:
        dtype = args.pop("dtype", "float32")
        if dtype not in DTYPES:
            raise ArchitectureError(f"dtype {dtype!r:.20} is not one of {DTYPES}")
        extra = {"rng": rng} if rng_arg else {}
        return cls(**args, dtype=np.dtype(dtype), **extra)

    return build


def _plain(cls, *, rng_arg: bool = False):
    return lambda args, rng: cls(**args, rng=rng) if rng_arg else cls(**args)


LAYERS = {  # type name -> Kind; only these exact classes are recorded
    k.cls.__name__: k
    for k in (
        Kind(Linear, lambda m: {
            "n_in": m.weight.shape[0], "n_out": m.weight.shape[1], "bias": m.bias is not None,
            "dtype": _dtype(m),
        }, _linear_shapes, _with_dtype(Linear, rng_arg=True)),  # fmt: skip
        Kind(Conv1d, _conv, _conv_shapes, _with_dtype(Conv1d, rng_arg=True)),
        Kind(Conv2d, _conv, _conv_shapes, _with_dtype(Conv2d, rng_arg=True)),
        Kind(MaxPool2d, _fields("kernel_size", "stride", "padding", "dilation"), _no_state,
             _plain(MaxPool2d)),  # fmt: skip
        Kind(AvgPool2d, _fields("kernel_size", "stride", "padding", "count_include_pad"),
             _no_state, _plain(AvgPool2d)),  # fmt: skip
        Kind(AdaptiveAvgPool2d, _fields("output_size"), _no_state, _plain(AdaptiveAvgPool2d)),
        Kind(BatchNorm1d, _batch_norm, _batch_norm_shapes, _with_dtype(BatchNorm1d, rng_arg=False)),
        Kind(BatchNorm2d, _batch_norm, _batch_norm_shapes, _with_dtype(BatchNorm2d, rng_arg=False)),
        Kind(LayerNorm, _layer_norm, _layer_norm_shapes, _with_dtype(LayerNorm, rng_arg=False)),
        Kind(Embedding, lambda m: {
            "num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim,
            "padding_idx": m.padding_idx, "dtype": _dtype(m),
        }, _embedding_shapes, _with_dtype(Embedding, rng_arg=True)),  # fmt: skip
        Kind(Dropout, _fields("p"), _no_state, _plain(Dropout, rng_arg=True)),
        Kind(Dropout2d, _fields("p"), _no_state, _plain(Dropout2d, rng_arg=True)),
        Kind(Flatten, _fields("start_dim", "end_dim"), _no_state, _plain(Flatten)),
        Kind(ReLU, _fields(), _no_state, _plain(ReLU)),
        Kind(Tanh, _fields(), _no_state, _plain(Tanh)),
        Kind(Sigmoid, _fields(), _no_state, _plain(Sigmoid)),
        Kind(Identity, _fields(), _no_state, _plain(Identity)),
        Kind(GELU, _fields("approximate"), _no_state, _plain(GELU)),
        Kind(LeakyReLU, _fields("negative_slope"), _no_state, _plain(LeakyReLU)),
    )
}


def describe(model: Sequential) -> dict:
    """{"layers": [one dict per layer]} for a Sequential of the layers in LAYERS (and nested
    Sequentials); ArchitectureError naming the first layer that cannot be recorded."""
    layers = []
    for i, layer in enumerate(model.layers):
        if type(layer) is Sequential:
            layers.append({"type": "Sequential", **describe(layer)})
            continue
        kind = LAYERS.get(type(layer).__name__)
        if kind is None or type(layer) is not kind.cls:
            raise ArchitectureError(
                f"layer {i} ({type(layer).__name__}) is not one of the library layers a record "
                f"can rebuild ({', '.join(LAYERS)}, Sequential)"
            )
        layers.append({"type": type(layer).__name__, **_jsonable(kind.describe(layer))})
    return {"layers": layers}


def _jsonable(value):
    """numpy numbers as Python numbers and tuples as lists, so json.dumps takes the record."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def _specs(record) -> list[dict]:
    layers = record.get("layers") if isinstance(record, dict) else None
    if not isinstance(layers, list) or not all(
        isinstance(s, dict) and isinstance(s.get("type"), str) for s in layers
    ):
        raise ArchitectureError(f"{record!r:.80} is not a dict with a list of layer records")
    for i, spec in enumerate(layers):
        if spec["type"] != "Sequential" and spec["type"] not in LAYERS:
            raise ArchitectureError(f"layer {i} has unknown type {spec['type']!r:.40}")
    return layers


def state_shapes(record, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """name -> shape of every parameter and buffer the Sequential that record describes holds
    (names as Sequential gives them: 'layers.0.weight'); nothing is built."""
    out = {}
    for i, spec in enumerate(_specs(record)):
        here = f"{prefix}layers.{i}."
        try:
            if spec["type"] == "Sequential":
                out.update(state_shapes(spec, here))
                continue
            shapes = LAYERS[spec["type"]].shapes(spec)
        except ArchitectureError as e:
            raise ArchitectureError(f"layer {i} ({spec['type']}): {e}") from None
        out.update({here + name: shape for name, shape in shapes.items()})
    return out


def build(record, rng: np.random.Generator) -> Sequential:
    """The Sequential record describes, with fresh weights drawn from rng."""
    layers = []
    for i, spec in enumerate(_specs(record)):
        if spec["type"] == "Sequential":
            layers.append(build(spec, rng))
            continue
        args = {k: _tuples(v) for k, v in spec.items() if k != "type"}
        try:
            layers.append(LAYERS[spec["type"]].build(args, rng))
        except (TypeError, ValueError) as e:
            raise ArchitectureError(f"layer {i} ({spec['type']}): {e}") from None
    return Sequential(*layers)
