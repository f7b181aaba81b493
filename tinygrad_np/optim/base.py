"""The Optimizer base: param groups, their hyperparameters and per-parameter buffers, the step
loop (recorded by a jit capture) and state_dict()/load_state_dict(). The rules live in optimizers.py.
"""

from __future__ import annotations

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


def is_number(x) -> bool:
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
                f"got a {type(params).__name__}; wrap it in a list ([...]) or pass "
                f"model.parameters()"
            )
        try:
            items = list(params)
        except TypeError:
            raise TypeError(
                f"{type(self).__name__}: params must be a list of Tensors or of param-group dicts, "
                f"got {params!r:.60}"
            ) from None
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
        self._work: dict = {}  # (shape, dtype, k) -> a scratch array: see _scratch
        for group in items if grouped else [{"params": items}]:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a dict with 'params' (a Tensor or a list of them) and any hyperparameters; the
        constructor's values fill the rest. Its step count starts at 0 (bias corrections afresh)."""
        name, k = type(self).__name__, len(self.param_groups)
        where = f"{name} param group {k}" if self._grouped or k else name
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(
                f"{name}.add_param_group: a param group is a dict with a 'params' entry, "
                f"got {group!r:.60}"
            )
        unknown = sorted(set(group) - {"params", *self.hyperparameters})
        if unknown:
            raise ValueError(
                f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; "
                f"a param group holds 'params' and {name}'s hyperparameters "
                f"({', '.join(self.hyperparameters)})"
            )
        params = group["params"]
        if isinstance(params, (Tensor, str, bytes, dict)) or not hasattr(params, "__iter__"):
            params = [params]  # a Tensor, or something the check below names
        params = list(params)
        unique = list({id(p): p for p in params}.values())  # dicts keep insertion order
        if not unique:
            raise ValueError(f"{where} has no parameters")
        for p in unique:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(
                    f"{where}: every parameter must be a Tensor with requires_grad=True, "
                    f"got {p!r:.80}"
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
        if not is_number(lr) or not lr > 0:
            raise ValueError(f"{where}: learning rate must be positive, got {lr}")
        return {**hp, "lr": float(lr)}

    def zero_grad(self) -> None:
        """Set every parameter's .grad to None."""
        if CAPTURING.now is not None:  # a jit capture records the call; its replays make it again
            return captured(self.zero_grad, effect="state")
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient (a jit replay runs it again, reading the
        hyperparameters, .grad and the state as they are then)."""
        if CAPTURING.now is not None:
            return captured(self.step, effect="state")
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

    def _scratch(self, like: np.ndarray, k: int = 0) -> np.ndarray:
        """Work array k shaped like `like`, made once and reused by every update of a parameter
        of that shape and dtype: an update's temporaries (lr * grad, ...) computed with out= into
        it, the same arithmetic, bit for bit, as the expression it replaces, with no allocation."""
        key = (like.shape, like.dtype, k)
        work = self._work.get(key)
        if work is None:
            work = self._work[key] = np.empty(like.shape, like.dtype)
        return work

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
            if not isinstance(groups, (list, tuple)) or not all(
                isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups
            ):
                raise ValueError(
                    f"{name}.load_state_dict: param_groups={groups!r:.60} is not a list of dicts "
                    f"each with a 'params' list; the state is corrupt or was edited"
                )
            saved = [len(g["params"]) for g in groups]
            if saved != sizes:
                raise ValueError(
                    f"{name}.load_state_dict: the state's param groups hold {saved} parameters, "
                    f"this optimizer's hold {sizes}; build the optimizer with the same param groups"
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


def check_nonnegative(where: str, hp: dict, names) -> None:
    bad = [f"{n}={hp[n]}" for n in names if not (is_number(hp[n]) and hp[n] >= 0)]
    if bad:
        raise ValueError(f"{where}: {' and '.join(names)} must be >= 0, got {', '.join(bad)}")


def check_betas(where: str, betas) -> tuple[float, float]:
    try:
        b1, b2 = betas
        if is_number(b1) and is_number(b2) and 0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0:
            return float(b1), float(b2)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{where}: betas must be two numbers in [0, 1), got {betas!r:.60}")
