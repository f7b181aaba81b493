"""tinygrad_np: a small reverse-mode autodiff framework on numpy."""

from . import autograd, data, io, nn, ops, optim
from .autodiff import grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp
from .creation import (
    arange,
    empty,
    eye,
    full,
    full_like,
    linspace,
    normal,
    ones_like,
    randint,
    zeros_like,
)
from .data import DataError, load_mnist
from .engine import AnomalyError, JitError, detect_anomaly, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck, gradgradcheck, numerical_grads
from .io.checkpoint import Checkpoint, CheckpointError, load_checkpoint, restore, save_checkpoint
from .custom import Op, Rule
from .ops import HigherOrderError
from .tensor import Tensor, apply, concatenate, ones, randn, stack, uniform, where, zeros
from .jit import jit  # noqa: E402 - after tensor: the decorator replaces the module's name here

__version__ = "0.1.0"

__all__ = [
    "arange",
    "empty",
    "eye",
    "full",
    "full_like",
    "linspace",
    "normal",
    "ones_like",
    "randint",
    "zeros_like",
    "AnomalyError",
    "apply",
    "autograd",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "value_and_grad",
    "vjp",
    "HigherOrderError",
    "Rule",
    "Checkpoint",
    "CheckpointError",
    "concatenate",
    "data",
    "DataError",
    "detect_anomaly",
    "gradcheck",
    "GradcheckError",
    "gradgradcheck",
    "io",
    "is_grad_enabled",
    "jit",
    "JitError",
    "load_checkpoint",
    "load_mnist",
    "nn",
    "no_grad",
    "numerical_grads",
    "ones",
    "Op",
    "ops",
    "optim",
    "randn",
    "restore",
    "save_checkpoint",
    "stack",
    "Tensor",
    "uniform",
    "where",
    "zeros",
]
