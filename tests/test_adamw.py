"""optimcore.AdamW against torch.optim.AdamW."""

import itertools

import pytest
import torch

import optimcore
from conftest import assert_same_trajectory

OPTIONS = [
    dict(lr=1e-2, weight_decay=wd, amsgrad=a, maximize=m)
    for wd, a, m in itertools.product([0.0, 1e-2, 0.3], [False, True], [False, True])
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kwargs", OPTIONS, ids=str)
def test_matches_torch(kwargs, dtype, simd_level):
    assert_same_trajectory(torch.optim.AdamW, optimcore.AdamW, kwargs, dtype)


def test_defaults_match_torch():
    p = [torch.zeros(3, requires_grad=True)]
    assert optimcore.AdamW(p).defaults == torch.optim.AdamW(p).defaults
    assert isinstance(optimcore.AdamW(p), optimcore.Adam)


def test_loading_adam_state_keeps_decoupled_weight_decay():
    p = [torch.zeros(3, requires_grad=True)]
    adam = torch.optim.Adam(p, weight_decay=0.1)
    opt = optimcore.AdamW(p)
    opt.load_state_dict(adam.state_dict())
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
