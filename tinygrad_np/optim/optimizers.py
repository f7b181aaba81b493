"""Optimizers: SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam. They update p.data in place, no graph.

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
from ..tensor import Tensor


class GroupValue:
    """optimizer.<name>: a hyperparameter every param group shares (an error if they differ);
    setting it sets it in every group."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, opt, owner=None):
        if opt is None:
            return self
        values = [g[self.name] for g in opt.param_groups]
        if any(v != values[0] for v in values[1:]):
            raise ValueError(
                f"{type(opt).__name__}.{self.name}: its {len(values)} param groups have different "
                f"values ({values}); read or set optimizer.param_groups[i][{self.name!r}]"
            )
        return values[0]

    def __set__(self, opt, value) -> None:
        for g in opt.param_groups:
            g[self.name] = value


def _number(x) -> bool:
    """x is a real number (not a bool, not a string)."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


class Optimizer:
    """Param groups and their per-parameter buffers; subclasses write _update (and _check)."""

    hyperparameters: tuple[str, ...] = ("lr",)
    flags: tuple[str, ...] = ()  # the hyperparameters that are booleans
    buffers: tuple[str, ...] = ()  # names of per-parameter state arrays
    lr = GroupValue()

    def __init__(self, params, defaults: dict):
        if isinstance(params, (Tensor, dict)):
            raise TypeError(
                f"{type(self).__name__}: params must be a list of Tensors or of param-group dicts, "
                f"got a {type(params).__name__}; wrap it in a list ([...]) or pass model.parameters()"
            )
        items = list(params)
        if not items:
            raise ValueError(
                f"{type(self).__name__} got no parameters; did you pass model.parameters()?"
            )
        grouped = any(isinstance(g, dict) for g in items)
        if grouped and not all(isinstance(g, dict) for g in items):
            raise TypeError(
                f"{type(self).__name__}: params mixes Tensors and param-group dicts; pass either a "
                f"list of Tensors or a list of dicts, each with a 'params' entry"
            )
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.params: list[Tensor] = []  # every group's parameters, in order: the buffers' index
        self.group_start: list[int] = []  # the optimizer step at which each group joined
        self.state = {name: [] for name in self.buffers}
        self.steps = 0
        self._grouped = grouped
        for group in items if grouped else [{"params": items}]:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a dict with 'params' (a Tensor or a list of them) and any hyperparameters; the
        constructor's values fill the rest. Its step count starts at 0 (bias corrections afresh)."""
        name, k = type(self).__name__, len(self.param_groups)
        where = f"{name} param group {k}" if self._grouped else name
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(
                f"{name}.add_param_group: a param group is a dict with a 'params' entry, "
                f"got {group!r:.60}"
            )
        unknown = sorted(set(group) - {"params", *self.hyperparameters})
        if unknown:
            raise ValueError(
                f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"a param group holds 'params' and {name}'s hyperparameters "
                f"({', '.join(self.hyperparameters)})"
            )
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        unique = list({id(p): p for p in params}.values())  # dicts keep insertion order
        if not unique:
            raise ValueError(f"{where} has no parameters")
        for p in unique:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(
                    f"{where}: every parameter must be a Tensor with requires_grad=True, got {p!r:.80}"
                )
        for j, other in enumerate(self.param_groups):
            held = {id(p) for p in other["params"]}
            shared = next((p for p in unique if id(p) in held), None)
            if shared is not None:
                raise ValueError(
                    f"{name}: a parameter (shape {shared.shape}) is in param groups {j} and {k}; "
                    f"give each tensor to one group"
                )
        values = {}
        for h in self.hyperparameters:
            value = group.get(h, self.defaults.get(h))
            if value is None:
                raise TypeError(
                    f"{where}: no {h} given; pass {h}= to {name} or put {h!r} in every param group"
                )
            values[h] = value
        self.param_groups.append({"params": unique, **self._check(values, where)})
        self.params.extend(unique)
        self.group_start.append(self.steps)
        for bufs in self.state.values():
            bufs.extend([None] * len(unique))

    def _check(self, hp: dict, where: str) -> dict:
        """The group's hyperparameters validated and as plain Python numbers (ValueError if not)."""
        lr = hp["lr"]
        if not _number(lr) or not lr > 0:
            raise ValueError(f"{where}: learning rate must be positive, got {lr}")
        return {**hp, "lr": float(lr)}

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
        start = 0
        for k, group in enumerate(self.param_groups):
            params = group["params"]
            ctx = self._group_step(k, group, self.steps - self.group_start[k])
            for i, p in enumerate(params, start):
                if p.grad is not None:
                    self._update(group, ctx, i, p, p.grad)
            start += len(params)

    def _group_step(self, k: int, group: dict, t: int):
        """What every parameter's update in group k needs at its step t (here: t)."""
        return t

    def _update(self, group: dict, t, i: int, p: Tensor, grad: np.ndarray) -> None:
        raise NotImplementedError

    def _buffer(self, name: str, i: int, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
        buf = self.state[name][i]
        if buf is None:
            buf = self.state[name][i] = np.full_like(like, fill) if fill else np.zeros_like(like)
        return buf

    # --- state ---

    def state_dict(self) -> dict:
        """Hyperparameters (top level where every group agrees, as before groups existed), the step
        count 'step', 'param_groups' (each group's hyperparameters, the indices of its parameters
        and the step it joined at) and per-parameter buffers ('<buffer>.<index>')."""
        out = {}
        for h in self.hyperparameters:
            values = [g[h] for g in self.param_groups]
            if all(v == values[0] for v in values):
                out[h] = values[0]
        out["step"] = self.steps  # PyTorch's name for the count
        groups, start = [], 0
        for k, g in enumerate(self.param_groups):
            n = len(g["params"])
            entry = {h: g[h] for h in self.hyperparameters}
            entry.update(params=list(range(start, start + n)), first_step=self.group_start[k])
            groups.append(entry)
            start += n
        out["param_groups"] = groups
        for name, bufs in self.state.items():
            for i, buf in enumerate(bufs):
                if buf is not None:
                    out[f"{name}.{i}"] = buf.copy()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() returned; buffers must match their parameters' shapes and
        the param groups their sizes. A top-level hyperparameter (state_dict writes one where
        every group agrees; states saved before param groups existed hold only those, and 'steps'
        for the count) sets every group."""
        name = type(self).__name__
        groups = state.get("param_groups")
        if groups is not None:
            sizes = [len(g["params"]) for g in self.param_groups]
            saved = (
                [len(g.get("params", ())) for g in groups]
                if isinstance(groups, (list, tuple)) and all(isinstance(g, dict) for g in groups)
                else None
            )
            if saved != sizes:
                raise ValueError(
                    f"{name}.load_state_dict: the state's param groups hold "
                    f"{saved if saved is not None else repr(groups)[:60]} parameters, this "
                    f"optimizer's hold {sizes}; build the optimizer with the same param groups"
                )
        buffers = {}
        for buf_name in self.state:
            for i, p in enumerate(self.params):
                key = f"{buf_name}.{i}"
                if key in state:
                    arr = np.asarray(state[key])
                    if arr.shape != p.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: {key} has shape {arr.shape}, parameter {i} "
                            f"has {p.shape}; the optimizer state belongs to a different model"
                        )
                    buffers[key] = arr
        count = self._whole(state.get("step", state.get("steps", 0)), "step")  # 'steps' before
        entries = groups if groups is not None else [state] * len(self.param_groups)
        values = [
            {h: self._value(state.get(h, entry.get(h, group[h])), h) for h in self.hyperparameters}
            for group, entry in zip(self.param_groups, entries)
        ]
        starts = [self._whole(entry.get("first_step", 0), "first_step") for entry in entries]
        # all checked: now change the optimizer
        for buf_name, bufs in self.state.items():
            for i, p in enumerate(self.params):
                arr = buffers.get(f"{buf_name}.{i}")
                bufs[i] = None if arr is None else arr.astype(p.dtype, copy=True)
        self.steps, self.group_start = count, starts
        for group, hp in zip(self.param_groups, values):
            group.update(hp)

    def _whole(self, value, what: str) -> int:
        try:
            if not float(value).is_integer():
                raise ValueError
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: {what}={value!r:.40} is not a whole number"
            ) from None

    def _value(self, value, h: str):
        """A saved hyperparameter as the optimizer holds it (JSON gives lists for tuples)."""
        try:
            if h in self.flags:
                if value not in (0, 1):  # True, False, 0, 1, 0.0, 1.0
                    raise ValueError
                return bool(value)
            if isinstance(value, str):
                raise ValueError
            return tuple(map(float, value)) if np.ndim(value) else float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: {h}={value!r:.40} is not a "
                f"{'boolean' if h in self.flags else 'number'}"
            ) from None

    def __repr__(self) -> str:
        groups = self.param_groups
        parts = []
        for h in self.hyperparameters:
            values = [g[h] for g in groups]
            parts.append(f"{h}={values[0] if all(v == values[0] for v in values) else values}")
        where = f" in {len(groups)} groups" if len(groups) > 1 else ""
        return f"{type(self).__name__}({len(self.params)} params{where}, {', '.join(parts)})"


def _nonnegative(where: str, hp: dict, names) -> None:
    bad = [f"{n}={hp[n]}" for n in names if not (_number(hp[n]) and hp[n] >= 0)]
    if bad:
        raise ValueError(f"{where}: {' and '.join(names)} must be >= 0, got {', '.join(bad)}")


def _betas(where: str, betas) -> tuple[float, float]:
    try:
        b1, b2 = betas
        if _number(b1) and _number(b2) and 0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0:
            return float(b1), float(b2)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{where}: betas must be two numbers in [0, 1), got {betas!r:.60}")


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
        if not (_number(hp["momentum"]) and hp["momentum"] >= 0) or not (
            _number(hp["weight_decay"]) and hp["weight_decay"] >= 0
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
            return captured(self.step, effect=True)
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
        if not ok or not (_number(eps) and eps > 0) or not (_number(wd) and wd >= 0):
            raise ValueError(
                f"{where}: need 0 <= betas < 1, eps > 0 and weight_decay "
                f">= 0, got betas={betas}, eps={eps}, weight_decay={wd}"
            )
        return {**hp, "betas": tuple(map(float, betas)), "eps": float(eps), "weight_decay": float(wd)}

    def _update(self, group, t, i, p, grad):
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        if wd and self.decoupled:
            p.data *= 1.0 - lr * wd
        elif wd:
            grad = grad + wd * p.data
        m, v = self._buffer("exp_avg", i, grad), self._buffer("exp_avg_sq", i, grad)
        m *= b1
        m += (1.0 - b1) * grad
        v *= b2
        v += (1.0 - b2) * grad * grad
        step_size = lr / (1.0 - b1**t)
        denom = np.sqrt(v / (1.0 - b2**t))
        denom += group["eps"]
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
        _nonnegative(where, hp, ("alpha", "eps", "weight_decay", "momentum"))
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
    p -= lr / (1 + (t-1)*lr_decay) * d / (sqrt(s) + eps). The same update rule as torch.optim.Adagrad;
    a param group's own initial_accumulator_value is used (torch uses the constructor's for all)."""

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
        _nonnegative(where, hp, names)
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

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _check(self, hp, where):
        hp = super()._check(hp, where)
        _nonnegative(where, hp, ("eps", "weight_decay"))
        betas = _betas(where, hp["betas"])
        return {**hp, "betas": betas, "eps": float(hp["eps"]), "weight_decay": float(hp["weight_decay"])}

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

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay")
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
        _nonnegative(where, hp, names)
        out = {**hp, **{n: float(hp[n]) for n in names}, "betas": _betas(where, hp["betas"])}
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
            if not ok or not all(_number(x) and math.isfinite(x) for x in products):
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
