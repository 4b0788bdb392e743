"""Muon, whose momentum and update passes run on the core around torch's Newton-Schulz: equal to
torch.optim.Muon over torch's own test inputs, checkpoints both ways, torch's step for what the
kernels do not take, torch's errors before any write."""

from __future__ import annotations

import copy

import pytest
import torch

import optimcore
from optimcore.testing import BY_NAME, torch_inputs

INPUTS = torch_inputs(BY_NAME["Muon"]) + [dict(lr=0.02, nesterov=False, weight_decay=0.0),
                                          dict(lr=0.02, adjust_lr_fn="match_rms_adamw")]


def _run(cls, dtype, kwargs, steps=4, params=None, state_dict=None, start=0):
    gen = torch.Generator().manual_seed(0)
    params = params if params is not None else [
        torch.randn(s, generator=gen, dtype=dtype).requires_grad_()
        for s in ((6, 4), (3, 5), (64, 32))]
    opt = cls(params, **kwargs)
    if state_dict is not None:
        opt.load_state_dict(state_dict)
    for k in range(start, start + steps):
        g = torch.Generator().manual_seed(100 + k)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=dtype)
        opt.step()
    return params, opt


def _assert_same(ours, ref):
    (pa, oa), (pb, ob) = ours, ref
    for a, b in zip(pa, pb):
        assert torch.equal(a, b)
    for idx, entry in ob.state_dict()["state"].items():
        assert torch.equal(oa.state_dict()["state"][idx]["momentum_buffer"],
                           entry["momentum_buffer"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kwargs", INPUTS, ids=[str(k) for k in INPUTS])
def test_same_as_torch(kwargs, dtype):
    ours = _run(optimcore.Muon, dtype, kwargs)
    _assert_same(ours, _run(torch.optim.Muon, dtype, kwargs))
    tensor_lr = isinstance(kwargs.get("lr"), torch.Tensor)
    assert ours[1].last_step_paths == (["torch"] if tensor_lr else ["core"])


@pytest.mark.parametrize("direction", ["torch_to_optimcore", "optimcore_to_torch"])
def test_checkpoint_interchange(direction):
    first, second = ((torch.optim.Muon, optimcore.Muon) if direction == "torch_to_optimcore"
                     else (optimcore.Muon, torch.optim.Muon))
    params, opt = _run(first, torch.float64, dict(lr=0.01), steps=2)
    resumed = _run(second, torch.float64, dict(lr=0.01), steps=2, params=params,
                   state_dict=copy.deepcopy(opt.state_dict()), start=2)
    _assert_same(resumed, _run(torch.optim.Muon, torch.float64, dict(lr=0.01), steps=4))


def test_sparse_gradient_refused_before_any_write():
    a = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(torch.randn(4, 3))
    opt = optimcore.Muon([a, b], lr=0.01)
    a.grad = torch.ones(4, 3)
    b.grad = torch.sparse_coo_tensor([[0]], torch.ones(1, 3), (4, 3), check_invariants=True)
    before = a.detach().clone()
    with pytest.raises(RuntimeError, match="parameter 1: Muon does not support sparse"):
        opt.step()
    assert torch.equal(a.detach(), before) and not opt.state


def test_non_contiguous_parameter_runs_torchs_step():
    outs = []
    for cls in (torch.optim.Muon, optimcore.Muon):
        p = torch.randn(4, 6, generator=torch.Generator().manual_seed(1)).t().requires_grad_()
        opt = cls([p], lr=0.01)
        p.grad = torch.ones_like(p)
        opt.step()
        outs.append((p.detach().clone(), opt))
    assert torch.equal(outs[0][0], outs[1][0]) and outs[1][1].last_step_paths == ["torch"]
