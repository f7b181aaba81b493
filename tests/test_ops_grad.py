"""Every primitive and composite against central differences in float64, with a random cotangent."""

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import GRAD_CASES
from tinygrad_np import gradcheck, ops


def primitives() -> set[str]:
    return {
        name
        for name, obj in vars(ops).items()
        if isinstance(obj, type) and issubclass(obj, ops.Rule) and obj not in (ops.Rule, ops.Op)
    }


@pytest.fixture(autouse=True)
def check_every_gradient(monkeypatch):
    """Built-in ops skip the engine's per-gradient type/shape/dtype check; here they all get it."""
    for name in primitives():
        monkeypatch.setattr(getattr(ops, name), "_trusted", False)


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
# 120 draws a case in CI (25 in the dev profile): with test_higher_order's second-order draws,
# test_dtype's and test_ops_torch's, each case sees a few hundred inputs a run
@settings(max_examples=min(120, settings.default.max_examples))
@given(data=st.data())
def test_grad(name, data):
    case = GRAD_CASES[name]
    arrays, kwargs = data.draw(case.inputs)
    assert gradcheck(functools.partial(case.fn, **kwargs), *arrays)


def test_every_primitive_has_a_grad_case():
    missing = primitives() - set(GRAD_CASES)
    assert not missing, f"primitives without a gradient test: {sorted(missing)}"
