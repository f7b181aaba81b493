"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules. They update p.data in place, no graph.

Every optimizer's state (hyperparameters, step count, per-parameter buffers) round-trips through
state_dict()/load_state_dict() as plain numbers and ndarrays, so checkpoints need no pickle.
"""

from __future__ import annotations

import math

import numpy as np

from .engine import CAPTURING, captured
from .tensor import Tensor


class Optimizer:
    """Holds deduplicated parameters; subclasses implement _update(i, p, grad)."""

    hyperparameters: tuple[str, ...] = ("lr",)
    buffers: tuple[str, ...] = ()  # names of per-parameter state arrays

    def __init__(self, params, lr: float):
        params = list(params)
        unique = list({id(p): p for p in params}.values())  # dicts keep insertion order
        if not unique:
            raise ValueError(
                f"{type(self).__name__} got no parameters; did you pass model.parameters()?"
            )
        for p in unique:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(
                    f"{type(self).__name__}: every parameter must be a Tensor with "
                    f"requires_grad=True, got {p!r}"
                )
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.params, self.lr, self.steps = unique, float(lr), 0
        self.state = {name: [None] * len(unique) for name in self.buffers}

    def zero_grad(self) -> None:
        """Set every parameter's .grad to None."""
        if CAPTURING.now is not None:  # a jit capture records the call; its replays make it again
            return captured(self.zero_grad, effect=True)
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient (a jit replay runs it again, reading the
        hyperparameters, .grad and the state as they are then)."""
        if CAPTURING.now is not None:
            return captured(self.step, effect=True)
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self._update(i, p, p.grad)

    def _update(self, i: int, p: Tensor, grad: np.ndarray) -> None:
        raise NotImplementedError

    def _buffer(self, name: str, i: int, like: np.ndarray) -> np.ndarray:
        buf = self.state[name][i]
        if buf is None:
            buf = self.state[name][i] = np.zeros_like(like)
        return buf

    def state_dict(self) -> dict[str, np.ndarray | float | int]:
        """Hyperparameters, the step count and per-parameter buffers ('<buffer>.<index>')."""
        out = {name: getattr(self, name) for name in self.hyperparameters}
        out["step"] = self.steps  # PyTorch's name for the count
        for name, bufs in self.state.items():
            for i, buf in enumerate(bufs):
                if buf is not None:
                    out[f"{name}.{i}"] = buf.copy()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() returned; buffers must match their parameters' shapes."""
        for name, bufs in self.state.items():
            for i, p in enumerate(self.params):
                key = f"{name}.{i}"
                if key in state:
                    arr = np.asarray(state[key])
                    if arr.shape != p.shape:
                        raise ValueError(
                            f"{type(self).__name__}.load_state_dict: {key} has shape "
                            f"{arr.shape}, parameter {i} has {p.shape}; the optimizer "
                            f"state belongs to a different model"
                        )
                    bufs[i] = arr.astype(p.dtype, copy=True)
                else:
                    bufs[i] = None
        count = state.get("step", state.get("steps", 0))  # 'steps' in states saved before
        for name in (*self.hyperparameters, "step"):
            value = count if name == "step" else state.get(name, getattr(self, name))
            try:
                if name == "step":
                    value = int(value)
                else:
                    value = tuple(map(float, value)) if np.ndim(value) else float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: {name}={value!r:.40} is not a "
                    f"{'whole number' if name == 'step' else 'number'}"
                ) from None
            setattr(self, "steps" if name == "step" else name, value)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={getattr(self, k)}" for k in self.hyperparameters)
        return f"{type(self).__name__}({len(self.params)} params, {hp})"


class SGD(Optimizer):
    """p -= lr * d, with d = g + wd*p, then momentum buf = m*buf + d and d = buf (or d + m*buf, Nesterov).

    The same update rule as torch.optim.SGD (dampening 0).
    """

    hyperparameters = ("lr", "momentum", "weight_decay", "nesterov")
    buffers = ("momentum_buffer",)

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD: momentum and weight_decay must be >= 0, got {momentum}, {weight_decay}"
            )
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = (
            float(momentum),
            float(weight_decay),
            nesterov,
        )

    def step(self) -> None:
        """Update every parameter that has a gradient (one loop, no per-parameter calls: it is hot)."""
        if CAPTURING.now is not None:
            return captured(self.step, effect=True)
        self.steps += 1
        lr, momentum, decay, nesterov = self.lr, self.momentum, self.weight_decay, self.nesterov
        bufs = self.state["momentum_buffer"]
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            if decay:
                grad = grad + decay * p.data
            if momentum:
                buf = bufs[i]
                if buf is None:
                    buf = bufs[i] = np.array(grad)  # an ndarray even for a 0-d parameter
                else:
                    buf *= momentum
                    buf += grad
                grad = grad + momentum * buf if nesterov else buf
            p.data -= lr * grad

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.nesterov = bool(self.nesterov)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; weight_decay adds wd*p to the gradient (L2), as torch.optim.Adam."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    buffers = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        if not all(0.0 <= b < 1.0 for b in betas) or eps <= 0 or weight_decay < 0:
            raise ValueError(
                f"{type(self).__name__}: need 0 <= betas < 1, eps > 0 and weight_decay "
                f">= 0, got betas={betas}, eps={eps}, weight_decay={weight_decay}"
            )
        self.betas, self.eps, self.weight_decay = (
            tuple(map(float, betas)),
            float(eps),
            float(weight_decay),
        )

    def _update(self, i, p, grad):
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p.data *= 1.0 - self.lr * self.weight_decay
        elif self.weight_decay:
            grad = grad + self.weight_decay * p.data
        m, v = self._buffer("exp_avg", i, grad), self._buffer("exp_avg_sq", i, grad)
        m *= b1
        m += (1.0 - b1) * grad
        v *= b2
        v += (1.0 - b2) * grad * grad
        step_size = self.lr / (1.0 - b1**self.steps)
        denom = np.sqrt(v / (1.0 - b2**self.steps))
        denom += self.eps
        p.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr*wd before the Adam step, as torch.optim.AdamW."""

    decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(params, lr, betas, eps, weight_decay)


# --- learning-rate schedules: call step() once per epoch (or per batch, matching total) ---


class CosineLR:
    """lr follows half a cosine from the optimizer's lr down to min_lr over total steps."""

    def __init__(self, optimizer: Optimizer, total: int, min_lr: float = 0.0):
        if total < 1:
            raise ValueError(f"CosineLR: total must be >= 1, got {total}")
        self.optimizer, self.total, self.min_lr = optimizer, total, min_lr
        self.base_lr, self.count = optimizer.lr, 0

    def lr_at(self, count: int) -> float:
        frac = min(count, self.total) / self.total
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def step(self) -> None:
        captured(self._advance, effect=True)  # inside a jitted step, replayed every call

    def _advance(self) -> None:
        self.count += 1
        self.optimizer.lr = self.lr_at(self.count)

    def state_dict(self) -> dict:
        return {"count": self.count, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.base_lr = int(state["count"]), float(state["base_lr"])
        self.optimizer.lr = self.lr_at(self.count)


class StepLR(CosineLR):
    """lr = base_lr * gamma ** (count // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr, self.count = optimizer.lr, 0

    def lr_at(self, count: int) -> float:
        return self.base_lr * self.gamma ** (count // self.step_size)
