"""Learning-rate schedules: call step() once per epoch (or per batch, matching their length).

Each schedule sets every param group's lr (and OneCycleLR its momentum or beta1) from a closed
form in its step count and the lrs the groups had when it was built (``base_lrs``), so a schedule
scales each group's own rate. One schedule drives an optimizer at a time; SequentialLR runs several
one after another (a warm-up, then a decay). The lr sequences equal torch.optim.lr_scheduler's.

Inside a ``tinygrad_np.jit`` step, step() is recorded as an effect and replayed every call, as the
optimizer's step reads the hyperparameters when it runs.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from ..engine import captured
from ..tensor import Tensor
from .base import Optimizer


def _per_group(name: str, value, optimizer: Optimizer, where: str) -> list[float]:
    """A number, or a list of one number per param group, as a list per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"{where}: {name} has {len(value)} values, the optimizer {n} param groups"
            )
        return [float(v) for v in value]
    return [float(value)] * n


class Schedule:
    """Sets each group's lr to lr_at(count, group); step() advances the count."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected a tinygrad_np optimizer, got "
                f"{type(optimizer).__name__}"
            )
        self.optimizer, self.count = optimizer, 0
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]

    def lr_at(self, count: int, group: int = 0) -> float:
        raise NotImplementedError

    def step(self) -> None:
        captured(self._advance, effect=True)  # inside a jitted step, replayed every call

    def _advance(self) -> None:
        self.count += 1
        self._apply()

    def _apply(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise ValueError(
                f"{type(self).__name__}: the optimizer has {len(groups)} param groups, the "
                f"schedule was built for {len(self.base_lrs)}; build the schedule after "
                f"add_param_group"
            )
        for k, g in enumerate(groups):
            g["lr"] = self.lr_at(self.count, k)

    def get_last_lr(self) -> list[float]:
        """Each param group's lr now (PyTorch's name)."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """The step count and base lrs ('base_lr' for one group, as saved before groups existed)."""
        if len(self.base_lrs) == 1:
            return {"count": self.count, "base_lr": self.base_lrs[0]}
        return {"count": self.count, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        bases = state["base_lrs"] if "base_lrs" in state else [state["base_lr"]]
        if len(bases) != len(self.optimizer.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state has {len(bases)} base lrs, the "
                f"optimizer {len(self.optimizer.param_groups)} param groups"
            )
        self.count, self.base_lrs = int(state["count"]), [float(b) for b in bases]
        self._apply()


class CosineLR(Schedule):
    """lr follows half a cosine from each group's lr down to min_lr over total steps."""

    def __init__(self, optimizer: Optimizer, total: int, min_lr: float = 0.0):
        if total < 1:
            raise ValueError(f"CosineLR: total must be >= 1, got {total}")
        super().__init__(optimizer)
        self.total, self.min_lr = total, min_lr

    def lr_at(self, count: int, group: int = 0) -> float:
        frac = min(count, self.total) / self.total
        base = self.base_lrs[group]
        return self.min_lr + (base - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))


class StepLR(Schedule):
    """lr = base_lr * gamma ** (count // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, count: int, group: int = 0) -> float:
        return self.base_lrs[group] * self.gamma ** (count // self.step_size)


class LinearLR(Schedule):
    """lr = base_lr * (start_factor + (end_factor - start_factor) * min(count, total_iters) /
    total_iters), as torch's LinearLR (a warm-up with the defaults); sets lr_at(0) when built."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(
                f"LinearLR: need 0 < start_factor <= 1 and 0 <= end_factor <= 1, got "
                f"start_factor={start_factor}, end_factor={end_factor}"
            )
        if type(total_iters) is not int or total_iters < 1:
            raise ValueError(
                f"LinearLR: total_iters must be a whole number >= 1, got {total_iters!r}"
            )
        super().__init__(optimizer)
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = total_iters
        self._apply()

    def lr_at(self, count: int, group: int = 0) -> float:
        span = self.end_factor - self.start_factor
        factor = self.start_factor + span * min(self.total_iters, count) / self.total_iters
        return self.base_lrs[group] * factor


class ExponentialLR(Schedule):
    """lr = base_lr * gamma ** count."""

    def __init__(self, optimizer: Optimizer, gamma: float):
        if not gamma > 0:
            raise ValueError(f"ExponentialLR: gamma must be positive, got {gamma}")
        super().__init__(optimizer)
        self.gamma = float(gamma)

    def lr_at(self, count: int, group: int = 0) -> float:
        return self.base_lrs[group] * self.gamma**count


class OneCycleLR(Schedule):
    """The 1cycle policy (Smith), as torch's OneCycleLR: lr from max_lr/div_factor up to max_lr over
    pct_start of total_steps, then down to max_lr/div_factor/final_div_factor (three_phase: back to
    the start first), annealed by cosine (or linearly). With cycle_momentum, the momentum (SGD,
    RMSprop) or beta1 (Adam, AdamW, Adamax, NAdam) goes the other way, max_momentum to
    base_momentum and back. Sets the values for step 0 when built; stepping past total_steps is an
    error."""

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum=0.85,
        max_momentum=0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ):
        super().__init__(optimizer)
        whole = lambda n: type(n) is int and n >= 1  # noqa: E731
        if total_steps is not None:
            if not whole(total_steps):
                raise ValueError(
                    f"OneCycleLR: total_steps must be a whole number >= 1, got {total_steps!r}"
                )
        elif epochs is not None and steps_per_epoch is not None:
            if not whole(epochs) or not whole(steps_per_epoch):
                raise ValueError(
                    f"OneCycleLR: epochs and steps_per_epoch must be whole numbers >= 1, got "
                    f"{epochs!r} and {steps_per_epoch!r}"
                )
            total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        where = "OneCycleLR"
        self.max_lrs = _per_group("max_lr", max_lr, optimizer, where)
        self.initial_lrs = [m / div_factor for m in self.max_lrs]
        self.min_lrs = [i / final_div_factor for i in self.initial_lrs]
        # phases: (last step, lr from, lr to, momentum from, momentum to), by name
        up = float(pct_start * total_steps) - 1
        if three_phase:
            self.phases = [
                (up, "initial", "max", "max_m", "base_m"),
                (float(2 * pct_start * total_steps) - 2, "max", "initial", "base_m", "max_m"),
                (total_steps - 1, "initial", "min", "max_m", "max_m"),
            ]
        else:
            self.phases = [
                (up, "initial", "max", "max_m", "base_m"),
                (total_steps - 1, "max", "min", "base_m", "max_m"),
            ]
        ends = [phase[0] for phase in self.phases]
        if ends[0] == 0 or ends[-1] == ends[-2]:  # a phase a step lands in with no length: 0/0
            raise ValueError(
                f"OneCycleLR: pct_start={pct_start} with total_steps={total_steps} leaves a phase "
                f"of the cycle no steps; change pct_start"
            )
        self.cycle_momentum, self.momentum_key = cycle_momentum, None
        if cycle_momentum:
            names = optimizer.hyperparameters
            if "betas" in names:
                self.momentum_key = "betas"
            elif "momentum" in names:
                self.momentum_key = "momentum"
            else:
                raise ValueError(
                    f"OneCycleLR: {type(optimizer).__name__} has no momentum or betas to cycle; "
                    f"pass cycle_momentum=False"
                )
            self.max_momentums = _per_group("max_momentum", max_momentum, optimizer, where)
            self.base_momentums = _per_group("base_momentum", base_momentum, optimizer, where)
        self._apply()

    def _value(self, count: int, group: int, momentum: bool) -> float:
        if momentum:
            values = {"max_m": self.max_momentums[group], "base_m": self.base_momentums[group]}
        else:
            values = {"initial": self.initial_lrs[group], "max": self.max_lrs[group]}
            values["min"] = self.min_lrs[group]
        start = 0.0
        for k, (end, lr_from, lr_to, m_from, m_to) in enumerate(self.phases):
            if count <= end or k == len(self.phases) - 1:
                pct = (count - start) / (end - start)
                a, b = (m_from, m_to) if momentum else (lr_from, lr_to)
                a, b = values[a], values[b]
                if self.anneal_strategy == "cos":
                    return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (b - a) * pct + a
            start = end
        raise AssertionError("unreachable: the last phase takes every later step")

    def lr_at(self, count: int, group: int = 0) -> float:
        return self._value(count, group, False)

    def momentum_at(self, count: int, group: int = 0) -> float:
        return self._value(count, group, True)

    def _advance(self) -> None:
        if self.count + 1 > self.total_steps:
            raise ValueError(
                f"OneCycleLR: step {self.count + 1} is past total_steps={self.total_steps}; "
                f"build it with the run's total number of steps"
            )
        super()._advance()

    def _apply(self) -> None:
        super()._apply()
        if self.momentum_key is None:
            return
        for k, g in enumerate(self.optimizer.param_groups):
            m = self.momentum_at(self.count, k)
            if self.momentum_key == "betas":
                g["betas"] = (m, *g["betas"][1:])
            else:
                g["momentum"] = m

    def state_dict(self) -> dict:
        return {"count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self._apply()


class SequentialLR(Schedule):
    """Run schedulers one after another: schedulers[i] from milestones[i-1] (its count restarting
    at 0), as torch's SequentialLR. Every one starts from the lrs the first was built with (so a
    warm-up LinearLR built first does not lower the base of the decay built after it)."""

    def __init__(self, optimizer: Optimizer, schedulers, milestones):
        super().__init__(optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR: give at least one schedule")
        for k, s in enumerate(schedulers):
            if not isinstance(s, Schedule) or isinstance(s, SequentialLR):
                raise TypeError(
                    f"SequentialLR: schedulers[{k}] is a {type(s).__name__}; give LinearLR, "
                    f"ExponentialLR, StepLR, CosineLR or OneCycleLR (ReduceLROnPlateau steps on a "
                    f"metric, so it cannot be sequenced)"
                )
            if s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{k}] drives a different optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: {len(schedulers)} schedules need {len(schedulers) - 1} milestones, "
                f"got {len(milestones)}"
            )
        whole = all(type(m) is int and m >= 1 for m in milestones)
        if not whole or milestones != sorted(set(milestones)):
            raise ValueError(
                f"SequentialLR: milestones must be increasing whole numbers >= 1, got {milestones}"
            )
        self.schedulers, self.milestones = schedulers, milestones
        self.base_lrs = list(schedulers[0].base_lrs)
        for s in schedulers:
            s.base_lrs, s.count = list(self.base_lrs), 0
        schedulers[0]._apply()

    def _advance(self) -> None:
        self.count += 1
        k = bisect.bisect_right(self.milestones, self.count)
        s = self.schedulers[k]
        s.count = self.count - (self.milestones[k - 1] if k else 0)
        s._apply()

    def _apply(self) -> None:  # load_state_dict: the current schedule at its count
        k = bisect.bisect_right(self.milestones, self.count)
        self.schedulers[k].count = self.count - (self.milestones[k - 1] if k else 0)
        self.schedulers[k]._apply()

    def state_dict(self) -> dict:
        return {"count": self.count, "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict) -> None:
        for s, sd in zip(self.schedulers, state["schedulers"]):
            s.load_state_dict(sd)
        self.count = int(state["count"])
        self._apply()


class ReduceLROnPlateau:
    """Multiply each group's lr by factor (not below min_lr) once the metric given to step(metric)
    has not improved for more than patience steps, then wait cooldown steps, as torch's
    ReduceLROnPlateau. Improvement: mode 'min' (lower is better) or 'max'; threshold_mode 'rel'
    (beyond best * (1 -/+ threshold)) or 'abs' (beyond best -/+ threshold). A reduction smaller than
    eps is skipped. Inside a jitted step, pass the loss Tensor: its value each call is read."""

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr=0.0,
        eps: float = 1e-8,
    ):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"ReduceLROnPlateau: expected a tinygrad_np optimizer, got "
                f"{type(optimizer).__name__}"
            )
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        if not 0 <= factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor}")
        for name, n in (("patience", patience), ("cooldown", cooldown)):
            if type(n) is not int or n < 0:
                raise ValueError(
                    f"ReduceLROnPlateau: {name} must be a whole number >= 0, got {n!r}"
                )
        self.optimizer, self.mode, self.factor = optimizer, mode, float(factor)
        self.patience, self.cooldown, self.eps = patience, cooldown, float(eps)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else float(min_lr)
        self.min_lrs = _per_group("min_lr", min_lr, optimizer, "ReduceLROnPlateau")
        self.count, self.best = 0, math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter = 0, 0

    def step(self, metric) -> None:
        """One epoch's metric: a number, or a size-1 Tensor or array (read when the step runs)."""
        value = metric.data if isinstance(metric, Tensor) else metric
        captured(self._advance, value, effect=True)

    def _is_better(self, a: float) -> bool:
        best, th = self.best, self.threshold
        if self.mode == "min":
            return a < best * (1.0 - th) if self.threshold_mode == "rel" else a < best - th
        return a > best * (th + 1.0) if self.threshold_mode == "rel" else a > best + th

    def _advance(self, metric) -> None:
        try:
            if np.size(metric) != 1 or isinstance(metric, (str, bytes)):
                raise ValueError
            current = float(np.asarray(metric).reshape(()))
        except (TypeError, ValueError):
            shown = np.shape(metric) if np.size(metric) != 1 else repr(metric)[:40]
            raise ValueError(
                f"ReduceLROnPlateau.step: the metric must be one number (a float or a size-1 "
                f"tensor), got {shown}"
            ) from None
        self.count += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def _reduce(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ValueError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} param groups, min_lr gave "
                    f"{len(self.min_lrs)}; set .min_lrs to one value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for g, floor in zip(groups, self.min_lrs):
            old = float(g["lr"])
            new = max(old * self.factor, floor)
            if old - new > self.eps:
                g["lr"] = new

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {
            "count": self.count, "best": self.best, "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter, "min_lrs": list(self.min_lrs),
        }

    def load_state_dict(self, state: dict) -> None:
        self.count, self.best = int(state["count"]), float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.min_lrs = [float(x) for x in state["min_lrs"]]
