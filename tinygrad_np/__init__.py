"""tinygrad_np: a small reverse-mode autodiff framework on numpy."""

from . import data, nn, ops, optim
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, restore, save_checkpoint
from .data import DataError, load_mnist
from .gradcheck import GradcheckError, gradcheck, numerical_grads
from .ops import Op
from .engine import AnomalyError, detect_anomaly, is_grad_enabled, no_grad
from .tensor import Tensor, concatenate, ones, randn, stack, uniform, where, zeros

__version__ = "0.1.0"

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "DataError",
    "data",
    "load_checkpoint",
    "load_mnist",
    "nn",
    "optim",
    "restore",
    "save_checkpoint",
    "AnomalyError",
    "detect_anomaly",
    "GradcheckError",
    "Op",
    "Tensor",
    "concatenate",
    "gradcheck",
    "is_grad_enabled",
    "no_grad",
    "numerical_grads",
    "ones",
    "ops",
    "randn",
    "stack",
    "uniform",
    "where",
    "zeros",
]
