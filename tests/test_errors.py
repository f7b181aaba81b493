"""Every user-facing error: typed, naming the op, the shapes or values, and the fix."""

import numpy as np
import pytest

import tinygrad_np as tg
from tinygrad_np import Op, Tensor, ops


def t(*shape, requires_grad=False):
    return Tensor(np.ones(shape), requires_grad=requires_grad)


def test_binary_shapes_do_not_broadcast():
    with pytest.raises(ValueError, match=r"mul: shapes \(2, 3\) and \(4,\) do not broadcast"):
        t(2, 3) * t(4)
    with pytest.raises(
        ValueError, match=r"add: shapes \(2, 3\) and \(2,\) do not broadcast.*unsqueeze"
    ):
        t(2, 3) + np.ones(2)


def test_matmul_inner_dimensions():
    with pytest.raises(
        ValueError,
        match=r"matmul: expected \(\.\.\., n, k\) @ \(\.\.\., k, m\), got "
        r"\(3, 4\) @ \(5, 2\): inner dimensions 4 and 5 differ; transpose",
    ):
        t(3, 4) @ t(5, 2)
    with pytest.raises(ValueError, match=r"matmul: got \(\) @ \(3,\); a 0-d operand"):
        t() @ t(3)
    with pytest.raises(ValueError, match=r"matmul: batch dimensions of \(2, 3, 4\) @ \(5, 4, 2\)"):
        t(2, 3, 4) @ t(5, 4, 2)


def test_reshape_to_a_wrong_size():
    with pytest.raises(
        ValueError, match=r"reshape: cannot reshape \(3, 4\) \(12 elements\) to \(5, 2\)"
    ):
        t(3, 4).reshape(5, 2)


def test_axis_out_of_range():
    with pytest.raises(
        ValueError, match=r"sum: axis 3 out of range for a 2-d tensor; use an axis in \[-2, 1\]"
    ):
        t(2, 3).sum(axis=3)
    with pytest.raises(ValueError, match=r"max: axis -3 out of range"):
        t(2, 3).max(axis=-3)
    with pytest.raises(ValueError, match=r"mean: repeated axis"):
        t(2, 3).mean(axis=(0, -2))
    with pytest.raises(ValueError, match=r"log_softmax: axis 2 out of range"):
        t(2, 3).log_softmax(axis=2)


def test_backward_on_a_non_scalar_without_grad():
    with pytest.raises(
        RuntimeError,
        match=r"needs a scalar \(size-1\) tensor, got shape \(2, 3\); "
        r"reduce first \(loss.mean\(\) or loss.sum\(\)\) or pass grad=",
    ):
        (t(2, 3, requires_grad=True) * 2.0).backward()


def test_backward_with_a_wrong_shape_grad():
    with pytest.raises(
        ValueError, match=r"backward\(\): grad has shape \(3,\), tensor has shape \(2, 3\)"
    ):
        (t(2, 3, requires_grad=True) * 2.0).backward(np.ones(3))


def test_backward_on_a_tensor_that_needs_no_grad():
    with pytest.raises(
        RuntimeError, match=r"does not require grad; create the inputs with requires_grad=True"
    ):
        t(2).sum().backward()


def test_requires_grad_on_an_integer_tensor():
    with pytest.raises(
        TypeError,
        match=r"requires_grad=True needs a floating dtype, got int64; "
        r"pass dtype=np.float32",
    ):
        Tensor([1, 2], dtype=np.int64, requires_grad=True)


def test_op_backward_with_a_wrong_shape_is_reported_as_a_bug_in_that_op():
    class BadSum(Op):
        def forward(self, x):
            return np.asarray(x.sum())

        def backward(self, grad):
            return (np.full(3, grad),)  # wrong: the input is (2, 3)

    with pytest.raises(
        RuntimeError,
        match=r"BadSum.backward returned a grad of shape \(3,\) \(float32\) "
        r"for input 0 of shape \(2, 3\) \(float32\): a bug in BadSum",
    ):
        BadSum.apply(t(2, 3, requires_grad=True)).backward()


def test_a_subclass_of_a_built_in_op_gets_its_gradients_checked():
    class WrongDtypeReLU(ops.ReLU):  # built-ins skip the engine's check; subclasses elsewhere don't
        def vjp(self, xp, g, out, x):
            return (super().vjp(xp, g, out, x)[0].astype(np.float64),)

    assert ops.ReLU._trusted and not WrongDtypeReLU._trusted
    with pytest.raises(
        RuntimeError,
        match=r"WrongDtypeReLU.vjp returned a grad of shape \(2,\) \(float64\) for input 0 "
        r"of shape \(2,\) \(float32\)",
    ):
        tg.apply(WrongDtypeReLU, t(2, requires_grad=True)).sum().backward()


def test_op_backward_returning_the_wrong_arity_or_none():
    class NoTuple(Op):
        def forward(self, x):
            return x * 2

        def backward(self, grad):
            return grad * 2

    class ForgetsInput(Op):
        def forward(self, x):
            return x * 2

        def backward(self, grad):
            return (None,)

    with pytest.raises(
        RuntimeError, match=r"NoTuple.backward must return a tuple with one entry per input"
    ):
        NoTuple.apply(t(2, requires_grad=True)).sum().backward()
    with pytest.raises(RuntimeError, match=r"ForgetsInput.backward returned None for input 0"):
        ForgetsInput.apply(t(2, requires_grad=True)).sum().backward()


def test_op_forward_that_changes_dtype_is_reported():
    class Upcasts(Op):
        def forward(self, x):
            return x.astype(np.float64)

    with pytest.raises(RuntimeError, match=r"Upcasts.forward returned float64 for float32 input"):
        Upcasts.apply(t(2))


def test_unsupported_operand_type():
    with pytest.raises(TypeError, match=r"unsupported operand"):
        t(2) + "a"
    with pytest.raises(TypeError, match=r"unsupported operand"):
        t(2) @ 3.0


def test_index_out_of_range():
    with pytest.raises(
        IndexError, match=r"index: index 5 is out of bounds .*\(tensor shape \(3,\)\)"
    ):
        t(3)[5]
    with pytest.raises(IndexError, match=r"index arrays must be integer or bool, got float64"):
        t(3)[np.array([0.0])]


def test_item_assignment_is_refused_with_the_alternative():
    with pytest.raises(TypeError, match=r"does not support item assignment.*where"):
        t(3)[0] = 1.0


def test_concatenate_shapes():
    with pytest.raises(
        ValueError,
        match=r"concatenate: tensor 1 has shape \(2, 4\), tensor 0 has \(2, 3\).*"
        r"except along axis 0",
    ):
        tg.concatenate([t(2, 3), t(2, 4)])
    with pytest.raises(ValueError, match=r"stack: needs at least one tensor"):
        tg.stack([])


def test_movement_errors():
    with pytest.raises(ValueError, match=r"squeeze: axis 0 of shape \(2, 1\) does not have size 1"):
        t(2, 1).squeeze(0)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) are not a permutation"):
        t(2, 3).transpose(0, 0)
    with pytest.raises(ValueError, match=r"expand: cannot broadcast \(2, 3\) to \(4, 3\)"):
        t(2, 3).expand(4, 3)


def test_item_and_len():
    with pytest.raises(ValueError, match=r"item\(\): needs a size-1 tensor, got shape \(2,\)"):
        t(2).item()
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor"):
        len(t())


def test_mixed_float_dtypes():
    with pytest.raises(TypeError, match=r"matmul: dtypes float32 and float64 differ"):
        t(2, 2) @ Tensor(np.ones((2, 2)), dtype=np.float64)


def test_op_backward_returning_a_non_array():
    class Scalar(Op):
        def forward(self, x):
            return x * 2

        def backward(self, grad):
            return (2.0,)

    with pytest.raises(
        RuntimeError, match=r"Scalar.backward returned a float for input 0; return an ndarray"
    ):
        Scalar.apply(t(2, requires_grad=True)).sum().backward()


def test_detect_anomaly_names_the_first_forward_op():
    x = Tensor([1.0, 0.0, 2.0], requires_grad=True)
    with tg.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(
            tg.AnomalyError,
            match=r"detect_anomaly: Log.forward produced inf \(output "
            r"shape \(3,\)\) from inputs of shapes \(3,\)$",
        ):
            (x * 2.0).log().exp()
    with np.errstate(divide="ignore"):  # outside the context nothing is checked
        assert np.isinf((x * 2.0).log().data).any()


def test_detect_anomaly_names_the_backward_op_and_says_when_inputs_were_bad():
    x = Tensor([4.0, 0.0], requires_grad=True)
    y = x.sqrt().sum()  # finite forward; d sqrt / dx at 0 is inf
    with tg.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(
            tg.AnomalyError, match=r"Pow.backward produced inf in the gradient of input 0"
        ):
            y.backward()
    with tg.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(
            tg.AnomalyError, match=r"Mul.forward produced NaN .*an input was already non-finite"
        ):
            Tensor([np.nan]) * 2.0


def test_detect_anomaly_as_decorator_and_quiet_when_finite():
    @tg.detect_anomaly()
    def fine(t):
        return (t * t).sum()

    x = Tensor([1.0, 2.0], requires_grad=True)
    fine(x).backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_softmax_family_finite_for_huge_float32_logits():
    from tinygrad_np.nn import functional as F

    logits = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], np.float32), requires_grad=True)
    assert np.isfinite(logits.softmax().data).all()
    log_p = logits.log_softmax().data
    assert log_p.dtype == np.float32 and np.isfinite(log_p).all()
    assert log_p[0, 0] == 0.0 and log_p[1, 1] == 0.0  # the winners, exactly
    loss = F.cross_entropy(logits, [0, 2])
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad).all()


def test_detect_anomaly_sees_unrecorded_matmul():
    with tg.no_grad(), tg.detect_anomaly(), np.errstate(over="ignore"):
        with pytest.raises(tg.AnomalyError, match=r"MatMul.forward produced inf"):
            Tensor(np.full((1, 2), 1e38, np.float32)) @ Tensor(np.full((2, 1), 1e38, np.float32))


def test_empty_reductions_and_losses_say_so():
    with pytest.raises(
        ValueError,
        match=r"mean: a tensor of shape \(0, 3\) has no elements to "
        r"average along axis 0",
    ):
        Tensor(np.zeros((0, 3))).mean(axis=0)
    with pytest.raises(ValueError, match=r"mean: a tensor of shape \(0,\) has no elements"):
        Tensor(np.zeros(0)).mean()
    assert Tensor(np.zeros((2, 0))).mean(axis=0).shape == (0,)  # an empty result is fine
    logits = Tensor(np.zeros((0, 10)), requires_grad=True)
    for grad in (True, False):
        logits.requires_grad = grad
        with pytest.raises(
            ValueError,
            match=r"cross_entropy: an empty batch \(logits of shape "
            r"\(0, 10\)\)",
        ):
            tg.nn.functional.cross_entropy(logits, np.zeros(0, np.int64))


def test_tensor_of_none_is_a_type_error():
    with pytest.raises(TypeError, match="Tensor: data is None"):
        Tensor(None)


def test_loss_errors_name_the_loss_and_the_fix():
    F = tg.nn.functional
    x = Tensor(np.full((2, 3), 0.5))
    with pytest.raises(
        ValueError,
        match=r"mse_loss: input of shape \(2, 3\) and target of shape "
        r"\(3,\); give a target of the input's shape",
    ):
        F.mse_loss(x, np.zeros(3))
    with pytest.raises(
        ValueError,
        match=r"l1_loss: reduction must be one of \('mean', 'sum', "
        r"'none'\), got 'avg'",
    ):
        F.l1_loss(x, np.zeros((2, 3)), reduction="avg")
    with pytest.raises(
        ValueError,
        match=r"binary_cross_entropy: input must hold probabilities in "
        r"\[0, 1\], got values in \[-1, 0.5\]; for logits use binary_cross_entropy_",
    ):
        F.binary_cross_entropy(Tensor([[-1.0, 0.5]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="huber_loss: delta must be > 0"):
        F.huber_loss(x, np.zeros((2, 3)), delta=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: Tensor(1.0).softmax(), r"^softmax: axis -1 out of range for a 0-d tensor"),
        (lambda: Tensor(np.ones(3)).log_softmax(axis=2), r"^log_softmax: axis 2 out of range"),
        (lambda: Tensor(np.ones(3)).logsumexp(axis=1), r"^logsumexp: axis 1 out of range"),
        (lambda: tg.stack([Tensor(np.ones(2))], axis=3), r"^stack: axis 3 out of range"),
        (lambda: Tensor(np.ones(2)).sum(axis=-2), r"^sum: axis -2 out of range"),
    ],
)
def test_axis_errors_are_numpys_axis_error_and_name_the_op_called(call, message):
    with pytest.raises(np.exceptions.AxisError, match=message) as caught:
        call()
    assert isinstance(caught.value, IndexError) and isinstance(caught.value, ValueError)


def test_var_without_degrees_of_freedom_says_so():
    with pytest.raises(ValueError, match=r"var: 1 element along the axis and ddof=1 leave no degree"):
        Tensor(np.ones((3, 1))).var(axis=1, ddof=1)
    assert Tensor(np.ones((3, 2))).std(dim=1, correction=1, keepdim=True).shape == (3, 1)


def test_std_names_itself_in_its_errors():
    with pytest.raises(ValueError, match=r"^std: 1 element along the axis and ddof=1"):
        Tensor(np.ones((3, 1))).std(axis=1, ddof=1)
    with pytest.raises(np.exceptions.AxisError, match=r"^std: axis 2 out of range"):
        Tensor(np.ones(3)).std(axis=2)
