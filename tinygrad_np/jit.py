"""Capture a training step once and replay it: ``tinygrad_np.jit``.

A capture runs the step eagerly while the engine, Tensor, the optimizers and the layers that draw
random numbers record every piece of array work as one instruction of a program: a kernel (a
rule's forward, one node's vjp, a gradient sum, a cast, a comparison) or an effect (a .grad handed
to a leaf, ``optimizer.step()``, ``zero_grad()``, a dropout mask drawn from its generator, a
schedule's step, gradient clipping). Slots hold the values: the step's array arguments (bound
anew each call), live reads of the tensors the step uses but did not make (parameters: their
``.data`` as it is at that point of each call), constants, and the kernels' outputs.

Replay binds the arguments and runs the instructions, touching no Tensor except to read a
parameter's data and hand out gradients, building no graph. Effects read their state when they
run, so a learning rate changed between calls, the Adam step count and fresh random draws are
what eager would see.

The first call with a new signature captures; the second captures again and compares the two
programs, so an array computed from the step's inputs outside tinygrad_np's operations (it would
be a constant replayed with the first call's values) is an error naming the op, not a silent
wrong answer; from the third call on, the step replays. Passes (the plain spelling's
cross-entropy fused, dead-code removal, in place where a buffer is dead, every temporary of the
kernels it knows in an array made once: buffers.py) run on the verified program; ``jit(fn,
passes=())`` turns them off.
"""

from __future__ import annotations

import collections
import functools
import operator
import sys

import numpy as np

from . import backend, ops
from .engine import _SOLE_REFS, ANOMALY, CAPTURING, JitError, check_finite, deliver, vjp_kernel
from .tensor import Tensor, finite_max

__all__ = ["jit", "JitError", "Program"]


class Slot:
    """A reference to the value in slot i of a program."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __repr__(self) -> str:
        return f"%{self.i}"


def forward_kernel(op, *arrays, **attrs):
    """A rule's (or a first-engine Op's) forward on numpy, its result an ndarray."""
    data = op.forward(backend, *arrays, **attrs) if op.is_rule else op.forward(*arrays, **attrs)
    return data if type(data) is np.ndarray else np.asarray(data)


def _read_data(t: Tensor) -> np.ndarray:
    """A tensor the step uses but did not make: its data as it is when the read runs."""
    return t.data


class Instruction:
    """outs = fn(*args, **kwargs); args and kwargs hold Slots and constants; outs is a slot index,
    a tuple of them (None for an entry not kept) or None. effect: it changes state, so it runs even
    when nothing reads its result."""

    __slots__ = ("fn", "args", "kwargs", "outs", "effect", "name", "nested")

    def __init__(self, fn, args, kwargs, outs, effect, name):
        self.fn, self.args, self.kwargs, self.outs, self.effect = fn, args, kwargs, outs, effect
        self.name = name
        self.nested = any(_has_slot(v) for v in kwargs.values()) or any(
            isinstance(a, (tuple, list)) and _has_slot(a) for a in args
        )

    def reads(self) -> set[int]:
        found: set[int] = set()
        _collect((self.args, tuple(self.kwargs.values())), found)
        return found

    def writes(self) -> tuple[int, ...]:
        if self.outs is None:
            return ()
        if isinstance(self.outs, int):
            return (self.outs,)
        return tuple(o for o in self.outs if o is not None)

    def __repr__(self) -> str:
        outs = ", ".join(f"%{o}" for o in self.writes()) or "-"
        args = ", ".join(_show(a) for a in self.args)
        return f"{outs} = {self.name}({args}){' !' if self.effect else ''}"


def _show(a) -> str:
    if isinstance(a, Slot):
        return repr(a)
    if isinstance(a, np.ndarray):
        return f"const{a.shape}"
    if isinstance(a, (tuple, list)) and _has_slot(a):
        return "(" + ", ".join(_show(x) for x in a) + ")"
    return type(a).__name__


def _has_slot(v) -> bool:
    if isinstance(v, Slot):
        return True
    if isinstance(v, (tuple, list)):
        return any(_has_slot(x) for x in v)
    return False


def _collect(v, found: set) -> None:
    if isinstance(v, Slot):
        found.add(v.i)
    elif isinstance(v, (tuple, list)):
        for x in v:
            _collect(x, found)


def _resolve(v, env):
    if isinstance(v, Slot):
        return env[v.i]
    if isinstance(v, tuple):
        return tuple(_resolve(x, env) for x in v)
    if isinstance(v, list):
        return [_resolve(x, env) for x in v]
    return v


class Capture:
    """The program being recorded while one call of the step runs eagerly."""

    def __init__(self, inputs: list[np.ndarray], arguments=()):
        self.arguments = {id(t) for t in arguments}  # the call's Tensor arguments
        self.code: list[Instruction] = []
        self.slot_of: dict[int, int] = {}  # id(array) -> slot
        self.alive: list = []  # every array seen, so that ids stay unique while recording
        self.constants: list[tuple[int, np.ndarray]] = []  # (instruction, array), for verify()
        self.meta: dict[int, tuple] = {}  # slot -> (shape, dtype) of its array: buffer planning's
        self.n = 0
        self.inputs = [self._new_slot(a) for a in inputs]
        # what the program knows of the state it does not make: per tensor, its .grad (after a
        # deliver) and its .data (after a live read), as the array object and a copy of its
        # values. A hand edit after that (p.grad *= 0.5, W.data.clip(...)) would not be
        # replayed: check() finds it before the next effect that reads or writes .grad or .data
        # (optimizer step, zero_grad, clipping, batch norm's running update) and at the end of
        # the capture. An edit before the step first reads the tensor is not seen.
        self.known_grads: dict[int, tuple] = {}
        self.known_data: dict[int, tuple] = {}

    def _new_slot(self, arr) -> int:
        i = self.n
        self.n += 1
        if isinstance(arr, np.ndarray):
            self.slot_of[id(arr)] = i
            self.alive.append(arr)
            self.meta[i] = (arr.shape, arr.dtype)
        return i

    def _ref(self, v):
        """v as an argument: a Slot for an array the program holds, else a constant."""
        if isinstance(v, np.ndarray):
            i = self.slot_of.get(id(v))
            if i is not None:
                return Slot(i)
            self.alive.append(v)
            self.constants.append((len(self.code), v))
            return v
        if isinstance(v, tuple):
            return tuple(self._ref(x) for x in v)
        if isinstance(v, list) and any(isinstance(x, np.ndarray) for x in v):
            return [self._ref(x) for x in v]
        return v

    def _outs(self, result):
        if result is None:
            return None
        if isinstance(result, tuple):  # one array returned twice (Add's vjp: g, g) is one slot
            seen: dict[int, int] = {}
            for r in result:
                if r is not None and id(r) not in seen:
                    seen[id(r)] = self._new_slot(r)
            return tuple(None if r is None else seen[id(r)] for r in result)
        return self._new_slot(result)

    def _run(self, fn, args, kwargs):
        CAPTURING.now = None  # a kernel's own work is not recorded again
        try:
            return fn(*args, **kwargs)
        finally:
            CAPTURING.now = self

    def call(self, fn, args, kwargs, effect: bool, name: str | None = None):
        """Run fn(*args, **kwargs) and record it."""
        name = name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
        if effect == "state":  # it reads or writes .grad / .data: they must be as recorded
            self.check(f"before {name}")
        result = self._run(fn, args, kwargs)
        if effect == "state":  # what it leaves is known
            self._refresh()
        refs = tuple(self._ref(a) for a in args)
        krefs = {k: self._ref(v) for k, v in kwargs.items()}
        outs = self._outs(result) if isinstance(result, (np.ndarray, tuple)) else None
        self.code.append(Instruction(fn, refs, krefs, outs, effect, name))
        return result

    def forward(self, op, parents, attrs) -> np.ndarray:
        """A rule's forward on the parents' arrays, recorded; a parent whose array the program
        does not hold (a parameter, a tensor made before the call) is read live."""
        arrays = []
        for p in parents:
            data = p.data
            if id(data) not in self.slot_of:
                self.call(_read_data, (p,), {}, False, name=f"read {_tensor_name(p)}")
                self.known_data[id(p)] = (p, data, data.copy())
            arrays.append(data)
        return self.call(forward_kernel, (op, *arrays), attrs, False, name=type(op).__name__)

    def deliver(self, leaf, g) -> None:
        """A leaf's gradient from the backward walk: adopted or added at replay, as eager does."""
        if id(leaf) in self.arguments:
            raise JitError(
                f"jit: the step computes the gradient of a Tensor argument ({_tensor_name(leaf)}, "
                f"requires_grad=True); a replay would give it to the first call's tensor. Keep "
                f"parameters in the model or a closure, and pass data as arrays or tensors "
                f"without requires_grad"
            )
        self._run(deliver, (leaf, g), {})  # the capture holds g too, so the leaf gets a copy
        self.code.append(Instruction(deliver, (leaf, self._ref(g)), {}, None, True, "deliver"))
        self.known_grads[id(leaf)] = (leaf, leaf.grad, leaf.grad.copy())

    def release(self) -> None:
        """Drop what only recording needed (every array seen, the snapshots of .grad and .data):
        a first capture waiting for its second (the epoch's last partial batch waits forever)
        keeps just its instructions and constants."""
        self.alive, self.slot_of = [], {}
        self.known_grads, self.known_data = {}, {}

    def _refresh(self) -> None:
        for known, attr in ((self.known_grads, "grad"), (self.known_data, "data")):
            for key, (t, arr, values) in list(known.items()):
                now = getattr(t, attr)
                if now is not arr or not _same_values(now, values):
                    known[key] = (t, now, None if now is None else now.copy())

    def check(self, where: str) -> None:
        """JitError if a .grad or .data the program knows was changed outside recorded calls."""
        for known, attr in ((self.known_grads, "grad"), (self.known_data, "data")):
            for t, arr, values in known.values():
                now = getattr(t, attr)
                if now is arr and (now is None or _same_values(now, values)):
                    continue
                fix = (
                    "clip with nn.utils.clip_grad_norm_ or clip_grad_value_ and clear with "
                    "optimizer.zero_grad() (they are recorded), or edit .grad outside the "
                    "jitted step"
                    if attr == "grad"
                    else "change parameters with Tensor operations or an optimizer, or edit "
                    ".data outside the jitted step (between calls: replays read it live)"
                )
                raise JitError(
                    f"jit: the step changed the .{attr} of a {_tensor_name(t)} by hand (found "
                    f"{where}); a replay would not repeat that. To change it: {fix}"
                )


def _same_values(a, b) -> bool:
    return (
        b is not None
        and a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    )


def _tensor_name(t) -> str:
    return f"tensor{t.shape}"


class Program:
    """A verified capture: instructions over n slots, the argument slots, the result template."""

    def __init__(self, code, n, inputs, template, outputs, passes, meta=None):
        self.code, self.n, self.inputs = code, n, inputs
        self.template, self.outputs = template, outputs
        results = set(o for o in outputs if isinstance(o, int))
        self.debug_code = None  # the program before buffer planning: what detect_anomaly() runs
        for p in passes:
            if PASSES[p] is buffers:
                self.debug_code = self.code
            self.code = PASSES[p](self.code, results, meta or {})
        self.free = self._frees(self.code)
        self.debug_code = self.debug_code or self.code
        self.debug_free = self._frees(self.debug_code)
        self.replay = self.compile()

    def _frees(self, code):
        """For each instruction, the slots whose last read it is: replay frees them after it."""
        last = {}
        for k, ins in enumerate(code):
            for i in ins.reads():
                last[i] = k
        keep = set(o for o in self.outputs if isinstance(o, int))
        free = [[] for _ in code]
        for i, k in last.items():
            if i not in keep:
                free[k].append(i)
        return free

    def __repr__(self) -> str:
        return "\n".join(repr(ins) for ins in self.code)

    def compile(self):
        """The program as one Python function of the argument arrays: each instruction a line
        that calls its kernel on local variables, each slot deleted after its last read."""
        names: dict[str, object] = {
            "ndarray": np.ndarray,
            "asarray": np.asarray,
            "backend": backend,
            "getrefcount": sys.getrefcount,
            "SOLE": _SOLE_REFS,
        }

        def const(v) -> str:
            name = f"k{len(names)}"
            names[name] = v
            return name

        def expr(v) -> str:
            if isinstance(v, Slot):
                return f"s{v.i}"
            if isinstance(v, tuple) and _has_slot(v):
                return "(" + "".join(expr(x) + ", " for x in v) + ")"
            if isinstance(v, list) and _has_slot(v):
                return "[" + ", ".join(expr(x) for x in v) + "]"
            return const(v)

        lines = [f"def replay({''.join(f's{i}, ' for i in self.inputs)}):"]
        for ins, free in zip(self.code, self.free):
            kw = "".join(f", {k}={expr(v)}" for k, v in ins.kwargs.items())
            if ins.fn is forward_kernel:
                op, *rest = ins.args
                call = const(op.forward)
                head = "backend, " if op.is_rule else ""
                args = head + ", ".join(expr(a) for a in rest)
                lines.append(f"    s{ins.outs} = {call}({args}{kw})")
                lines.append(f"    if type(s{ins.outs}) is not ndarray: s{ins.outs} = asarray(s{ins.outs})")
            elif ins.fn is vjp_kernel:
                op, *rest = ins.args
                call = const(op.vjp)
                targets = ", ".join("_" if o is None else f"s{o}" for o in ins.outs)
                lines.append(f"    {targets}, = {call}(backend, {', '.join(expr(a) for a in rest)})")
                for o in ins.outs:
                    if o is not None:
                        lines.append(f"    if type(s{o}) is not ndarray: s{o} = asarray(s{o})")
            elif ins.fn is deliver and isinstance(ins.args[1], Slot):
                # deliver() spelled out: adopt the gradient when this frame holds the only
                # reference (the same test as deliver's, one frame up), else deliver() adds it
                leaf, g = expr(ins.args[0]), expr(ins.args[1])
                lines.append(
                    f"    if {leaf}.grad is None and {g}.base is None and "
                    f"getrefcount({g}) <= SOLE and {g}.flags.writeable: {leaf}.grad = {g}"
                )
                lines.append(f"    else: {const(deliver)}({leaf}, {g})")
            elif ins.fn is _read_data:  # a parameter's data as it is now: an attribute read
                lines.append(f"    s{ins.outs} = {expr(ins.args[0])}.data")
            elif ins.fn is adopt:  # a planned gradient array: the leaf takes it, or adds it
                leaf, g = expr(ins.args[0]), expr(ins.args[1])
                lines.append(f"    if {leaf}.grad is None: {leaf}.grad = {g}")
                lines.append(f"    else: {const(adopt)}({leaf}, {g})")
            elif ins.fn is unshare:
                leaf, g = expr(ins.args[0]), expr(ins.args[1])
                lines.append(f"    if {leaf}.grad is {g}: {leaf}.grad = {g}.copy()")
            else:
                args = ", ".join(expr(a) for a in ins.args)
                target = f"s{ins.outs} = " if isinstance(ins.outs, int) else ""
                if isinstance(ins.outs, tuple):
                    target = ", ".join("_" if o is None else f"s{o}" for o in ins.outs) + ", = "
                lines.append(f"    {target}{const(ins.fn)}({args}{kw})")
            for i in free:
                lines.append(f"    del s{i}")
        outs = "".join((f"s{o}" if isinstance(o, int) else const(o)) + ", " for o in self.outputs)
        lines.append(f"    return ({outs})")
        self.source = "\n".join(lines)
        exec(compile(self.source, "<tinygrad_np.jit program>", "exec"), names)
        return names["replay"]

    def run(self, arrays):
        if not ANOMALY.get():
            return self.replay(*arrays)
        env = [None] * self.n
        for i, a in zip(self.inputs, arrays):
            env[i] = a
        anomaly = ANOMALY.get()
        for ins, free in zip(self.debug_code, self.debug_free):
            fn = ins.fn
            if fn is deliver:
                leaf, s = ins.args
                g = env[s.i]
                env[s.i] = None  # the gradient is the leaf's now, if nothing else holds it
                deliver(leaf, g)
                g = None
                continue
            if ins.nested:
                args = [_resolve(a, env) for a in ins.args]
                kwargs = {k: _resolve(v, env) for k, v in ins.kwargs.items()}
            else:
                args = [env[a.i] if type(a) is Slot else a for a in ins.args]
                kwargs = ins.kwargs
            result = fn(*args, **kwargs)
            outs = ins.outs
            if type(outs) is int:
                env[outs] = result
                if anomaly:
                    _check(ins, result, args)
            elif outs is not None:
                for o, r in zip(outs, result):
                    if o is not None:
                        env[o] = r
            for i in free:
                env[i] = None
            args = result = None
        return [env[o] if isinstance(o, int) else o for o in self.outputs]


def _check(ins, value, args) -> None:
    if isinstance(value, np.ndarray) and ins.fn is forward_kernel:
        check_finite(value, ins.name, [a for a in args[1:] if isinstance(a, np.ndarray)])


# --- passes: each a function from a program's instructions (and the result slots) to new ones ---


def dead_code(code: list, outputs: set, meta=None) -> list:
    """Drop every instruction that has no effect and whose results nothing later reads."""
    live = set(outputs)
    kept = []
    for ins in reversed(code):
        if ins.effect or any(o in live for o in ins.writes()):
            kept.append(ins)
            live |= ins.reads()
    kept.reverse()
    return kept


def producers(code) -> dict[int, int]:
    """slot -> the index of the instruction that writes it."""
    return {o: k for k, ins in enumerate(code) for o in ins.writes()}


def _op_of(ins):
    """The rule instance of a forward or vjp instruction, else None."""
    if ins.fn is forward_kernel or ins.fn is vjp_kernel:
        return ins.args[0]
    return None


def _is_rule(ins, name: str) -> bool:
    return ins.fn is forward_kernel and type(ins.args[0]).__name__ == name


def cross_entropy(code: list, outputs: set, meta=None) -> list:
    """-log_softmax(x)[arange(n), labels].mean(), the README's plain spelling, and its backward
    (about twenty kernels) into the fused CrossEntropy forward and its one-kernel gradient. The
    arithmetic differs (float32 rounding); labels must then lie in [0, classes), as for
    F.cross_entropy (a negative label is an error, not numpy's wrap-around)."""
    for k, ins in enumerate(code):
        if _is_rule(ins, "Index"):
            fused = _fuse_cross_entropy(code, k, outputs)
            if fused is not None:
                return cross_entropy(fused, outputs)  # the next one, if any
    return code


def _fuse_cross_entropy(code, k_index, outputs):
    made = producers(code)

    def producer(v, name=None):
        if not isinstance(v, Slot) or v.i not in made:
            return None
        ins = code[made[v.i]]
        return ins if name is None or _is_rule(ins, name) else None

    index = code[k_index]
    logp_slot = index.args[1]
    idx = index.kwargs.get("index")
    if not (isinstance(idx, tuple) and len(idx) == 2 and isinstance(idx[0], np.ndarray)):
        return None
    rows, labels = idx
    # logp = shifted + (-(expand(log(sum(exp(shifted))))))
    add2 = producer(logp_slot, "Add")
    if add2 is None:
        return None
    shifted, neg_slot = add2.args[1], add2.args[2]
    neg = producer(neg_slot, "Neg")
    expand = neg and producer(neg.args[1], "Expand")
    log = expand and producer(expand.args[1], "Log")
    total = log and producer(log.args[1], "Sum")
    exp = total and producer(total.args[1], "Exp")
    if exp is None or not (isinstance(exp.args[1], Slot) and exp.args[1].i == shifted.i):
        return None
    # shifted = x + negative(finite_max(x))
    add1 = producer(shifted, "Add")
    negative = add1 and producer(add1.args[2])
    fmax = negative is not None and negative.fn is np.negative and producer(negative.args[0])
    if not fmax or fmax.fn is not finite_max:
        return None
    x = add1.args[1]
    if not (isinstance(x, Slot) and fmax.args[0] is not None and fmax.args[0].i == x.i):
        return None
    # loss = -(sum(picked) * (1/n))
    read_by = readers(code)
    after = [code[j] for j in read_by.get(index.outs, ()) if code[j].fn is forward_kernel]
    if len(after) != 1 or not _is_rule(after[0], "Sum"):
        return None
    sum_all = after[0]
    after = [code[j] for j in read_by.get(sum_all.outs, ()) if code[j].fn is forward_kernel]
    if len(after) != 1 or not _is_rule(after[0], "Mul"):
        return None
    scale = after[0]
    after = [code[j] for j in read_by.get(scale.outs, ()) if code[j].fn is forward_kernel]
    if len(after) != 1 or not _is_rule(after[0], "Neg"):
        return None
    loss = after[0]
    n = len(rows)
    factor = producer(scale.args[2])
    if factor is None or factor.fn is not _read_data:
        return None
    value = factor.args[0].data
    if not (value.shape == () and value == np.asarray(1.0 / n, value.dtype)):
        return None
    if not np.array_equal(rows, np.arange(n)) or sum_all.kwargs.get("axis") not in (None, (0,)):
        return None
    chain = [fmax, negative, add1, exp, total, log, expand, neg, add2, index, sum_all, factor, scale, loss]
    ops_in_chain = {id(_op_of(c)) for c in chain if _op_of(c) is not None}
    doomed = {id(c) for c in chain}
    grads = [c for c in code if c.fn is vjp_kernel and id(c.args[0]) in ops_in_chain]
    # the gradient sums inside the chain: adds of two slots the chain's vjps made
    inner = {o for c in grads for o in c.writes()}
    sums = [c for c in code if c.fn is operator_add and c.reads() <= inner]
    inner |= {o for c in sums for o in c.writes()}
    x_grad = None
    for c in grads:
        if c.args[0] is add1.args[0]:  # the vjp of x + shift: its first output is x's gradient
            x_grad = c.outs[0]
    if grads and x_grad is None:
        return None
    removed = doomed | {id(c) for c in grads} | {id(c) for c in sums}
    made_by_removed = {o for c in code if id(c) in removed for o in c.writes()}
    keep_visible = {loss.outs} | ({x_grad} if x_grad is not None else set())
    for c in code:
        if id(c) not in removed and (c.reads() & made_by_removed) - keep_visible:
            return None  # an intermediate is used elsewhere: leave the chain as it is
    if (outputs & made_by_removed) - keep_visible:
        return None
    g_loss = next((c.args[1] for c in grads if c.args[0] is loss.args[0]), None)
    op = ops.CrossEntropy((x_grad is not None,))
    out = []
    for c in code:
        if c is loss:
            out.append(Instruction(forward_kernel, (op, x), {"labels": labels}, loss.outs, False, "CrossEntropy"))
        elif grads and c is grads[-1]:
            out.append(Instruction(vjp_kernel, (op, g_loss, Slot(loss.outs), x), {}, (x_grad,), False, "vjp CrossEntropy"))
        elif id(c) not in removed:
            out.append(c)
    return out


def readers(code) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for k, ins in enumerate(code):
        for i in ins.reads():
            found.setdefault(i, []).append(k)
    return found


operator_add = operator.add

# --- in place where a value is dead: the first step of buffer planning ---


class LinearInto(ops.Linear):
    """Linear's forward adding the bias into the product, which nothing else reads (as hand-written
    numpy does: h = x @ w; h += b). The same arithmetic, bit for bit."""

    def forward(self, xp, x, w, b, *, product=None):
        return np.add(product, b, out=product)


class LinearReLUInto(ops.LinearReLU):
    """LinearReLU with relu taken in place in the dead pre-activation, and the vjp's mask applied
    in place to a dead output gradient; the same arithmetic, bit for bit."""

    def __init__(self, needs_grad, forward_into: bool, vjp_into: bool):
        super().__init__(needs_grad)
        self.forward_into, self.vjp_into = forward_into, vjp_into

    def forward(self, xp, x, w, b, *, preact):
        if not self.forward_into:
            return super().forward(xp, x, w, b, preact=preact)
        return backend.relu(preact, out=preact)

    def vjp(self, xp, g, out, x, w, b):
        if not self.vjp_into:
            return super().vjp(xp, g, out, x, w, b)
        g *= out > 0
        return ops.Linear.vjp(self, xp, g, out, x, w, b)


def inplace(code: list, outputs: set, meta=None) -> list:
    """Compute into a buffer that is dead after the instruction, where the kernel's arithmetic
    allows it: Linear adds the bias into its product (fresh from MatMul), LinearReLU takes relu in
    its pre-activation (fresh from Linear) and masks its output gradient (fresh from a vjp) in
    place. A buffer qualifies only if a kernel made it (never an argument or a parameter's data),
    nothing reads it later, and the step does not return it."""
    read_by, made = readers(code), producers(code)

    def made_by(i):
        k = made.get(i)
        return None if k is None else (code[k].fn, type(_op_of(code[k])))

    def dead_after(v, k, kinds, others) -> bool:
        """v, a buffer made by one of kinds, is read last by instruction k, and not also as one
        of its other arguments, nor returned."""
        return (
            isinstance(v, Slot)
            and v.i not in outputs
            and read_by[v.i][-1] == k
            and made_by(v.i) in kinds
            and not any(isinstance(a, Slot) and a.i == v.i for a in others)
        )

    fresh_forward = {(forward_kernel, ops.MatMul), (forward_kernel, ops.Linear)}
    # vjps whose input gradient is a new array (g @ w.T); not CrossEntropy's (it may hand back
    # its residual) nor Add's (one array for both inputs)
    fresh_vjp = {(vjp_kernel, t) for t in (ops.Linear, ops.LinearReLU, ops.MatMul)}
    out = []
    for k, ins in enumerate(code):
        op = _op_of(ins)
        if ins.fn is forward_kernel and type(op) is ops.Linear:
            if dead_after(ins.kwargs.get("product"), k, fresh_forward, ins.args[1:]):
                ins = _with_op(ins, LinearInto(op.needs_grad))
        elif ins.fn is forward_kernel and type(op) is ops.LinearReLU:
            if dead_after(ins.kwargs.get("preact"), k, fresh_forward, ins.args[1:]):
                ins = _with_op(ins, LinearReLUInto(op.needs_grad, True, False))
        elif ins.fn is vjp_kernel and type(op) is ops.LinearReLU:
            if dead_after(ins.args[1], k, fresh_vjp, ins.args[2:]):
                ins = _with_op(ins, LinearReLUInto(op.needs_grad, False, True))
        out.append(ins)
    return out


def _with_op(ins, op):
    return Instruction(ins.fn, (op, *ins.args[1:]), ins.kwargs, ins.outs, ins.effect, ins.name)


# each pass: (instructions, result slots, slot -> (shape, dtype)) -> instructions
PASSES = {"cross_entropy": cross_entropy, "dead_code": dead_code, "inplace": inplace, "buffers": None}


# --- the decorator ---


def _flatten(args, kwargs):
    """The call's signature and the arrays it binds: Tensors and ndarrays by shape and dtype,
    Python scalars by value, other objects (a model, an optimizer) by identity."""
    sig, arrays = [], []
    for name, v in (enumerate(args) if not kwargs else [*enumerate(args), *sorted(kwargs.items())]):
        if isinstance(v, np.ndarray):  # the usual argument first: a batch
            sig.append((name, "array", v.shape, v.dtype.str))
            arrays.append(v)
        elif isinstance(v, Tensor):
            sig.append((name, "tensor", v.shape, v.dtype.str, v.requires_grad))
            arrays.append(v.data)
        elif isinstance(v, (bool, int, float, str, type(None), np.generic)):
            sig.append((name, "scalar", type(v).__name__, v))
        else:
            sig.append((name, "object", type(v).__name__, id(v)))
    return tuple(sig), arrays


def _describe(entry) -> str:
    name, kind, *rest = entry
    arg = f"argument {name}" if isinstance(name, int) else f"keyword {name}="
    if kind in ("tensor", "array"):
        return f"{arg}: {kind} of shape {rest[0]} and dtype {np.dtype(rest[1])}"
    if kind == "scalar":
        return f"{arg}: {rest[0]} {rest[1]!r}"
    return f"{arg}: a {rest[0]} object (id {rest[1]})"


class jit:
    """Capture fn, a training step, and replay it: ``@tinygrad_np.jit`` or ``jit(fn, passes=...)``.

    fn takes Tensors, ndarrays, Python scalars and objects (model, optimizer) and returns a Tensor,
    a tuple or list of them, or None. Calls 1 and 2 with a signature (argument shapes, dtypes,
    scalar values, object identities) run eagerly and are compared; calls from the third replay.
    A new signature captures again, keeping up to cache_size programs (on_change="error" raises
    JitError instead, naming the argument that changed). Inside fn, .item(), .numpy() and Python
    branching on a tensor's value raise JitError, and so does editing by hand a .grad after
    backward() gave it, or a parameter's .data after the step read it (found at capture: a replay
    would not repeat it; use optimizer.zero_grad(), nn.utils.clip_grad_norm_, clip_grad_value_,
    which are recorded, or edit between calls). An edit of a tensor the step has not yet read or
    given a gradient (p.grad = None, W.data *= 0.9 at the top of fn) is not detected.

    With the buffers pass (on by default) a parameter's .grad after a replay is an array the
    program reuses: the next replay writes the new gradient into it (as PyTorch's
    zero_grad(set_to_none=False) does). Copy a gradient you keep across calls; returned Tensors
    are never reused.
    """

    def __init__(self, fn=None, *, passes=("cross_entropy", "dead_code", "inplace", "buffers"), cache_size: int = 8, on_change="recapture"):
        if on_change not in ("recapture", "error"):
            raise ValueError(f"jit: on_change must be 'recapture' or 'error', got {on_change!r}")
        unknown = [p for p in passes if p not in PASSES]
        if unknown:
            raise ValueError(f"jit: unknown passes {unknown}; choose from {sorted(PASSES)}")
        self.fn, self.passes, self.cache_size, self.on_change = fn, tuple(passes), cache_size, on_change
        self.cache: collections.OrderedDict = collections.OrderedDict()  # signature -> Program
        self.pending: dict = {}  # signature -> the first capture, awaiting its check
        self.captures = 0  # how many calls were captured (eager); for tests and curiosity
        if fn is not None:
            functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if self.fn is None:  # @jit(passes=...) with arguments: decorate the function given
            (fn,) = args
            return jit(fn, passes=self.passes, cache_size=self.cache_size, on_change=self.on_change)
        sig, arrays = _flatten(args, kwargs)
        self._last_args = args
        program = self.cache.get(sig)
        if program is not None:
            self.cache.move_to_end(sig)
            return _rebuild(program.template, program.run(arrays))
        if self.on_change == "error" and (self.cache or self.pending) and sig not in self.pending:
            raise JitError(_changed(next(iter(self.pending or self.cache)), sig))
        return self._capture(sig, arrays, args, kwargs)

    def _capture(self, sig, arrays, args, kwargs):
        if CAPTURING.now is not None:
            raise JitError("jit: a jitted function called inside another jitted step; jit the outer one only")
        tensors = [v for v in (*args, *kwargs.values()) if isinstance(v, Tensor)]
        cap = Capture(arrays, tensors)
        CAPTURING.now = cap
        try:
            result = self.fn(*args, **kwargs)
            cap.check("at the end of the step")
        finally:
            CAPTURING.now = None
        self.captures += 1
        template, outputs = _outputs(result, cap)
        cap.release()
        first = self.pending.pop(sig, None)
        if first is None:
            self.pending[sig] = (cap, outputs)
        else:
            _verify(first[0], cap, first[1], outputs)
            self.cache[sig] = Program(cap.code, cap.n, cap.inputs, template, outputs, self.passes, cap.meta)
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return result

    def program(self, *args, **kwargs) -> Program | None:
        """The program a call with these arguments would replay (None before two captures)."""
        return self.cache.get(_flatten(args, kwargs)[0])


def _changed(old_sig, new_sig) -> str:
    for a, b in zip(old_sig, new_sig):
        if a != b:
            return (
                f"jit(on_change='error'): the step was captured with {_describe(a)}, and is "
                f"now called with {_describe(b)}; call it with the captured shapes (drop or pad the "
                f"last partial batch) or use on_change='recapture'"
            )
    return f"jit(on_change='error'): the step was captured with {len(old_sig)} arguments, now {len(new_sig)}"


def _outputs(result, cap):
    """The result's structure (a template) and, per Tensor in it, its slot (or a constant)."""
    outputs = []

    def walk(v):
        if isinstance(v, Tensor):
            i = cap.slot_of.get(id(v.data))
            outputs.append(v.data if i is None else i)
            return len(outputs) - 1
        if isinstance(v, (tuple, list)):
            return type(v)(walk(x) for x in v)
        if v is None:
            return None
        raise JitError(
            f"jit: the step returned a {type(v).__name__}; return Tensors (a loss, logits), a "
            f"tuple or list of them, or None, and call .item() on the result outside the step"
        )

    return ("tree", walk(result)), outputs


def _rebuild(template, values):
    _, tree = template
    if type(tree) is int:  # one Tensor, the usual loss: no walk
        return Tensor._wrap(values[tree])

    def build(v):
        if isinstance(v, int):
            return Tensor._wrap(values[v])
        if isinstance(v, (tuple, list)):
            return type(v)(build(x) for x in v)
        return None

    return build(tree)


def _verify(a: Capture, b: Capture, outs_a, outs_b) -> None:
    """Two captures of one signature must run the same kernels with the same constants."""
    if len(a.code) != len(b.code):
        raise JitError(
            f"jit: two calls with the same argument shapes ran different programs ({len(a.code)} "
            f"and {len(b.code)} kernels): the step branches on something other than its "
            f"arguments' shapes (a tensor's value, a counter); jit the part that does not"
        )
    for k, (x, y) in enumerate(zip(a.code, b.code)):
        if x.name != y.name or _shape(x.args) != _shape(y.args):
            raise JitError(
                f"jit: two calls with the same argument shapes ran different kernels at step {k}: "
                f"{x.name} then {y.name}; the step branches on something other than its "
                f"arguments' shapes"
            )
    for k, (x, y) in enumerate(zip(a.code, b.code)):
        if x.fn is _read_data and x.args[0] is not y.args[0]:  # a tensor made inside the step
            u, v = x.args[0].data, y.args[0].data
            if u.shape != v.shape or not np.array_equal(u, v, equal_nan=u.dtype.kind in "fc"):
                user = next((z.name for z in b.code[k + 1 :] if y.outs in z.reads()), "an op")
                raise JitError(
                    f"jit: {user} reads a tensor made inside the step from numpy work that is not "
                    f"a tinygrad_np operation (Tensor(array computed from an argument or from "
                    f".data)), and its values differ between two calls, so a replay would reuse "
                    f"the first call's. Compute it with Tensor operations, or pass it as an argument"
                )
    consts_b = collections.defaultdict(list)
    for k, arr in b.constants:
        consts_b[k].append(arr)
    consts_a = collections.defaultdict(list)
    for k, arr in a.constants:
        consts_a[k].append(arr)
    for k in sorted(set(consts_a) | set(consts_b)):
        xs, ys = consts_a.get(k, []), consts_b.get(k, [])
        same = len(xs) == len(ys) and all(
            x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
            for x, y in zip(xs, ys)
        )
        if not same:
            raise JitError(
                f"jit: {b.code[k].name} reads an array that differs between two calls but is "
                f"not made by tinygrad_np operations from the step's arguments, so a replay "
                f"would reuse the first call's values. Compute it with Tensor operations, or pass "
                f"it to the step as an argument (an array computed with numpy from an argument, "
                f"or from .data, is the usual cause)"
            )
    if len(outs_a) != len(outs_b):
        raise JitError("jit: two calls returned different structures")


def _shape(args):
    return tuple(type(a).__name__ for a in args)


from .buffers import adopt, buffers, unshare  # noqa: E402  (buffers.py builds on this module)

PASSES["buffers"] = buffers
