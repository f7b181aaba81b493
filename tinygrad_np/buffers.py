"""The jit's buffer planning pass: every temporary of a replayed step in an array made once.

``buffers(code, outputs, meta)`` rewrites the kernels it knows (2-D matmul, Linear, LinearReLU,
the fused cross-entropy and their vjps) into kernels that write with ``out=`` into arrays made
when the program is built, with the same arithmetic, bit for bit. Arrays are shared by liveness:
a temporary's array goes back to a pool after its last read and serves the next temporary of its
shape and dtype. A gradient handed to a parameter keeps an array of its own: after a replay,
``p.grad`` is that array, overwritten by the next replay (as PyTorch's ``zero_grad(set_to_none=
False)`` reuses its gradients): copy a gradient you keep across calls. With SGD and Adam, whose
updates compute into scratch arrays (optim/base.py), a replayed step of the README's MLP makes no
new arrays but its returned loss (tests/test_jit.py counts them with tracemalloc).

Not planned, so allocating as before: a kernel it does not know, a value the step returns (it must
outlive the next call), a value read by a kernel it does not know is planned but never shared
(that kernel might keep a view of it).
"""

from __future__ import annotations

import collections
import operator

import numpy as np

from . import backend, ops
from .engine import accumulate, deliver, vjp_kernel
from .jit import Instruction, Slot, LinearInto, LinearReLUInto, readers, forward_kernel

__all__ = ["buffers", "adopt", "unshare"]


def adopt(leaf, g: np.ndarray) -> None:
    """deliver() for a planned gradient array: the leaf takes it (its own from now on), or adds it
    to the gradient it has (out of place, as eager)."""
    if leaf.grad is None:
        leaf.grad = g
    else:
        accumulate(leaf, g)


def unshare(leaf, g: np.ndarray) -> None:
    """Before a kernel writes the planned gradient array g: if the leaf still holds g as its .grad
    (no zero_grad since the last call: gradients accumulate), the leaf keeps a copy."""
    if leaf.grad is g:
        leaf.grad = g.copy()


class Kernel:
    """A planned kernel: fn(*arrays) writing into its arrays; name for the program's listing."""

    __slots__ = ("fn", "name")

    def __init__(self, fn, name: str):
        self.fn, self.name = fn, name

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return self.name


class _CrossEntropyPlan:
    """ops.CrossEntropy's forward and gradient for logits (n, c) and labels (n,), into arrays made
    once: the same operations in the same order (backend.row_max, row_sums, cross_entropy_grad)."""

    def __init__(self, op, n: int, c: int, dtype):
        self.op, self.n, self.c = op, n, c
        self.rows = np.arange(n)
        self.by_columns = n >= 32 and c <= 32  # backend.row_max's choice
        # one block for all of it: a step runs this right after large matmuls have filled the
        # caches, and a few contiguous arrays, each reused in place, miss less than nine
        block = np.empty(2 * n * c + 3 * n, dtype)
        self.t = block[: n * c].reshape(c, n)  # x transposed, for the row max
        self.probs = block[n * c : 2 * n * c].reshape(n, c)  # x - max, then exp, then / sums
        self.m, self.sums, self.picked = block[2 * n * c :].reshape(3, n)
        self.base = np.arange(n, dtype=np.intp) * c  # row i's first element, flat
        self.idx = np.empty(n, np.intp)
        self.ones = backend.constant(1, c, np.dtype(dtype))
        self.m_col, self.sums_col = self.m[:, None], self.sums[:, None]
        self.flat_probs = self.probs.reshape(-1)

    def forward(self, x, *, labels):
        labels = ops.check_labels(labels, self.n, self.c)
        probs, sums = self.probs, self.sums
        if self.by_columns:
            np.copyto(self.t, x.T)
            np.max(self.t, axis=0, out=self.m)
        else:
            np.max(x, axis=1, out=self.m)
        np.subtract(x, self.m_col, out=probs)  # shifted
        # the flat index of each row's label (uint64 labels would promote to float64 with intp)
        np.add(self.base, labels.astype(np.intp, copy=False), out=self.idx)
        np.take(self.flat_probs, self.idx, out=self.picked, mode="clip")  # in range: checked
        np.exp(probs, out=probs)
        np.matmul(probs, self.ones, out=sums)
        np.divide(probs, self.sums_col, out=probs)
        # the rule's residuals too, should its vjp run unplanned (as ops.CrossEntropy leaves them)
        self.op.probs, self.op.rows, self.op.labels = probs, self.rows, labels
        np.log(sums, out=sums)
        np.subtract(sums, self.picked, out=sums)
        return np.asarray(sums.sum() / self.n, dtype=x.dtype)  # the loss: a new array, returned

    def vjp_into(self, dx):
        """The gradient kernel writing into dx: g * (softmax(x) - onehot(labels)) / n."""
        flat, probs, idx, picked, n = dx.reshape(-1), self.probs, self.idx, self.picked, self.n

        def vjp(g):
            scale = float(g) / n
            np.multiply(probs, scale, out=dx)
            np.take(flat, idx, out=picked, mode="clip")
            np.subtract(picked, scale, out=picked)
            np.put(flat, idx, picked, mode="clip")
            return (dx,)

        return vjp


def _relu_into(shape, dtype, o=None):
    """relu(p) into o (None: into p), as backend.relu: against an array of zeros, made once."""
    zeros = np.zeros(shape, dtype)
    zeros.flags.writeable = False
    return lambda p: np.maximum(p, zeros, out=p if o is None else o)


def _bias_into(rows):
    """o += b for o (n, m) and b (m,), through rows, an (n, m) array b is copied into: numpy's
    broadcasting add would allocate a scratch buffer of up to 8,192 elements per call; the copy
    and a plain add cost the same (measured at (32..512, 10..256) float32)."""

    def add(o, b):
        np.copyto(rows, b)
        return np.add(o, rows, out=o)

    return add


def _linear_grads(needs, n, dtype, gx, gw, gb):
    """Linear's (and MatMul's) vjp for 2-D g (n rows), x, w into gx, gw, gb (None: not needed),
    as a function of (g, x, w)."""
    dx, dw, db = needs[0], needs[1], len(needs) > 2 and needs[2]
    ones = backend.constant(1, n, np.dtype(dtype))  # backend.column_sums: ones @ g
    count = len(needs)

    def grads(g, x, w):
        if dx:
            np.matmul(g, w.T, out=gx)
        if dw:
            np.matmul(x.T, g, out=gw)
        if db:
            np.matmul(ones, g, out=gb)
        return (gx, gw, gb)[:count]

    return grads


def buffers(code: list, outputs: set, meta: dict) -> list:
    """Rewrite the kernels this module knows to write into arrays made once, shared by liveness.
    meta: slot -> (shape, dtype) of the array it held at capture."""
    last = {i: ks[-1] for i, ks in readers(code).items()}
    delivered = collections.defaultdict(list)  # slot -> the leaves it is delivered to
    for ins in code:
        if ins.fn is deliver and isinstance(ins.args[1], Slot):
            delivered[ins.args[1].i].append(ins.args[0])
    # kernels that write into their input (the inplace pass's): the output is the input's array
    alias = {}  # output slot -> input slot
    for ins in code:
        op = ins.args[0] if ins.fn is forward_kernel else None
        if isinstance(op, LinearInto):
            alias[ins.outs] = ins.kwargs["product"].i
        elif isinstance(op, LinearReLUInto) and op.forward_into:
            alias[ins.outs] = ins.kwargs["preact"].i

    def root(i):
        while i in alias:
            i = alias[i]
        return i

    # a group with a returned slot, or delivered twice or to two leaves, keeps fresh arrays; so
    # does what a returned value may be a view of (the inputs of a kernel not planned here, such
    # as a transpose or a reshape, that made it, and so on back)
    returned = set(outputs)
    for ins in reversed(code):
        if returned.intersection(ins.writes()) and not _makes_new_arrays(ins):
            returned |= ins.reads()
    refused = {root(i) for i in returned}
    refused |= {root(i) for i, leaves in delivered.items() if len(leaves) > 1}
    pool = collections.defaultdict(list)  # (shape, dtype) -> arrays free for the next temporary
    array_of: dict[int, np.ndarray] = {}  # root slot -> its array
    live: dict[int, set] = {}  # root slot -> the slots of its group not yet read for the last time
    shareable: dict[int, bool] = {}
    plans: dict[int, _CrossEntropyPlan] = {}  # id(CrossEntropy op) -> its plan

    def plannable(i) -> bool:
        return i is not None and i in meta and i not in alias and root(i) not in refused

    def take(i) -> np.ndarray:
        shp, dtype = meta[i]
        free = pool[(shp, np.dtype(dtype))]
        arr = free.pop() if free and i not in delivered else np.empty(shp, dtype)
        array_of[i], live[i], shareable[i] = arr, {i}, i not in delivered
        return arr

    out = []
    for k, ins in enumerate(code):
        new = _plan(ins, plannable, take, plans, meta)
        if new is not None:
            for o in ins.writes():  # a gradient array a leaf may still hold: it keeps a copy
                for leaf in delivered.get(o, ()) if o in array_of else ():
                    out.append(Instruction(unshare, (leaf, array_of[o]), {}, None, True, "unshare"))
            ins = new
        elif ins.fn is deliver and isinstance(ins.args[1], Slot) and ins.args[1].i in array_of:
            ins = Instruction(adopt, ins.args, {}, None, True, "adopt")
        elif not (ins.outs in alias or ins.fn is deliver):
            for i in ins.reads():  # read by a kernel that might keep a view of it: never shared
                if root(i) in array_of:
                    shareable[root(i)] = False
        out.append(ins)
        if ins.outs in alias and root(ins.outs) in live:  # the group lives on in the output
            live[root(ins.outs)].add(ins.outs)
        # give back the arrays whose slots are all read for the last time here (or never read)
        for i in ins.reads() | set(ins.writes()):
            r = root(i)
            if last.get(i, k) <= k and r in live:
                live[r].discard(i)
                if not live[r]:
                    del live[r]
                    if shareable[r]:
                        arr = array_of[r]
                        pool[(arr.shape, arr.dtype)].append(arr)
    return out


_FRESH = (ops.MatMul, ops.Linear, ops.LinearReLU, ops.CrossEntropy)  # their outputs are new arrays


def _makes_new_arrays(ins) -> bool:
    """True for the kernels whose outputs never view their inputs (the kinds planned here; the
    inplace pass's write into an input, which the alias groups follow)."""
    if ins.fn is operator.add:
        return True
    return ins.fn in (forward_kernel, vjp_kernel) and isinstance(ins.args[0], _FRESH)


def _plan(ins, plannable, take, plans, meta):
    """The planned form of one instruction (its output arrays taken), or None."""
    def two_d(*vs):
        return all(isinstance(v, Slot) and v.i in meta and len(meta[v.i][0]) == 2 for v in vs)

    if ins.fn is operator.add:  # a gradient sum (a parameter used twice)
        a, b = ins.args
        if not (isinstance(a, Slot) and isinstance(b, Slot) and plannable(ins.outs)):
            return None
        if not (meta.get(a.i) == meta.get(b.i) == meta[ins.outs]):
            return None
        o = take(ins.outs)
        return _kernel(lambda a, b: np.add(a, b, out=o), "add into", ins, (a, b))
    if ins.fn not in (forward_kernel, vjp_kernel):
        return None
    op, *args = ins.args
    kind = type(op)
    if ins.fn is forward_kernel and isinstance(op, LinearReLUInto) and op.forward_into:
        preact = ins.kwargs["preact"]  # relu in the dead pre-activation (the inplace pass's)
        if preact.i in meta:
            shp, dtype = meta[preact.i]
            return _kernel(_relu_into(shp, dtype), "LinearReLU into preact", ins, (preact,))
    if ins.fn is forward_kernel and isinstance(op, LinearInto) and two_d(ins.kwargs["product"]):
        shp, dtype = meta[ins.kwargs["product"].i]
        return _kernel(_bias_into(np.empty(shp, dtype)), "Linear into product", ins, (ins.kwargs["product"], args[2]))
    if ins.fn is forward_kernel:
        if kind is ops.CrossEntropy and two_d(args[0]):
            (n, c), dtype = meta[args[0].i]
            plan = plans[id(op)] = _CrossEntropyPlan(op, n, c, dtype)
            return _kernel(plan.forward, "CrossEntropy into", ins, args, ins.kwargs)
        if not plannable(ins.outs):
            return None
        if kind is ops.MatMul and two_d(*args):
            o = take(ins.outs)
            return _kernel(lambda x, w: np.matmul(x, w, out=o), "MatMul into", ins, args)
        if kind is ops.Linear and two_d(args[0], args[1]):
            o = take(ins.outs)
            product = ins.kwargs.get("product")
            add_bias = _bias_into(np.empty(meta[ins.outs][0], meta[ins.outs][1]))
            if product is not None:  # the product is read again: the sum goes into o

                def linear(p, b):
                    np.copyto(o, p)
                    return add_bias(o, b)

                return _kernel(linear, "Linear into", ins, (product, args[2]))
            return _kernel(lambda x, w, b: add_bias(np.matmul(x, w, out=o), b), "Linear into", ins, args)
        if kind is ops.LinearReLU:
            o = take(ins.outs)
            return _kernel(_relu_into(o.shape, o.dtype, o), "LinearReLU into", ins, (ins.kwargs["preact"],))
        return None
    # a vjp: args are (g, out, *inputs), outs one slot (or None) per input
    g = args[0]
    if kind is ops.CrossEntropy:
        if id(op) not in plans or not plannable(ins.outs[0]):
            return None
        return _kernel(plans[id(op)].vjp_into(take(ins.outs[0])), "vjp CrossEntropy into", ins, (g,))
    if kind not in (ops.MatMul, ops.Linear, ops.LinearReLU, LinearInto, LinearReLUInto):
        return None
    x, w = args[2], args[3]
    needs = op.needs_grad
    if not two_d(g, x, w) or len(ins.outs) != len(needs):
        return None
    if any((o is not None) != need or (need and not plannable(o)) for o, need in zip(ins.outs, needs)):
        return None
    arrays = [take(o) if o is not None else None for o in ins.outs]
    arrays += [None] * (3 - len(arrays))
    shp, dtype = meta[g.i]
    grads = _linear_grads(needs, shp[0], dtype, *arrays)
    if kind in (ops.MatMul, ops.Linear, LinearInto):
        return _kernel(grads, f"vjp {kind.__name__} into", ins, (g, x, w))
    mask = np.empty(shp, bool)
    work = None if getattr(op, "vjp_into", False) else np.empty(shp, dtype)  # None: g is dead, ours

    def linear_relu(g, out, x, w):
        np.greater(out, 0, out=mask)  # g * (out > 0)
        return grads(np.multiply(g, mask, out=g if work is None else work), x, w)

    return _kernel(linear_relu, "vjp LinearReLU into", ins, (g, args[1], x, w))


def _kernel(fn, name, ins, args, kwargs=None):
    return Instruction(Kernel(fn, name), tuple(args), kwargs or {}, ins.outs, False, name)
