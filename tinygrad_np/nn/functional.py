"""Activation functions, losses and metrics on Tensors (no parameters, no state)."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..engine import GRAD_ENABLED
from ..tensor import Tensor, record, where

# --- activations ---


def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0 else negative_slope * x (the slope at 0 is negative_slope, as PyTorch)."""
    return where(x.data > 0, x, x * negative_slope)


def gelu(x: Tensor) -> Tensor:
    """The tanh approximation: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    return x * 0.5 * ((x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)).tanh() + x * 0.5


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


ACTIVATIONS = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "gelu": gelu,
    "tanh": tanh,
    "sigmoid": sigmoid,
}


# --- losses and metrics ---


def cross_entropy(logits: Tensor, labels) -> Tensor:
    """Mean negative log-likelihood of integer labels under softmax(logits), fused and stable."""
    if type(labels) is not np.ndarray:
        labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if type(logits) is Tensor and logits.requires_grad and GRAD_ENABLED.get():
        op = ops.CrossEntropy((True,))  # hot: recorded directly, as matmul
        return record(op, op.forward(logits.data, labels=labels), (logits,))
    return Tensor._apply(ops.CrossEntropy, logits, labels=labels)


def nll_loss(log_probs: Tensor, labels) -> Tensor:
    """Mean of -log_probs[i, labels[i]]: cross_entropy = nll_loss(log_softmax(logits))."""
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    return -log_probs[np.arange(len(labels)), labels].mean()


def accuracy(logits, labels) -> float:
    """The fraction of rows whose largest logit is at the label."""
    logits = logits.data if isinstance(logits, Tensor) else np.asarray(logits)
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    return float(np.mean(logits.argmax(axis=-1) == labels))
