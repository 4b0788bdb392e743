"""Every registered rule against its reference (torch.optim's class) over the option sets torch's
own tests use (optim_db) and the registry's extras, in float32 and float64, at every SIMD level
this CPU has, on parameters of every layout (0-d, empty, odd sizes, transposed, gapped, and one
large enough to be split across threads). Rule files keep only what is particular to a rule."""

from __future__ import annotations

import pytest
import torch

from conftest import assert_same_trajectory
from optimcore.testing import COMPILED as RULES, torch_inputs

CASES = [(rule, kwargs) for rule in RULES for kwargs in torch_inputs(rule)]


def _case_id(case) -> str:
    rule, kwargs = case
    return f"{rule.name}-" + ",".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_same_trajectory_as_torch(case, dtype, simd_level):
    rule, kwargs = case
    assert_same_trajectory(rule.reference, rule.cls, kwargs, dtype)
