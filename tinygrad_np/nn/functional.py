"""Activation functions, losses and metrics on Tensors (no parameters, no state)."""

from __future__ import annotations

import math

import numpy as np

from .. import backend, ops
from ..engine import CAPTURING, GRAD_ENABLED, captured
from ..tensor import Tensor, record, run, where
from .convolution import (  # noqa: F401  (convolution, pooling and batch norm, by name here)
    adaptive_avg_pool2d,
    avg_pool2d,
    batch_norm,
    conv1d,
    conv2d,
    max_pool2d,
)

# --- activations ---


def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0 else negative_slope * x (the slope at 0 is negative_slope, as PyTorch)."""
    return where(x > 0, x, x * negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF, as torch.nn.functional.gelu: approximate="none"
    (the default, as PyTorch's) is the exact x/2 * (1 + erf(x / sqrt(2))); "tanh" is the
    approximation x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), within 5e-4 of it."""
    if approximate == "none":
        return x * 0.5 * ((x * math.sqrt(0.5)).erf() + 1)
    if approximate == "tanh":
        return x * 0.5 * ((x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)).tanh() + x * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_tanh(x: Tensor) -> Tensor:
    """gelu(x, approximate="tanh"): what nn.MLP's activation "gelu" has always computed (its
    checkpoints record the name, so the name keeps its meaning)."""
    return gelu(x, "tanh")


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, stably (exact at 0); x itself where beta x > threshold (as
    PyTorch)."""
    z = x * beta
    r = z.relu()
    soft = (r + (1 + (z - 2 * r).exp()).log()) * (
        1.0 / beta
    )  # log(1+e^z) = relu(z) + log(1+e^-|z|)
    return where(z > threshold, x, soft)


def silu(x: Tensor) -> Tensor:
    """x sigmoid(x) (also called swish)."""
    return x * x.sigmoid()


def mish(x: Tensor) -> Tensor:
    """x tanh(softplus(x))."""
    return x * softplus(x).tanh()


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha (exp(x) - 1); exp sees only x <= 0, so a large x cannot overflow."""
    positive = x > 0
    negative = where(positive, 0.0, x)  # not minimum(x, 0), which halves the gradient at 0
    return where(positive, x, (negative.exp() - 1) * alpha)


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha (exp(x / alpha) - 1)."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    positive = x > 0
    negative = where(positive, 0.0, x)
    return where(positive, x, ((negative * (1.0 / alpha)).exp() - 1) * alpha)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(x: Tensor) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al."""
    return elu(x, SELU_ALPHA) * SELU_SCALE


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clipped to [min_val, max_val]; the gradient passes strictly inside (as PyTorch)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} is above max_val {max_val}")
    inside = (x > min_val) & (x < max_val)
    return where(inside, x, x.detach().clip(min_val, max_val))


def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6)."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x: Tensor) -> Tensor:
    """x / 6 + 1/2 clipped to [0, 1]; the gradient 1/6 strictly inside (-3, 3)."""
    return hardtanh(x * (1 / 6) + 0.5, 0.0, 1.0)


def hardswish(x: Tensor) -> Tensor:
    """x hardsigmoid(x)."""
    return x * hardsigmoid(x)


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return x / (x.abs() + 1)


ACTIVATIONS = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "gelu": gelu_tanh,  # the tanh form: saved MLP checkpoints name it "gelu"
    "tanh": tanh,
    "sigmoid": sigmoid,
}


# --- losses and metrics ---


def cross_entropy(
    input: Tensor,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """The negative log-likelihood of integer class labels (N,) under softmax(input) for logits
    (N, C), as torch.nn.functional.cross_entropy:

        loss_i = (1 - eps) w[y_i] (-logp[i, y_i]) + (eps / C) sum_c w[c] (-logp[i, c])

    with logp = log_softmax(input), eps = label_smoothing and w = weight (class weights, (C,); all
    ones by default; a constant, no gradient). Rows whose label is ignore_index count 0 and are left
    out of the mean. reduction 'mean' divides the sum by sum_i w[y_i] over the rows kept (the row
    count without weights), 'sum' sums, 'none' gives the (N,) losses.

    target may instead hold class probabilities, a float array of input's shape (N, C):
    loss_i = -sum_c w[c] ((1 - eps) p[i, c] + eps / C) logp[i, c], and 'mean' divides by N.

    The plain call (no weight, no smoothing, 'mean', and no label equal to ignore_index) is the
    fused, stable CrossEntropy primitive; the rest is composed from log_softmax.
    """
    labels = target
    if type(labels) is not np.ndarray:
        labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if (
        weight is None
        and label_smoothing == 0.0
        and reduction == "mean"
        and (ignore_index < 0 or ignore_index >= input.shape[-1])  # else the label would count
    ):
        try:
            return _fused_cross_entropy(input, labels)
        except ValueError:  # a bad label, one to ignore, or class probabilities: the composite
            ignored = labels.dtype.kind in "iu" and np.any(labels == ignore_index)
            if not (ignored or labels.dtype.kind == "f"):
                raise
    return _cross_entropy(input, labels, weight, ignore_index, reduction, label_smoothing)


def _fused_cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    if type(logits) is Tensor and logits.requires_grad and GRAD_ENABLED.get():
        op = ops.CrossEntropy((True,))  # hot: recorded directly, as matmul
        if CAPTURING.now is None:  # inline: this path is hot
            return record(op, op.forward(backend, logits.data, labels=labels), (logits,))
        return record(op, run(op, (logits,), labels=labels), (logits,))
    return Tensor._apply(ops.CrossEntropy, logits, labels=labels)


def _cross_entropy(x, labels, weight, ignore_index, reduction, label_smoothing) -> Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if x.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits of shape (batch, classes), got {x.shape}")
    classes = x.shape[1]
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
        if w.shape != (classes,):
            raise ValueError(
                f"cross_entropy: weight must have one entry per class, shape ({classes},), got "
                f"{w.shape}"
            )
        weight = w.astype(x.dtype)  # a constant in the logits' dtype (no upcast)
    # the labels' part as one kernel, so that a jit replay recomputes it from that call's labels
    soft = labels.dtype.kind == "f"
    make = cross_entropy_soft_coefficients if soft else cross_entropy_coefficients
    coef, total = captured(make, labels, x.shape, x.dtype, weight, ignore_index, label_smoothing)
    loss = -(x.log_softmax(-1) * coef).sum(-1)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / total  # 0/0 = nan when every row is ignored, as PyTorch


def cross_entropy_soft_coefficients(probs, shape, dtype, weight, ignore_index, label_smoothing):
    """cross_entropy_coefficients for class probabilities (N, C): coef = w ((1 - eps) p + eps / C),
    total = N (ignore_index does not apply)."""
    probs = np.asarray(probs)
    if probs.shape == tuple(shape[:1]):  # float labels, not probabilities
        raise ValueError(
            f"cross_entropy: expected integer labels of shape ({shape[0]},), got {probs.dtype} "
            f"values; cast them with .astype(np.int64), or give class probabilities of shape "
            f"{tuple(shape)}"
        )
    if probs.shape != tuple(shape):
        raise ValueError(
            f"cross_entropy: class probabilities must have the logits' shape {tuple(shape)}, got "
            f"{probs.shape}; or give integer labels of shape ({shape[0]},)"
        )
    coef = probs.astype(dtype) * np.asarray(1.0 - label_smoothing, dtype)
    if label_smoothing:
        coef += np.asarray(label_smoothing / shape[1], dtype)
    if weight is not None:
        coef *= weight
    return coef, np.asarray(shape[0], dtype)


def cross_entropy_coefficients(labels, shape, dtype, weight, ignore_index, label_smoothing):
    """(coef, total) with cross_entropy's loss_i = -sum_c coef[i, c] logp[i, c]:
    coef[i] = keep_i ((1 - eps) w[y_i] onehot(y_i) + (eps / C) w), keep_i = (y_i != ignore_index),
    and total = sum_i keep_i w[y_i], the mean's divisor (a 0-d array)."""
    n, classes = shape
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"cross_entropy: expected integer labels of shape ({n},), got {labels.dtype} "
            f"{labels.shape}"
        )
    keep = labels != ignore_index
    bad = keep & ((labels < 0) | (labels >= classes))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"cross_entropy: label {int(labels[i])} at position {i} is outside [0, {classes}) "
            f"and is not ignore_index ({ignore_index}); labels must index the {classes} classes"
        )
    w = np.ones(classes, dtype) if weight is None else weight
    rows = np.flatnonzero(keep)
    picked = labels[rows]
    coef = np.zeros(shape, dtype)
    if label_smoothing:
        coef[rows] = w * np.asarray(label_smoothing / classes, dtype)
    coef[rows, picked] += w[picked] * np.asarray(1.0 - label_smoothing, dtype)
    return coef, np.asarray(w[picked].sum(), dtype)


def nll_loss(log_probs: Tensor, labels) -> Tensor:
    """Mean of -log_probs[i, labels[i]]: cross_entropy = nll_loss(log_softmax(logits))."""
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    return -log_probs[np.arange(len(labels)), labels].mean()


def accuracy(logits, labels) -> float:
    """The fraction of rows whose largest logit is at the label."""
    logits = logits.data if isinstance(logits, Tensor) else np.asarray(logits)
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    return float(np.mean(logits.argmax(axis=-1) == labels))


# --- regression and binary losses (composites; PyTorch's names, arguments and reductions) ---

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, name: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _target(name: str, input: Tensor, target) -> Tensor:
    """target as a Tensor of input's shape (constants take input's dtype)."""
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target), dtype=input.dtype)
    if target.shape != input.shape:
        raise ValueError(
            f"{name}: input of shape {input.shape} and target of shape {target.shape}; give a "
            f"target of the input's shape"
        )
    return target


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """(input - target)^2, reduced."""
    d = input - _target("mse_loss", input, target)
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced (the gradient at 0 is 0, as PyTorch)."""
    return _reduce((input - _target("l1_loss", input, target)).abs(), reduction, "l1_loss")


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; d = input - target."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    d = input - _target("smooth_l1_loss", input, target)
    if beta == 0:
        return _reduce(d.abs(), reduction, "smooth_l1_loss")
    a = d.abs()
    return _reduce(
        where(a < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction, "smooth_l1_loss"
    )


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta); d = input - target."""
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    d = input - _target("huber_loss", input, target)
    a = d.abs()
    return _reduce(
        where(a < delta, d * d * 0.5, (a - 0.5 * delta) * delta), reduction, "huber_loss"
    )


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p, each log clamped at -100 (as PyTorch);
    for logits use binary_cross_entropy_with_logits, which is stable."""
    data = input.data
    if data.size and (data.min() < 0 or data.max() > 1):
        raise ValueError(
            f"binary_cross_entropy: input must hold probabilities in [0, 1], got values in "
            f"[{data.min():g}, {data.max():g}]; for logits use binary_cross_entropy_with_logits"
        )
    y = _target("binary_cross_entropy", input, target)
    loss = -(y * input.log().maximum(-100.0) + (1 - y) * (1 - input).log().maximum(-100.0))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(
    input: Tensor, target, weight=None, reduction: str = "mean", pos_weight=None
) -> Tensor:
    """binary_cross_entropy(sigmoid(x), y), computed stably for any logits x:
    (1 - y) x + w_y softplus(-x) with w_y = 1 + (pos_weight - 1) y, and
    softplus(-x) = relu(x) - x + log(1 + exp(x - 2 relu(x))): exact at x = 0 too."""
    y = _target("binary_cross_entropy_with_logits", input, target)
    r = input.relu()
    softplus_neg = r - input + (1 + (input - 2 * r).exp()).log()
    if pos_weight is not None:
        softplus_neg = softplus_neg * (1 + (pos_weight - 1) * y)
    loss = (1 - y) * input + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input: Tensor, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Pointwise target (log target - input) for log-probabilities input (0 where target is 0),
    or exp(target) (target - input) with log_target; reduction also 'batchmean' (sum / batch)."""
    t = _target("kl_div", input, target)
    if log_target:
        loss = t.exp() * (t - input)
    else:
        safe = where(t > 0, t, 1.0)  # target log target is 0 at target = 0
        loss = t * safe.log() - t * input
    if reduction == "batchmean":
        return loss.sum() * (1.0 / (input.shape[0] if input.ndim else 1))
    return _reduce(loss, reduction, "kl_div")


def one_hot(labels, num_classes: int = -1) -> Tensor:
    """An int64 tensor of labels.shape + (num_classes,), 1 at each label (PyTorch's one_hot)."""
    labels = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got {labels.dtype}")
    if num_classes < 0:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must be in [0, {num_classes}), got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return Tensor(np.eye(num_classes, dtype=np.int64)[labels], dtype=np.int64)


# --- dropout, normalisation, embedding ---


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype) -> np.ndarray:
    """A fresh mask: 1/(1-p) where kept, 0 where dropped (a jit replay draws it anew each call)."""
    keep = rng.random(shape, dtype=np.float32) >= p
    return (keep * (1.0 / (1.0 - p))).astype(dtype)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, *, rng=None) -> Tensor:
    """Zero each element with probability p while training, scaling the rest by 1/(1-p); the
    input itself when not training or p is 0. rng: the np.random.Generator the mask is drawn
    from (required when a mask is drawn)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return input
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"dropout: pass rng=np.random.default_rng(seed) (an explicit np.random.Generator) "
            f"to draw the mask, got {type(rng).__name__}"
        )
    return input * captured(dropout_mask, rng, input.shape, p, input.dtype, effect=True)


def _normalized_shape(normalized_shape, name: str) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    shape = tuple(int(n) for n in normalized_shape)
    if not shape or min(shape) < 1:
        raise ValueError(
            f"{name}: normalized_shape must be positive sizes, got {normalized_shape!r}"
        )
    return shape


def layer_norm(
    input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5
) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing normalized_shape
    dimensions (var the biased variance, as torch.nn.functional.layer_norm)."""
    shape = _normalized_shape(normalized_shape, "layer_norm")
    k = len(shape)
    if input.shape[input.ndim - k :] != shape or input.ndim < k:
        raise ValueError(
            f"layer_norm: input of shape {input.shape} does not end in normalized_shape {shape}"
        )
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"layer_norm: {what} has shape {tuple(t.shape)}, expected {shape}")
    axes = tuple(range(input.ndim - k, input.ndim))
    centred = input - input.mean(axes, keepdims=True)
    var = (centred * centred).mean(axes, keepdims=True)
    out = centred * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def embedding(input, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """weight[input]: the rows of weight (num_embeddings, dim) at integer ids of any shape, giving
    input.shape + (dim,). The gradient adds up at repeated ids (Index, whose vjp is Scatter);
    the row at padding_idx gets no gradient (its value is still returned, as PyTorch)."""
    ids = ids_array(input, weight.shape[0], "embedding")
    if padding_idx is None:
        return weight[ids]
    keep = captured(_not_padding, ids, padding_idx)  # a kernel: a jit replay reads that call's ids
    return where(keep, weight[ids], weight.detach()[ids])


def _not_padding(ids: np.ndarray, padding_idx: int) -> np.ndarray:
    return (ids != padding_idx)[..., None]


def ids_array(input, num_embeddings: int, name: str) -> np.ndarray:
    """input (a Tensor, an array or a list of ints) as an integer array of ids in
    [0, num_embeddings), or an error naming the caller, the first bad id and where it is."""
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    captured(check_ids, ids, num_embeddings, name, effect=True)  # checked again at every replay
    return ids


def check_ids(ids: np.ndarray, num_embeddings: int, name: str) -> None:
    """Raise the errors ids_array describes."""
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: ids must be integers, got {ids.dtype}; convert with .astype(np.int64)"
        )
    bad = (ids < 0) | (ids >= num_embeddings)
    if bad.any():
        where_bad = tuple(int(i) for i in np.argwhere(bad)[0])
        raise IndexError(
            f"{name}: id {int(ids[where_bad])} at position {where_bad} is outside [0, "
            f"{num_embeddings}); ids must index the {num_embeddings} embeddings"
        )
