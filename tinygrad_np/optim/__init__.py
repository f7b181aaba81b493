"""Optimizers and learning-rate schedules, ``tinygrad_np.optim``: PyTorch's names and rules."""

from .base import GroupValue, Optimizer
from .optimizers import SGD, Adagrad, Adam, Adamax, AdamW, NAdam, RMSprop
from .schedules import (
    CosineLR,
    ExponentialLR,
    LinearLR,
    OneCycleLR,
    ReduceLROnPlateau,
    Schedule,
    SequentialLR,
    StepLR,
)

__all__ = [
    "Optimizer",
    "GroupValue",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adamax",
    "NAdam",
    "Schedule",
    "CosineLR",
    "StepLR",
    "LinearLR",
    "ExponentialLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
]
