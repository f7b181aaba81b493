"""Layers as plain tensor expressions: Module, Linear, Sequential, activations, Dropout, MLP,
and the convolutional layers (Conv1d, Conv2d, pooling, BatchNorm1d/2d, Dropout2d).

Losses and activation functions live in nn.functional. Randomness comes from an explicit
np.random.Generator given to each layer that needs it.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine import captured
from ..tensor import Tensor
from . import functional, init, utils  # noqa: F401 - nn.functional, nn.init, nn.utils (PyTorch)
from .module import Module
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
from .functional import (
    ACTIVATIONS,
    adaptive_avg_pool2d,
    avg_pool2d,
    batch_norm,
    conv1d,
    conv2d,
    dropout,
    dropout_mask,
    embedding,
    ids_array,
    layer_norm,
    gelu,
    leaky_relu,
    max_pool2d,
    relu,
    sigmoid,
    tanh,
)


HE_INIT = ("relu", "leaky_relu", "gelu")  # the relu family: He (Kaiming) normal, gain sqrt(2)
XAVIER_INIT = ("tanh", "sigmoid", "linear")  # Xavier (Glorot) normal, gain calculate_gain(...)


def _normal_weight(rng: np.random.Generator, n_in: int, n_out: int, std: float, dtype):
    """standard_normal((n_in, n_out)) * std in dtype, drawn in blocks of rows: the same values as
    one float64 draw, without a float64 copy of the whole matrix at the peak."""
    out = np.empty((n_in, n_out), dtype)
    rows = max(1, (1 << 20) // max(n_out, 1))  # about 8 MB of float64 per block
    for start in range(0, n_in, rows):
        block = out[start : start + rows]
        block[...] = rng.standard_normal(block.shape) * std
    return out


def init_std(n_in: int, n_out: int, nonlinearity: str) -> float:
    """The weight std Linear draws with for the activation that follows it: He normal,
    sqrt(2 / n_in), for the relu family (relu, leaky_relu, gelu: leaky_relu's 0.01 slope changes
    the gain by 0.005%, so it is not applied); Xavier normal, gain sqrt(2 / (n_in + n_out)) with
    init.calculate_gain's gain (tanh 5/3, sigmoid and linear 1), for the others."""
    if nonlinearity in HE_INIT:
        return math.sqrt(2.0 / n_in)
    if nonlinearity in XAVIER_INIT:
        return init.calculate_gain(nonlinearity) * math.sqrt(2.0 / (n_in + n_out))
    raise ValueError(
        f"Linear: unknown nonlinearity {nonlinearity!r}; choose one of {HE_INIT + XAVIER_INIT}"
    )


class Linear(Module):
    """y = x @ weight + bias, weight of shape (n_in, n_out) drawn from N(0, std^2) with the std
    init_std gives for the nonlinearity that follows (He for relu, the default; Xavier for tanh,
    sigmoid, linear); bias zeros."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        rng: np.random.Generator,
        bias: bool = True,
        dtype=np.float32,
        nonlinearity: str = "relu",
    ):
        if n_in < 1 or n_out < 1:
            raise ValueError(f"Linear: sizes must be positive, got ({n_in}, {n_out})")
        std = init_std(n_in, n_out, nonlinearity)
        self.weight = Tensor(
            _normal_weight(rng, n_in, n_out, std, dtype), requires_grad=True, dtype=dtype
        )
        self.bias = Tensor(np.zeros(n_out), requires_grad=True, dtype=dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight + self.bias if self.bias is not None else x @ self.weight

    def __repr__(self) -> str:
        return (
            f"Linear({self.weight.shape[0]}, {self.weight.shape[1]}, bias={self.bias is not None})"
        )


class Sequential(Module):
    """Layers applied in order."""

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"


class ModuleList(Module):
    """A list of modules whose parameters are the module's, named by position ('0.weight', ...)."""

    def __init__(self, modules=()):
        self.items = []
        self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: entries must be Modules, got {type(module).__name__}")
        self.items.append(module)
        return self

    def extend(self, modules) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def _entries(self):
        return ((str(i), module) for i, module in enumerate(self.items))

    def __getitem__(self, i):
        return ModuleList(self.items[i]) if isinstance(i, slice) else self.items[i]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __repr__(self) -> str:
        return "ModuleList(" + ", ".join(map(repr, self.items)) + ")"


class ModuleDict(Module):
    """A dict of modules whose parameters are the module's, named by key ('encoder.weight', ...)."""

    def __init__(self, modules=None):
        self.items = {}
        for key, module in dict(modules or {}).items():
            self[key] = module

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not isinstance(module, Module):
            raise TypeError(
                f"ModuleDict: entries are str -> Module, got {type(key).__name__} -> "
                f"{type(module).__name__}"
            )
        self.items[key] = module

    def _entries(self):
        return iter(self.items.items())

    def __getitem__(self, key: str) -> Module:
        return self.items[key]

    def __contains__(self, key) -> bool:
        return key in self.items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def keys(self):
        return self.items.keys()

    def values(self):
        return self.items.values()

    def __repr__(self) -> str:
        return "ModuleDict(" + ", ".join(f"{k}: {m!r}" for k, m in self.items.items()) + ")"


class Identity(Module):
    """Returns its input."""

    def forward(self, x):
        return x


class Flatten(Module):
    """x.flatten(start_dim, end_dim); by default every dimension but the batch (as PyTorch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def __repr__(self) -> str:
        return f"Flatten({self.start_dim}, {self.end_dim})"


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim), drawn from N(0, 1) as PyTorch's;
    forward(ids) gives ids.shape + (embedding_dim,) for integer ids (a Tensor, an array or a
    list). The row at padding_idx starts at zero and gets no gradient."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        rng: np.random.Generator,
        dtype=np.float32,
    ):
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(
                f"Embedding: sizes must be positive, got ({num_embeddings}, {embedding_dim})"
            )
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be in [-{num_embeddings}, "
                    f"{num_embeddings})"
                )
            padding_idx %= num_embeddings  # a negative index counts from the end, as PyTorch
        self.num_embeddings, self.embedding_dim, self.padding_idx = (
            num_embeddings, embedding_dim, padding_idx,
        )  # fmt: skip
        table = rng.standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        if padding_idx is not None:
            table[padding_idx] = 0
        self.weight = Tensor(table, requires_grad=True, dtype=dtype)

    def forward(self, ids) -> Tensor:
        ids = ids_array(ids, self.num_embeddings, repr(self))  # the error names this layer
        return embedding(ids, self.weight, self.padding_idx)

    def __repr__(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{pad})"


class LayerNorm(Module):
    """F.layer_norm over the trailing normalized_shape dimensions, with a learned weight (ones)
    and bias (zeros) of that shape when elementwise_affine (bias=False: no bias)."""

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype=np.float32,
    ):
        single = isinstance(normalized_shape, (int, np.integer))
        shape = (int(normalized_shape),) if single else tuple(int(n) for n in normalized_shape)
        if not shape or min(shape) < 1:
            raise ValueError(
                f"LayerNorm: normalized_shape must be positive sizes, got {normalized_shape!r}"
            )
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be > 0, got {eps}")
        self.normalized_shape, self.eps = shape, eps
        affine = elementwise_affine
        self.weight = Tensor(np.ones(shape), requires_grad=True, dtype=dtype) if affine else None
        with_bias = affine and bias
        self.bias = Tensor(np.zeros(shape), requires_grad=True, dtype=dtype) if with_bias else None

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def __repr__(self) -> str:
        return (
            f"LayerNorm({self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.weight is not None}, bias={self.bias is not None})"
        )


class _Activation(Module):
    fn = staticmethod(relu)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    fn = staticmethod(relu)


class Tanh(_Activation):
    fn = staticmethod(tanh)


class Sigmoid(_Activation):
    fn = staticmethod(sigmoid)


class GELU(Module):
    """gelu(x, approximate): "none" (exact, the default, as torch.nn.GELU) or "tanh"."""

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)

    def __repr__(self) -> str:
        return f"GELU(approximate={self.approximate!r})"


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return leaky_relu(x, self.negative_slope)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.negative_slope})"


class Dropout(Module):
    """Zero each element with probability p while training, scaling the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p, self.rng = p, rng

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, rng=self.rng)

    def __repr__(self) -> str:
        return f"Dropout({self.p})"


def _uniform(rng: np.random.Generator, shape, bound: float, dtype) -> Tensor:
    return Tensor(rng.uniform(-bound, bound, shape).astype(dtype), requires_grad=True, dtype=dtype)


class _ConvNd(Module):
    """Weight (out_channels, in_channels/groups, *kernel) and bias (out_channels,), both drawn
    uniformly from +-1/sqrt(fan_in) (fan_in = in_channels/groups * prod(kernel)): PyTorch's
    default initialisation."""

    dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        *,
        rng: np.random.Generator,
        dtype=np.float32,
    ):
        name = type(self).__name__
        kernel = (kernel_size,) * self.dims if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(kernel) != self.dims or min(kernel) < 1:
            raise ValueError(f"{name}: kernel_size must be a positive int or {self.dims} of them, got {kernel_size!r}")
        if min(in_channels, out_channels, groups) < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels {in_channels} and out_channels {out_channels} must be "
                f"positive and divide by groups {groups}"
            )
        self.config = {
            "in_channels": in_channels, "out_channels": out_channels, "kernel_size": kernel,
            "stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
        }  # fmt: skip
        fan_in = in_channels // groups * math.prod(kernel)
        bound = 1.0 / math.sqrt(fan_in)
        shape = (out_channels, in_channels // groups, *kernel)
        self.weight = _uniform(rng, shape, bound, dtype)
        self.bias = _uniform(rng, (out_channels,), bound, dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        c = self.config
        conv = conv2d if self.dims == 2 else conv1d
        return conv(x, self.weight, self.bias, c["stride"], c["padding"], c["dilation"], c["groups"])

    def __repr__(self) -> str:
        c = self.config
        return (
            f"{type(self).__name__}({c['in_channels']}, {c['out_channels']}, "
            f"kernel_size={c['kernel_size']}, stride={c['stride']}, padding={c['padding']!r}, "
            f"dilation={c['dilation']}, groups={c['groups']}, bias={self.bias is not None})"
        )


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) of (N, C, H, W): F.conv2d with this layer's weights."""

    dims = 2


class Conv1d(_ConvNd):
    """1-D convolution (cross-correlation) of (N, C, L): F.conv1d with this layer's weights."""

    dims = 1


class MaxPool2d(Module):
    """F.max_pool2d: the maximum of each window (the gradient to the first maximum, as PyTorch)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation = dilation

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def __repr__(self) -> str:
        return f"MaxPool2d({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class AvgPool2d(Module):
    """F.avg_pool2d: the mean of each window."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, count_include_pad=self.count_include_pad
        )

    def __repr__(self) -> str:
        return f"AvgPool2d({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class AdaptiveAvgPool2d(Module):
    """F.adaptive_avg_pool2d to output_size (1: global average pooling)."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def __repr__(self) -> str:
        return f"AdaptiveAvgPool2d({self.output_size})"


class _BatchNorm(Module):
    """Per-channel normalisation (F.batch_norm): batch statistics while training, which move the
    running statistics by momentum; the running statistics in eval(). weight starts at ones and
    bias at zeros, running_mean at zeros and running_var at ones, as PyTorch."""

    _buffer_names = ("running_mean", "running_var")
    ndims = (2, 3, 4)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype=np.float32,
    ):
        name = type(self).__name__
        if num_features < 1 or not eps > 0 or not 0.0 <= momentum <= 1.0:
            raise ValueError(
                f"{name}: num_features must be positive, eps > 0 and momentum in [0, 1], got "
                f"{num_features}, {eps}, {momentum}"
            )
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Tensor(np.ones(num_features), requires_grad=True, dtype=dtype) if affine else None
        self.bias = Tensor(np.zeros(num_features), requires_grad=True, dtype=dtype) if affine else None
        if not track_running_stats:
            self._buffer_names = ()
        self.running_mean = Tensor(np.zeros(num_features), dtype=dtype) if track_running_stats else None
        self.running_var = Tensor(np.ones(num_features), dtype=dtype) if track_running_stats else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self.ndims:
            raise ValueError(
                f"{type(self).__name__}: expected input with {' or '.join(map(str, self.ndims))} "
                f"dimensions (N, C, ...), got {x.shape}"
            )
        training = self.training or self.running_mean is None
        return batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training,
            self.momentum, self.eps,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_features}, eps={self.eps}, momentum={self.momentum})"


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L)."""

    ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W)."""

    ndims = (4,)


class Dropout2d(Module):
    """Zero whole channels of (N, C, H, W) with probability p while training, scaling the rest by
    1/(1-p) (one draw per sample and channel, as PyTorch)."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout2d: p must be in [0, 1), got {p}")
        self.p, self.rng = p, rng

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.ndim not in (3, 4):
            raise ValueError(f"Dropout2d: expected (N, C, H, W) or (C, H, W), got {x.shape}")
        shape = x.shape[:-2] + (1, 1)
        return x * captured(dropout_mask, self.rng, shape, self.p, x.dtype, effect=True)

    def __repr__(self) -> str:
        return f"Dropout2d({self.p})"


class MLP(Module):
    """A multilayer perceptron: sizes [n_in, hidden..., n_out], an activation and dropout between layers."""

    def __init__(
        self, sizes, activation: str = "relu", dropout: float = 0.0, *, rng: np.random.Generator
    ):
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(
                f"MLP: sizes must be at least two positive integers (inputs ... "
                f"outputs), got {sizes}"
            )
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"MLP: unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}"
            )
        self.config = {"sizes": sizes, "activation": activation, "dropout": float(dropout)}
        self.linears = [  # He init for the relu family, Xavier for tanh and sigmoid (init_std)
            Linear(a, b, rng=rng, nonlinearity=activation) for a, b in zip(sizes[:-1], sizes[1:])
        ]
        self.activation = ACTIVATIONS[activation]
        self.dropout = Dropout(dropout, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        *hidden, last = self.linears
        drop = self.dropout if self.dropout.p and self.dropout.training else None
        for layer in hidden:
            x = self.activation(x @ layer.weight + layer.bias)
            if drop is not None:
                x = drop(x)
        return x @ last.weight + last.bias

    def __repr__(self) -> str:
        c = self.config
        return f"MLP({c['sizes']}, activation={c['activation']!r}, dropout={c['dropout']})"
