"""Central-difference gradients and gradcheck, in float64. Public: users check their own ops with it."""

from __future__ import annotations

import numpy as np

from .autodiff import vjp
from .engine import no_grad
from .tensor import Tensor, concatenate


class GradcheckError(AssertionError):
    """backward() disagrees with central differences (or the function cannot be checked)."""


def _evaluate(fn, arrays) -> np.ndarray:
    out = fn(*[Tensor(a, dtype=np.float64) for a in arrays])
    if not isinstance(out, Tensor):
        raise GradcheckError(
            f"gradcheck: the function must return a Tensor, got {type(out).__name__}"
        )
    return out.data


def numerical_grads(fn, arrays, cotangent: np.ndarray, eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of sum(fn(*xs) * cotangent) w.r.t. each input, element by element, in float64."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    with no_grad():
        for x in arrays:
            g = np.zeros_like(x)
            for idx in np.ndindex(x.shape):
                orig = x[idx]
                x[idx] = orig + eps
                plus = np.sum(_evaluate(fn, arrays) * cotangent)
                x[idx] = orig - eps
                minus = np.sum(_evaluate(fn, arrays) * cotangent)
                x[idx] = orig
                g[idx] = (plus - minus) / (2 * eps)
            grads.append(g)
    return grads


def gradcheck(
    fn,
    *arrays,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    seed: int = 0,
    order: int = 1,
) -> bool:
    """Check fn's derivatives against central differences, every element of every input, in float64.

    fn takes one Tensor per array and returns a Tensor. The output is contracted with a random
    cotangent (never all ones, which would hide a backward that forgets to multiply by grad).
    order=2 checks the gradient of the gradient: the vjp of fn with a fixed random cotangent v,
    as a function of the inputs, is itself checked at order 1 (so its own vjp, the second
    derivative, meets central differences with another random cotangent); order=3 goes once more.
    Returns True, or raises GradcheckError naming the input, the number of bad elements and the
    worst element's analytic and numeric values (and the order).
    """
    if not arrays:
        raise GradcheckError("gradcheck: give at least one input array")
    if order not in (1, 2, 3):
        raise ValueError(f"gradcheck: order must be 1, 2 or 3, got {order!r}")
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    if order > 1:
        out = _evaluate(fn, arrays)
        v = np.random.default_rng(seed + 1000 * order).standard_normal(out.shape)
        try:
            return gradcheck(
                _vjp_function(fn, v),
                *arrays,
                eps=eps,
                rtol=rtol,
                atol=atol,
                seed=seed,
                order=order - 1,
            )
        except GradcheckError as e:
            raise GradcheckError(f"order {order}: {e}") from None
    xs = [Tensor(a.copy(), dtype=np.float64, requires_grad=True) for a in arrays]
    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise GradcheckError(
            f"gradcheck: the function must return a Tensor, got {type(out).__name__}"
        )
    if not np.all(np.isfinite(out.data)):
        raise GradcheckError(f"gradcheck: the output is not finite at these inputs: {out.data!r}")
    cotangent = np.random.default_rng(seed).standard_normal(out.shape)
    if out.requires_grad:
        out.backward(cotangent)
    numeric = numerical_grads(fn, arrays, cotangent, eps)
    for i, (x, num) in enumerate(zip(xs, numeric)):
        analytic = np.zeros_like(num) if x.grad is None else x.grad  # unused input: zero gradient
        if analytic.shape != num.shape:
            raise GradcheckError(
                f"input {i}: gradient shape {analytic.shape}, input shape {num.shape}"
            )
        bad = ~np.isclose(analytic, num, rtol=rtol, atol=atol)
        if bad.any():
            worst = np.unravel_index(np.argmax(np.abs(analytic - num)), num.shape)
            raise GradcheckError(
                f"input {i} (shape {num.shape}): {int(bad.sum())} of {num.size} elements differ; "
                f"worst at {tuple(int(w) for w in worst)}: analytic {analytic[worst]:.10g}, "
                f"numeric {num[worst]:.10g} (rtol={rtol}, atol={atol})"
            )
    return True


def gradgradcheck(fn, *arrays, **kwargs) -> bool:
    """gradcheck(fn, *arrays, order=2): PyTorch's name for the second-order check."""
    return gradcheck(fn, *arrays, order=2, **kwargs)


def _vjp_function(fn, v: np.ndarray):
    """xs -> every input's gradient of sum(fn(*xs) * v), flattened and joined: a function whose
    derivative is fn's second derivative (recorded: the rules run on the Tensor namespace)."""

    def vjp_of_fn(*xs):
        _, pull = vjp(fn, *xs)
        grads = pull(Tensor(v, dtype=np.float64))
        return concatenate([g.reshape(-1) for g in grads])

    return vjp_of_fn
