"""``autograd.grad``: gradients of outputs with respect to chosen inputs, returned (PyTorch's API).

With ``create_graph=True`` the walk runs the rules on the Tensor namespace (differentiable.py), so
the gradients it returns are Tensors on the graph: differentiate them again, to any order.
"""

from __future__ import annotations

import numpy as np

from . import backend, differentiable
from .engine import GRAD_ENABLED, walk
from .tensor import Tensor


def _tensors(x, what: str) -> tuple[list[Tensor], bool]:
    """x (a Tensor or a sequence of them) as a list, and whether it was a single Tensor."""
    if isinstance(x, Tensor):
        return [x], True
    try:
        items = list(x)
    except TypeError:
        raise TypeError(
            f"autograd.grad: {what} must be a Tensor or a sequence of Tensors, got "
            f"{type(x).__name__}"
        ) from None
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"autograd.grad: {what}[{i}] is a {type(t).__name__}, not a Tensor"
            )
    return items, False


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple:
    """The sum over outputs of d(output)/d(input) contracted with grad_outputs, one per input.

    outputs, inputs: a Tensor or a sequence of Tensors (inputs may be intermediate tensors, not only
    leaves). grad_outputs: one per output (a Tensor, an array or None); None means ones, allowed for
    a size-1 output. Returns a tuple of Tensors, one per input, and leaves every ``.grad`` as it was.
    create_graph=True records the gradient computation, so the results can be differentiated
    again. The graph is kept when retain_graph is True or, by default, when create_graph is. An
    input the outputs do not depend on is an error, or None with allow_unused=True.
    """
    outs, _ = _tensors(outputs, "outputs")
    ins, _ = _tensors(inputs, "inputs")
    if not outs:
        raise ValueError("autograd.grad: outputs is empty; give the Tensors to differentiate")
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outs):
        raise ValueError(
            f"autograd.grad: {len(grad_outputs)} grad_outputs for {len(outs)} outputs; give one "
            f"per output (None for ones on a size-1 output)"
        )
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(
                f"autograd.grad: inputs[{i}] (shape {t.shape}) does not require grad; create it "
                f"with requires_grad=True"
            )
    seeds = []
    for i, (out, g) in enumerate(zip(outs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(
                f"autograd.grad: outputs[{i}] (shape {out.shape}) does not require grad: it was "
                f"not computed from a tensor that requires grad (or was made under no_grad())"
            )
        seeds.append(_seed(out, g, i, create_graph))
    if retain_graph is None:
        retain_graph = create_graph
    xp = differentiable if create_graph else backend
    token = GRAD_ENABLED.set(True) if create_graph else None
    try:
        found = walk(outs, seeds, xp, retain_graph, wanted=set(ins))
    finally:
        if token is not None:
            GRAD_ENABLED.reset(token)
    results = []
    for i, t in enumerate(ins):
        g = found.get(t)
        if g is None and not allow_unused:
            raise RuntimeError(
                f"autograd.grad: inputs[{i}] (shape {t.shape}) was not used to compute the "
                f"outputs; pass allow_unused=True to get None for it"
            )
        if g is not None and not isinstance(g, Tensor):
            g = Tensor._wrap(np.array(g))  # an array of its own: the walk may share gradients
        results.append(g)
    return tuple(results)


def _seed(out: Tensor, g, i: int, create_graph: bool):
    """The gradient that outputs[i] receives: grad_outputs[i], or ones for a size-1 output."""
    if g is None:
        if out.size != 1:
            raise RuntimeError(
                f"autograd.grad: outputs[{i}] has shape {out.shape}; ones are implied only for a "
                f"size-1 output, so pass grad_outputs (a tensor of that shape) or reduce first"
            )
        g = np.ones(out.shape, out.dtype)
    if create_graph:
        g = g if isinstance(g, Tensor) else Tensor._wrap(np.asarray(g))
        value = g.data
    else:
        value = g = np.asarray(g.data if isinstance(g, Tensor) else g)
    if value.shape != out.shape:
        raise ValueError(
            f"autograd.grad: grad_outputs[{i}] has shape {value.shape}, outputs[{i}] has "
            f"{out.shape}; give one of the output's shape"
        )
    if value.dtype != out.dtype:
        if create_graph:
            g = g.astype(out.dtype)
        else:
            g = value.astype(out.dtype)
    return g
