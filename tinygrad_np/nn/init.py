"""Parameter initialisation, with PyTorch's names and formulas (torch.nn.init).

Each function writes into the tensor's array in place, in the tensor's dtype, and returns the
tensor. The random ones take an explicit ``rng=`` np.random.Generator (no global state); values
are drawn in float64 and rounded once into the tensor's dtype.

Fans follow PyTorch's layout, a weight of shape (out, in, *kernel): fan_in = shape[1] *
prod(kernel), fan_out = shape[0] * prod(kernel). nn.Linear stores its weight the other way round,
(in, out); pass ``transposed=True`` for such a weight (fan_in is then shape[0]).
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor

NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)  # fmt: skip


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain): 1 for linear,
    convolutions and sigmoid; 5/3 for tanh; sqrt(2) for relu; sqrt(2 / (1 + slope^2)) for
    leaky_relu (param: the negative slope, default 0.01); 3/4 for selu."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"calculate_gain: unknown nonlinearity {nonlinearity!r}; choose one of {NONLINEARITIES}"
        )
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    return 1.0


def calculate_fans(shape, transposed: bool = False, name: str = "init") -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape (see the module docstring for the layout)."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            f"{name}: fan in and fan out need a tensor of at least 2 dimensions, got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    return (fan_out, fan_in) if transposed else (fan_in, fan_out)


def _target(tensor, name: str, rng=None, random: bool = True) -> np.ndarray:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
    if random and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name}: pass rng=np.random.default_rng(seed) (an explicit np.random.Generator), "
            f"got {type(rng).__name__}"
        )
    if random and tensor.dtype.kind != "f":
        raise TypeError(f"{name}: random values need a float tensor, got {tensor.dtype}")
    return tensor.data


def _write(tensor: Tensor, values) -> Tensor:
    tensor.data[...] = values  # in place, rounded once into the tensor's dtype
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, *, rng: np.random.Generator) -> Tensor:
    """Values drawn uniformly from [a, b)."""
    data = _target(tensor, "uniform_", rng)
    if not a <= b:
        raise ValueError(f"uniform_: the bounds must satisfy a <= b, got a={a}, b={b}")
    return _write(tensor, rng.uniform(a, b, data.shape))


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, *, rng: np.random.Generator
) -> Tensor:
    """Values drawn from N(mean, std^2)."""
    data = _target(tensor, "normal_", rng)
    if not std >= 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _write(tensor, rng.standard_normal(data.shape) * std + mean)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Every element val."""
    _target(tensor, "constant_", random=False)
    return _write(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    _target(tensor, "zeros_", random=False)
    return _write(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    _target(tensor, "ones_", random=False)
    return _write(tensor, 1)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, *, rng: np.random.Generator, transposed: bool = False
) -> Tensor:
    """Glorot & Bengio (2010): U(-a, a), a = gain sqrt(6 / (fan_in + fan_out))."""
    data = _target(tensor, "xavier_uniform_", rng)
    fan_in, fan_out = calculate_fans(data.shape, transposed, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _write(tensor, rng.uniform(-bound, bound, data.shape))


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, *, rng: np.random.Generator, transposed: bool = False
) -> Tensor:
    """Glorot & Bengio (2010): N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out))."""
    data = _target(tensor, "xavier_normal_", rng)
    fan_in, fan_out = calculate_fans(data.shape, transposed, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _write(tensor, rng.standard_normal(data.shape) * std)


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_


def _kaiming_std(shape, a, mode, nonlinearity, transposed, name) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fans(shape, transposed, name)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"{name}: a tensor of shape {tuple(shape)} has no elements to fan over")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: np.random.Generator,
    transposed: bool = False,
) -> Tensor:
    """He et al. (2015): U(-b, b), b = sqrt(3) gain / sqrt(fan), gain = calculate_gain(
    nonlinearity, a), fan the fan_in or fan_out (mode)."""
    data = _target(tensor, "kaiming_uniform_", rng)
    std = _kaiming_std(data.shape, a, mode, nonlinearity, transposed, "kaiming_uniform_")
    bound = math.sqrt(3.0) * std
    return _write(tensor, rng.uniform(-bound, bound, data.shape))


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: np.random.Generator,
    transposed: bool = False,
) -> Tensor:
    """He et al. (2015): N(0, std^2), std = gain / sqrt(fan) (see kaiming_uniform_)."""
    data = _target(tensor, "kaiming_normal_", rng)
    std = _kaiming_std(data.shape, a, mode, nonlinearity, transposed, "kaiming_normal_")
    return _write(tensor, rng.standard_normal(data.shape) * std)


def orthogonal_(tensor: Tensor, gain: float = 1.0, *, rng: np.random.Generator) -> Tensor:
    """Saxe et al. (2013): the tensor, viewed as (shape[0], rest), gets orthonormal rows (or
    columns, whichever are fewer) times gain: Q of the QR of a standard normal matrix, its
    columns' signs fixed by R's diagonal so that Q is uniformly (Haar) distributed."""
    data = _target(tensor, "orthogonal_", rng)
    if data.ndim < 2:
        raise ValueError(
            f"orthogonal_: needs a tensor of at least 2 dimensions, got shape {data.shape}"
        )
    rows = data.shape[0]
    cols = data.size // rows if rows else 0
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)  # sign(diag(r)), with 0 counted as +1
    if rows < cols:
        q = q.T
    return _write(tensor, (q * gain).reshape(data.shape))
