"""Recurrent layers with PyTorch's names, shapes, gate order and initialisation: RNNCell, GRUCell,
LSTMCell, and the sequence layers RNN, GRU and LSTM built on the same step functions.

Weights are stored as PyTorch stores them: weight_ih (gates * hidden, input), weight_hh
(gates * hidden, hidden), bias_ih and bias_hh (gates * hidden,), gates 1 (RNN), 3 (GRU: r, z, n)
or 4 (LSTM: i, f, g, o). Every parameter is drawn from U(-1/sqrt(hidden), 1/sqrt(hidden)) in
that order (weight_ih, weight_hh, bias_ih, bias_hh; layer by layer) from an explicit
np.random.Generator. Each step is a composite of primitives, so any order of derivative works.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor, stack
from .functional import dropout
from .module import Module

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


# --- one step (x_part: x @ weight_ih.T + bias_ih, computed for all steps at once by the layers) ---


def _hidden_part(h: Tensor, w_hh: Tensor, b_hh) -> Tensor:
    out = h @ w_hh.T
    return out + b_hh if b_hh is not None else out


def rnn_step(x_part: Tensor, h: Tensor, w_hh: Tensor, b_hh, nonlinearity: str) -> Tensor:
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu."""
    pre = x_part + _hidden_part(h, w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def gru_step(x_part: Tensor, h: Tensor, w_hh: Tensor, b_hh) -> Tensor:
    """r = sig(x_r + h_r), z = sig(x_z + h_z), n = tanh(x_n + r * h_n), h' = (1 - z) n + z h,
    with x_* and h_* the thirds (r, z, n) of x W_ih^T + b_ih and h W_hh^T + b_hh."""
    k = h.shape[-1]
    hp = _hidden_part(h, w_hh, b_hh)
    r = (x_part[..., :k] + hp[..., :k]).sigmoid()
    z = (x_part[..., k : 2 * k] + hp[..., k : 2 * k]).sigmoid()
    n = (x_part[..., 2 * k :] + r * hp[..., 2 * k :]).tanh()
    return n + z * (h - n)  # (1 - z) n + z h


def lstm_step(x_part: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh) -> tuple[Tensor, Tensor]:
    """gates = x W_ih^T + b_ih + h W_hh^T + b_hh, split i, f, g, o; c' = sig(f) c + sig(i)
    tanh(g), h' = sig(o) tanh(c')."""
    k = h.shape[-1]
    gates = x_part + _hidden_part(h, w_hh, b_hh)
    i = gates[..., :k].sigmoid()
    f = gates[..., k : 2 * k].sigmoid()
    g = gates[..., 2 * k : 3 * k].tanh()
    o = gates[..., 3 * k :].sigmoid()
    c = f * c + i * g
    return o * c.tanh(), c


def _x_part(x: Tensor, w_ih: Tensor, b_ih) -> Tensor:
    out = x @ w_ih.T
    return out + b_ih if b_ih is not None else out


# --- shared checks and construction ---


def _sizes(name: str, input_size: int, hidden_size: int) -> None:
    if input_size < 1 or hidden_size < 1:
        raise ValueError(
            f"{name}: input_size and hidden_size must be positive, got "
            f"({input_size}, {hidden_size})"
        )


def _draw(module: Module, suffix: str, gates: int, input_size: int, hidden_size: int, bias: bool,
          rng: np.random.Generator, dtype) -> None:  # fmt: skip
    """weight_ih, weight_hh, bias_ih, bias_hh (+ suffix), drawn in that order as PyTorch does."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{type(module).__name__}: pass rng=np.random.default_rng(seed) (an explicit "
            f"np.random.Generator), got {type(rng).__name__}"
        )
    bound = 1.0 / math.sqrt(hidden_size)
    shapes = {
        "weight_ih": (gates * hidden_size, input_size),
        "weight_hh": (gates * hidden_size, hidden_size),
    }
    if bias:
        shapes.update(bias_ih=(gates * hidden_size,), bias_hh=(gates * hidden_size,))
    for name, shape in shapes.items():
        value = rng.uniform(-bound, bound, shape).astype(dtype)
        setattr(module, name + suffix, Tensor(value, requires_grad=True, dtype=dtype))
    if not bias:
        setattr(module, "bias_ih" + suffix, None)
        setattr(module, "bias_hh" + suffix, None)


def _check_input(name: str, x: Tensor, input_size: int, ndims: tuple[int, int], what: str) -> None:
    if x.ndim not in ndims or x.shape[-1] != input_size:
        raise ValueError(
            f"{name}: expected input of shape {what} with input_size {input_size}, got {x.shape}"
        )


def _check_state(name: str, h: Tensor, shape: tuple[int, ...], what: str) -> None:
    if h.shape != shape:
        raise ValueError(f"{name}: {what} has shape {h.shape}, expected {shape}")


# --- cells ---


class _Cell(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 rng: np.random.Generator, dtype=np.float32):  # fmt: skip
        _sizes(type(self).__name__, input_size, hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        _draw(self, "", GATES[self.mode], input_size, hidden_size, bias, rng, dtype)

    def _prepare(self, x):
        """x as (N, input) (unbatched (input,) gets N = 1 and is squeezed back), and a zero h."""
        name = type(self).__name__
        x = x if isinstance(x, Tensor) else Tensor(x, dtype=self.weight_ih.dtype)
        _check_input(name, x, self.input_size, (1, 2), "(batch, input_size) or (input_size,)")
        batched = x.ndim == 2
        if not batched:
            x = x.unsqueeze(0)
        return x, batched

    def _hidden(self, h, n: int, batched: bool, what: str = "hx"):
        if h is None:
            return Tensor(np.zeros((n, self.hidden_size)), dtype=self.weight_ih.dtype)
        h = h if isinstance(h, Tensor) else Tensor(h, dtype=self.weight_ih.dtype)
        expected = (n, self.hidden_size) if batched else (self.hidden_size,)
        _check_state(type(self).__name__, h, expected, what)
        return h if batched else h.unsqueeze(0)

    def _x_part(self, x):
        return _x_part(x, self.weight_ih, self.bias_ih)

    def __repr__(self) -> str:
        bias = "" if self.bias_ih is not None else ", bias=False"
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{bias})"


class RNNCell(_Cell):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu); forward(x, h=None) -> h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, rng: np.random.Generator,
                 dtype=np.float32):  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, rng=rng, dtype=dtype)

    def forward(self, x, h=None) -> Tensor:
        x, batched = self._prepare(x)
        h = self._hidden(h, x.shape[0], batched)
        out = rnn_step(self._x_part(x), h, self.weight_hh, self.bias_hh, self.nonlinearity)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", nonlinearity={self.nonlinearity!r})"


class GRUCell(_Cell):
    """PyTorch's GRU cell (gates r, z, n); forward(x, h=None) -> h'."""

    mode = "GRU"

    def forward(self, x, h=None) -> Tensor:
        x, batched = self._prepare(x)
        h = self._hidden(h, x.shape[0], batched)
        out = gru_step(self._x_part(x), h, self.weight_hh, self.bias_hh)
        return out if batched else out[0]


class LSTMCell(_Cell):
    """PyTorch's LSTM cell (gates i, f, g, o); forward(x, (h, c)=None) -> (h', c')."""

    mode = "LSTM"

    def forward(self, x, hx=None) -> tuple[Tensor, Tensor]:
        x, batched = self._prepare(x)
        n = x.shape[0]
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError("LSTMCell: the state must be a pair (h, c), or None for zeros")
        h = self._hidden(None if hx is None else hx[0], n, batched, "h")
        c = self._hidden(None if hx is None else hx[1], n, batched, "c")
        h, c = lstm_step(self._x_part(x), h, c, self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h[0], c[0])


# --- sequences ---


class _Recurrent(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 rng: np.random.Generator, dtype=np.float32):  # fmt: skip
        name = type(self).__name__
        _sizes(name, input_size, hidden_size)
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        if bidirectional:
            raise ValueError(
                f"{name}: bidirectional=True is not supported; run a second {name} on the "
                f"reversed sequence (x.flip(time axis)) and concatenate the outputs"
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout, self.rng = batch_first, dropout, rng
        for layer in range(num_layers):
            size = input_size if layer == 0 else hidden_size
            _draw(self, f"_l{layer}", GATES[self.mode], size, hidden_size, bias, rng, dtype)

    def _layer(self, layer: int):
        get = lambda name: getattr(self, f"{name}_l{layer}")  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _run(self, x, states):
        """x (L, N, input) or per batch_first; states: a list per layer of state tuples or None.
        Returns the last layer's outputs (L, N, hidden) and each layer's final state tuple."""
        name = type(self).__name__
        x = x if isinstance(x, Tensor) else Tensor(x, dtype=self.weight_ih_l0.dtype)
        layout = "(batch, seq, input_size)" if self.batch_first else "(seq, batch, input_size)"
        _check_input(name, x, self.input_size, (2, 3), f"{layout} or (seq, input_size)")
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        steps, n = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError(
                f"{name}: an empty sequence (input of shape {x.shape}); give one step or more"
            )
        final = []
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer(layer)
            if layer and self.dropout and self.training:
                x = dropout(x, self.dropout, True, rng=self.rng)
            x_part = _x_part(x, w_ih, b_ih)  # every step's input part in one product
            state = self._initial(states, layer, n, batched)
            outputs = []
            for t in range(steps):
                state = self._step(x_part[t], state, w_hh, b_hh)
                outputs.append(state[0])
            final.append(state)
            x = stack(outputs, 0)
        if not batched:
            return x[:, 0], [tuple(s[0] for s in st) for st in final]
        return (x.transpose(1, 0, 2) if self.batch_first else x), final

    def _initial(self, states, layer: int, n: int, batched: bool):
        count = 2 if self.mode == "LSTM" else 1
        if states is None:
            zero = Tensor(np.zeros((n, self.hidden_size)), dtype=self.weight_ih_l0.dtype)
            return (zero,) * count
        return tuple(s[layer] if batched else s[layer][None] for s in states)

    def _states(self, hx, batched_input: bool, what: tuple[str, ...]):
        """hx as a tuple of (num_layers, N, hidden) tensors (or (num_layers, hidden) unbatched)."""
        if hx is None:
            return None
        name = type(self).__name__
        dtype = self.weight_ih_l0.dtype
        hx = tuple(t if isinstance(t, Tensor) else Tensor(t, dtype=dtype) for t in hx)
        ndim = 3 if batched_input else 2
        for t, label in zip(hx, what):
            if t.ndim != ndim or t.shape[0] != self.num_layers or t.shape[-1] != self.hidden_size:
                raise ValueError(
                    f"{name}: {label} has shape {t.shape}, expected (num_layers={self.num_layers}, "
                    f"batch, hidden_size={self.hidden_size})"
                    + ("" if batched_input else " without the batch (the input is unbatched)")
                )
        return hx

    def _batched(self, x) -> bool:
        return np.ndim(x.data if isinstance(x, Tensor) else x) == 3

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
            f"num_layers={self.num_layers}, batch_first={self.batch_first})"
        )


def _stacked(final, k: int) -> Tensor:
    return stack([state[k] for state in final], 0)


class RNN(_Recurrent):
    """A stack of num_layers RNN layers (tanh or relu) over a sequence: forward(x, h0=None) ->
    (output, h_n), output (seq, batch, hidden) (batch first with batch_first), h_n (num_layers,
    batch, hidden). Parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, rng: np.random.Generator,
                 dtype=np.float32):  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, rng=rng, dtype=dtype)  # fmt: skip

    def _step(self, x_part, state, w_hh, b_hh):
        return (rnn_step(x_part, state[0], w_hh, b_hh, self.nonlinearity),)

    def forward(self, x, h0=None):
        states = self._states(None if h0 is None else (h0,), self._batched(x), ("h0",))
        out, final = self._run(x, states)
        return out, _stacked(final, 0)


class GRU(_Recurrent):
    """A stack of GRU layers: forward(x, h0=None) -> (output, h_n), as RNN."""

    mode = "GRU"

    def _step(self, x_part, state, w_hh, b_hh):
        return (gru_step(x_part, state[0], w_hh, b_hh),)

    def forward(self, x, h0=None):
        states = self._states(None if h0 is None else (h0,), self._batched(x), ("h0",))
        out, final = self._run(x, states)
        return out, _stacked(final, 0)


class LSTM(_Recurrent):
    """A stack of LSTM layers: forward(x, (h0, c0)=None) -> (output, (h_n, c_n)), h_n and c_n
    (num_layers, batch, hidden)."""

    mode = "LSTM"

    def _step(self, x_part, state, w_hh, b_hh):
        return lstm_step(x_part, state[0], state[1], w_hh, b_hh)

    def forward(self, x, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError("LSTM: the state must be a pair (h0, c0), or None for zeros")
        states = self._states(hx, self._batched(x), ("h0", "c0"))
        out, final = self._run(x, states)
        return out, (_stacked(final, 0), _stacked(final, 1))
