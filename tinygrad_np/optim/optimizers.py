"""Optimizers: SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam; they update p.data in place.

Parameters come as a list of Tensors or, as in PyTorch, a list of param groups (dicts with "params"
and any hyperparameters, the constructor's values filling the rest). The update rules are
torch.optim's (tested against it to 1e-12 in float64). Each group counts its steps from the
optimizer step at which it joined (``group_start``), so a group added later starts its bias
corrections afresh; PyTorch counts per parameter, which differs only for a parameter that has no
gradient at some steps (it is skipped, its count still moves).

Every optimizer's state (hyperparameters per group, step count, per-parameter buffers) round-trips
through state_dict()/load_state_dict() as plain numbers, lists and ndarrays, so checkpoints need no
pickle.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine import CAPTURING, captured
from .base import GroupValue, Optimizer, check_betas, check_nonnegative, is_number


class SGD(Optimizer):
    """p -= lr * d, with d = g + wd*p, then momentum buf = m*buf + d and d = buf (or d + m*buf, Nesterov).

    The same update rule as torch.optim.SGD (dampening 0).
    """

    hyperparameters = ("lr", "momentum", "weight_decay", "nesterov")
    flags = ("nesterov",)
    buffers = ("momentum_buffer",)
    momentum, weight_decay, nesterov = GroupValue(), GroupValue(), GroupValue()

    def __init__(
        self,
        params,
        lr: float | None = None,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _check(self, hp, where):
        hp = super()._check(hp, where)
        if not (is_number(hp["momentum"]) and hp["momentum"] >= 0) or not (
            is_number(hp["weight_decay"]) and hp["weight_decay"] >= 0
        ):
            raise ValueError(
                f"{where}: momentum and weight_decay must be >= 0, got {hp['momentum']}, "
                f"{hp['weight_decay']}"
            )
        if hp["nesterov"] and hp["momentum"] == 0:
            raise ValueError(f"{where}: nesterov=True needs momentum > 0")
        return {
            **hp,
            "momentum": float(hp["momentum"]),
            "weight_decay": float(hp["weight_decay"]),
            "nesterov": bool(hp["nesterov"]),
        }

    def step(self) -> None:
        """Update every parameter that has a gradient (one loop, no per-parameter calls: it is hot)."""
        if CAPTURING.now is not None:
            return captured(self.step, effect="state")
        self.steps += 1
        bufs = self.state["momentum_buffer"]
        start = 0
        for group in self.param_groups:
            params = group["params"]
            lr, momentum = group["lr"], group["momentum"]
            decay, nesterov = group["weight_decay"], group["nesterov"]
            for i, p in enumerate(params, start):
                grad = p.grad
                if grad is None:
                    continue
                # each temporary in a scratch array (no allocation; the same arithmetic)
                if decay:  # grad + decay * p.data
                    d = np.multiply(p.data, decay, out=self._scratch(grad, 0))
                    grad = np.add(grad, d, out=d)
                if momentum:
                    buf = bufs[i]
                    if buf is None:
                        buf = bufs[i] = np.array(grad)  # an ndarray even for a 0-d parameter
                    else:
                        buf *= momentum
                        buf += grad
                    if nesterov:  # grad + momentum * buf
                        t = np.multiply(buf, momentum, out=self._scratch(grad, 1))
                        grad = np.add(grad, t, out=t)
                    else:
                        grad = buf
                p.data -= np.multiply(grad, lr, out=self._scratch(grad, 1))  # lr * grad
            start += len(params)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; weight_decay adds wd*p to the gradient (L2), as torch.optim.Adam."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    buffers = ("exp_avg", "exp_avg_sq")
    betas, eps, weight_decay = GroupValue(), GroupValue(), GroupValue()
    decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _check(self, hp, where):
        hp = super()._check(hp, where)
        betas, eps, wd = hp["betas"], hp["eps"], hp["weight_decay"]
        try:
            ok = all(0.0 <= b < 1.0 for b in betas) and len(betas) == 2
        except TypeError:
            ok = False
        if not ok or not (is_number(eps) and eps > 0) or not (is_number(wd) and wd >= 0):
            raise ValueError(
                f"{where}: need 0 <= betas < 1, eps > 0 and weight_decay "
                f">= 0, got betas={betas}, eps={eps}, weight_decay={wd}"
            )
        betas = tuple(map(float, betas))
        return {**hp, "betas": betas, "eps": float(eps), "weight_decay": float(wd)}

    def _update(self, group, t, i, p, grad):
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        if wd and self.decoupled:
            p.data *= 1.0 - lr * wd
        elif wd:  # grad + wd * p.data
            d = np.multiply(p.data, wd, out=self._scratch(grad, 1))
            grad = np.add(grad, d, out=d)
        m, v = self._buffer("exp_avg", i, grad), self._buffer("exp_avg_sq", i, grad)
        s = self._scratch(grad, 0)  # each temporary in turn: no allocation, the same arithmetic
        m *= b1
        m += np.multiply(grad, 1.0 - b1, out=s)  # (1 - b1) * grad
        v *= b2
        np.multiply(grad, 1.0 - b2, out=s)  # (1 - b2) * grad * grad
        v += np.multiply(s, grad, out=s)
        step_size = lr / (1.0 - b1**t)
        denom = np.sqrt(np.divide(v, 1.0 - b2**t, out=s), out=s)  # sqrt(v / (1 - b2^t))
        denom += group["eps"]
        p.data -= np.multiply(np.divide(m, denom, out=s), step_size, out=s)  # step_size * (m / denom)


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


class RMSprop(Optimizer):
    """d = g + wd*p; s = alpha*s + (1-alpha)*d^2; centered: a = a + (1-alpha)*(d - a), s - a^2 under
    the root; q = d / (sqrt(...) + eps); momentum: buf = m*buf + q, p -= lr*buf; else p -= lr*q.

    The same update rule as torch.optim.RMSprop.
    """

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    flags = ("centered",)
    buffers = ("square_avg", "momentum_buffer", "grad_avg")
    alpha, eps, weight_decay = GroupValue(), GroupValue(), GroupValue()
    momentum, centered = GroupValue(), GroupValue()

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults)

    def _check(self, hp, where):
        hp = super()._check(hp, where)
        check_nonnegative(where, hp, ("alpha", "eps", "weight_decay", "momentum"))
        out = {**hp, **{n: float(hp[n]) for n in ("alpha", "eps", "weight_decay", "momentum")}}
        return {**out, "centered": bool(hp["centered"])}

    def _update(self, group, t, i, p, grad):
        alpha, wd, momentum = group["alpha"], group["weight_decay"], group["momentum"]
        if wd:
            grad = grad + wd * p.data
        square_avg = self._buffer("square_avg", i, grad)
        square_avg *= alpha
        square_avg += (1.0 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = self._buffer("grad_avg", i, grad)
            grad_avg += (1.0 - alpha) * (grad - grad_avg)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if momentum > 0:
            buf = self._buffer("momentum_buffer", i, grad)
            buf *= momentum
            buf += grad / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (grad / avg)


class Adagrad(Optimizer):
    """d = g + wd*p; s += d^2 (s starts at initial_accumulator_value);
    p -= lr / (1 + (t-1)*lr_decay) * d / (sqrt(s) + eps). The same update rule as
    torch.optim.Adagrad; a param group's own initial_accumulator_value is used (torch uses the
    constructor's for every group)."""

    hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
    buffers = ("sum",)
    lr_decay, weight_decay, eps = GroupValue(), GroupValue(), GroupValue()
    initial_accumulator_value = GroupValue()

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps,
        )
        super().__init__(params, defaults)

    def _check(self, hp, where):
        hp = super()._check(hp, where)
        names = ("lr_decay", "weight_decay", "initial_accumulator_value", "eps")
        check_nonnegative(where, hp, names)
        return {**hp, **{n: float(hp[n]) for n in names}}

    def _update(self, group, t, i, p, grad):
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        clr = group["lr"] / (1.0 + (t - 1) * group["lr_decay"])
        total = self._buffer("sum", i, grad, group["initial_accumulator_value"])
        total += grad * grad
        std = np.sqrt(total)
        std += group["eps"]
        p.data -= clr * (grad / std)


class Adamax(Optimizer):
    """d = g + wd*p; m = b1*m + (1-b1)*d; u = max(b2*u, |d| + eps); p -= lr / (1 - b1^t) * m / u.
    The same update rule as torch.optim.Adamax."""

    hyperparameters = ("lr", "betas", "eps", "weight_decay")
    buffers = ("exp_avg", "exp_inf")
    betas, eps, weight_decay = GroupValue(), GroupValue(), GroupValue()

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _check(self, hp, where):
        hp = super()._check(hp, where)
        check_nonnegative(where, hp, ("eps", "weight_decay"))
        betas = check_betas(where, hp["betas"])
        eps, wd = float(hp["eps"]), float(hp["weight_decay"])
        return {**hp, "betas": betas, "eps": eps, "weight_decay": wd}

    def _update(self, group, t, i, p, grad):
        b1, b2 = group["betas"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        m, u = self._buffer("exp_avg", i, grad), self._buffer("exp_inf", i, grad)
        m *= b1
        m += (1.0 - b1) * grad
        u *= b2
        np.maximum(u, np.abs(grad) + group["eps"], out=u)
        p.data -= group["lr"] / (1.0 - b1**t) * (m / u)


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat) and torch's momentum schedule
    mu_t = b1 * (1 - 0.5 * 0.96^(t * momentum_decay)): with d = g + wd*p (or p *= 1 - lr*wd when
    decoupled_weight_decay), m and v as Adam, D = sqrt(v / (1 - b2^t)) + eps,
    p -= lr*(1-mu_t)/(1-prod mu) * d/D + lr*mu_{t+1}/(1-prod mu * mu_{t+1}) * m/D.
    The same update rule as torch.optim.NAdam; the product of the mu is kept per group."""

    hyperparameters = (
        "lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay",
    )
    flags = ("decoupled_weight_decay",)
    buffers = ("exp_avg", "exp_avg_sq")
    betas, eps, weight_decay = GroupValue(), GroupValue(), GroupValue()
    momentum_decay, decoupled_weight_decay = GroupValue(), GroupValue()

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
    ):
        self.mu_product: list[float] = []  # per group: the product of mu_1 .. mu_t
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def add_param_group(self, group: dict) -> None:
        super().add_param_group(group)
        self.mu_product.append(1.0)

    def _check(self, hp, where):
        hp = super()._check(hp, where)
        names = ("eps", "weight_decay", "momentum_decay")
        check_nonnegative(where, hp, names)
        out = {**hp, **{n: float(hp[n]) for n in names}, "betas": check_betas(where, hp["betas"])}
        return {**out, "decoupled_weight_decay": bool(hp["decoupled_weight_decay"])}

    def _group_step(self, k, group, t):
        b1, decay = group["betas"][0], group["momentum_decay"]
        mu = b1 * (1.0 - 0.5 * (0.96 ** (t * decay)))
        mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * decay)))
        self.mu_product[k] *= mu
        return t, mu, mu_next, self.mu_product[k]

    def _update(self, group, ctx, i, p, grad):
        t, mu, mu_next, product = ctx
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        if wd and group["decoupled_weight_decay"]:
            p.data *= 1.0 - lr * wd
        elif wd:
            grad = grad + wd * p.data
        m, v = self._buffer("exp_avg", i, grad), self._buffer("exp_avg_sq", i, grad)
        m *= b1
        m += (1.0 - b1) * grad
        v *= b2
        v += (1.0 - b2) * grad * grad
        denom = np.sqrt(v / (1.0 - b2**t))
        denom += group["eps"]
        p.data -= lr * (1.0 - mu) / (1.0 - product) * (grad / denom)
        p.data -= lr * mu_next / (1.0 - product * mu_next) * (m / denom)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "mu_product": list(self.mu_product)}

    def load_state_dict(self, state: dict) -> None:
        products = state.get("mu_product")
        if products is not None:
            ok = isinstance(products, (list, tuple)) and len(products) == len(self.param_groups)
            if not ok or not all(is_number(x) and math.isfinite(x) for x in products):
                raise ValueError(
                    f"NAdam.load_state_dict: mu_product={products!r:.60} is not one number per "
                    f"param group ({len(self.param_groups)})"
                )
        super().load_state_dict(state)
        if products is not None:
            self.mu_product = [float(x) for x in products]
        else:  # a state without it: recompute from the step counts and today's hyperparameters
            self.mu_product = []
            for k, group in enumerate(self.param_groups):
                t_end = self.steps - self.group_start[k]
                b1, decay = group["betas"][0], group["momentum_decay"]
                prod = 1.0
                for t in range(1, t_end + 1):
                    prod *= b1 * (1.0 - 0.5 * (0.96 ** (t * decay)))
                self.mu_product.append(prod)
