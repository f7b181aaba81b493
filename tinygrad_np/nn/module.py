"""Module: the base of every layer (parameters and buffers found by walking attributes, state
dicts, train/eval). Its own file so that the layer files (nn/__init__.py, nn/recurrent.py) can
each import it."""

from __future__ import annotations

import numpy as np

from ..engine import captured
from ..tensor import Tensor


class Module:
    """Parameters are found by walking attributes (Tensors, Modules, lists of them) in definition order."""

    training = True  # instances set their own with train()/eval()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _entries(self):
        """(name, value) for what this module holds: its attributes, and the entries of its
        lists, tuples and dicts as 'attribute.key'. Containers override it to name entries."""
        for name, value in vars(self).items():
            if isinstance(value, dict):
                yield from ((f"{name}.{key}", item) for key, item in value.items())
            elif isinstance(value, (list, tuple)):
                yield from ((f"{name}.{i}", item) for i, item in enumerate(value))
            else:
                yield name, value

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Tensor]]:
        """(dotted name, tensor) for every parameter, in definition order, each tensor once."""
        found, seen = [], set()
        for name, item in self._entries():
            if isinstance(item, Module):
                pairs = item.named_parameters(prefix + name + ".")
            elif isinstance(item, Tensor) and item.requires_grad:
                pairs = [(prefix + name, item)]
            else:
                continue
            for pair in pairs:
                if id(pair[1]) not in seen:
                    seen.add(id(pair[1]))
                    found.append(pair)
        return found

    def parameters(self) -> list[Tensor]:
        """Every parameter once, in a stable order (the order of definition)."""
        return [p for _, p in self.named_parameters()]

    _buffer_names: tuple[str, ...] = ()  # attributes holding state that is saved but not trained

    def named_buffers(self, prefix: str = "") -> list[tuple[str, Tensor]]:
        """(dotted name, tensor) for every buffer (batch norm's running statistics): saved in
        state_dict with the parameters, never given to an optimizer."""
        found = [(prefix + n, getattr(self, n)) for n in self._buffer_names]
        for name, item in self._entries():
            if isinstance(item, Module):
                found.extend(item.named_buffers(prefix + name + "."))
        return found

    def buffers(self) -> list[Tensor]:
        return [b for _, b in self.named_buffers()]

    def _state(self) -> dict[str, Tensor]:
        return {**dict(self.named_parameters()), **dict(self.named_buffers())}

    def modules(self) -> list[Module]:
        """This module and every module below it."""
        found = [self]
        for _, item in self._entries():
            if isinstance(item, Module):
                found.extend(item.modules())
        return found

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active) for this module and all below it."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off)."""
        return self.train(False)

    def zero_grad(self) -> None:
        captured(_clear_grads, self.parameters(), effect="state")

    def state_dict(self) -> dict[str, np.ndarray]:
        """name -> a copy of each parameter's and buffer's array."""
        return {name: p.data.copy() for name, p in self._state().items()}

    def check_state(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Raise ValueError naming every missing, unexpected or wrongly shaped entry of a state
        with these names and shapes (before any array of it need be read)."""
        params = self._state()
        problems = []
        missing = [k for k in params if k not in shapes]
        unexpected = [k for k in shapes if k not in params]
        if missing:
            problems.append(f"missing {missing}")
        if unexpected:
            problems.append(f"unexpected {unexpected}")
        for name, p in params.items():
            if name in shapes and tuple(shapes[name]) != p.shape:
                problems.append(
                    f"{name} has shape {tuple(shapes[name])} in the state but {p.shape} in the model"
                )
        if problems:
            raise ValueError(
                f"load_state_dict({type(self).__name__}): "
                + "; ".join(problems)
                + "; build the model with the architecture the state was saved from"
            )

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters in place; every mismatch is named before anything changes."""
        self.check_state({name: np.shape(value) for name, value in state.items()})
        for name, p in self._state().items():
            p.data[...] = state[name]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _clear_grads(params) -> None:
    for p in params:
        p.grad = None
