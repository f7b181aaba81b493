"""The baseline: the same MLP written by hand in numpy, with explicit matrix-calculus backward.

float32 throughout, in place where it helps (bias add, ReLU mask, softmax gradient, momentum): the
honest best a user writes by hand. Used by bench_mlp.py and checked there against tinygrad_np.
"""

from __future__ import annotations

import numpy as np


class NumpyMLP:
    """ReLU MLP + softmax cross-entropy, trained with SGD (momentum as torch.optim.SGD, dampening 0)."""

    def __init__(
        self, weights: list[tuple[np.ndarray, np.ndarray]], lr: float, momentum: float = 0.0
    ):
        self.params = [(w.astype(np.float32), b.astype(np.float32)) for w, b in weights]
        self.lr, self.momentum = lr, momentum
        self.bufs = (
            [(np.zeros_like(w), np.zeros_like(b)) for w, b in self.params] if momentum else None
        )
        self.first = True

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer (the input first); the last entry is the logits."""
        acts = [x]
        for i, (w, b) in enumerate(self.params):
            h = acts[-1] @ w
            h += b
            if i < len(self.params) - 1:
                self.activate(h)
            acts.append(h)
        return acts

    def activate(self, h: np.ndarray) -> None:
        """The hidden layers' activation, in place: ReLU."""
        np.maximum(h, 0, out=h)

    def activation_grad(self, grad: np.ndarray, a: np.ndarray) -> None:
        """grad times the activation's derivative at output a, in place: the ReLU mask."""
        grad *= a > 0

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One SGD step on a batch; returns the mean cross-entropy before the update."""
        acts = self.forward(x)
        logits = acts[-1]
        n = len(y)
        rows = np.arange(n)
        logits -= logits.max(axis=1, keepdims=True)  # stable: shift each row by its max
        probs = np.exp(logits)
        sums = probs.sum(axis=1, keepdims=True)
        loss = float(np.log(sums).sum() - logits[rows, y].sum()) / n
        probs /= sums
        probs[rows, y] -= 1.0
        probs *= 1.0 / n
        grad = probs  # d loss / d logits
        grads = []
        for i in range(len(self.params) - 1, -1, -1):
            w, _ = self.params[i]
            grads.append((acts[i].T @ grad, grad.sum(axis=0)))
            if i:
                grad = grad @ w.T
                self.activation_grad(grad, acts[i])  # from the layer's output
        self._update(grads[::-1])
        return loss

    def _update(self, grads) -> None:
        lr, m = self.lr, self.momentum
        for k, ((w, b), (gw, gb)) in enumerate(zip(self.params, grads)):
            if m:
                bw, bb = self.bufs[k]
                if self.first:
                    bw[...], bb[...] = gw, gb
                else:
                    bw *= m
                    bw += gw
                    bb *= m
                    bb += gb
                gw, gb = bw, bb
            w -= lr * gw
            b -= lr * gb
        self.first = False

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[-1]


class TunedNumpyMLP(NumpyMLP):
    """The same step with the four faster numpy formulations tinygrad_np's ops use (ops.py, top).

    For reference only: a hand-writer rarely knows them. ReLU against an array of zeros (numpy 2.4's
    loop for a scalar operand is 3-4x slower), the softmax row max over a transposed copy, and the
    softmax row sums and bias gradients as matrix-vector products with ones.
    """

    def __init__(self, weights, lr, momentum=0.0):
        super().__init__(weights, lr, momentum)
        self.zeros, self.ones = {}, {}

    def _const(self, cache, shape, fill):
        if shape not in cache:
            cache[shape] = np.full(shape, fill, np.float32)
        return cache[shape]

    def activate(self, h):
        np.maximum(h, self._const(self.zeros, h.shape, 0), out=h)

    def step(self, x, y):
        acts = self.forward(x)
        logits = acts[-1]
        n, c = logits.shape
        rows = np.arange(n)
        logits -= logits.T.copy().max(axis=0)[:, None]
        probs = np.exp(logits)
        sums = probs @ self._const(self.ones, c, 1)
        loss = float((np.log(sums) - logits[rows, y]).sum() / n)  # divided in float32
        probs /= sums[:, None]
        probs *= 1.0 / n  # then subtract 1/n at the labels: the order of tinygrad_np's rounding
        probs[rows, y] -= 1.0 / n
        grad, ones = probs, self._const(self.ones, n, 1)
        grads = []
        for i in range(len(self.params) - 1, -1, -1):
            w, _ = self.params[i]
            grads.append((acts[i].T @ grad, ones @ grad))
            if i:
                grad = grad @ w.T
                self.activation_grad(grad, acts[i])
        self._update(grads[::-1])
        return loss
