"""Adafactor, the per-tensor-reduction kind: matrices (batched), vectors and scalars on the
compiled core, equal to torch.optim.Adafactor over torch's own test inputs, with the same state
(factored row/col variances, float32 step); checkpoints both ways; torch's step for what the
kernel does not take; torch's errors before any write."""

from __future__ import annotations

import copy

import pytest
import torch

import optimcore
from optimcore.testing import BY_NAME, torch_inputs

INPUTS = torch_inputs(BY_NAME["Adafactor"]) + [dict(lr=0.05, eps=(1e-3, 1e-2), d=2.0,
                                                    weight_decay=0.01, maximize=True)]
TOL = {torch.float64: dict(rtol=1e-13, atol=1e-15), torch.float32: dict(rtol=2e-5, atol=1e-6)}


def _params(dtype):
    gen = torch.Generator().manual_seed(0)
    shapes = [(5, 7), (9,), (), (2, 3, 4), (1, 6), (70, 300)]
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_()
            for s in shapes]


def _run(cls, dtype, kwargs, steps=5, params=None, state_dict=None, start=0):
    params = params if params is not None else _params(dtype)
    opt = cls(params, **kwargs)
    if state_dict is not None:
        opt.load_state_dict(state_dict)
    for k in range(start, start + steps):
        gen = torch.Generator().manual_seed(100 + k)
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(dtype)
        opt.step()
    return params, opt


def _assert_same(ours, ref, dtype):
    (pa, oa), (pb, ob) = ours, ref
    for a, b in zip(pa, pb):
        torch.testing.assert_close(a.detach(), b.detach(), **TOL[dtype])
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for idx, entry in sb["state"].items():
        assert sa["state"][idx].keys() == entry.keys()
        for key, value in entry.items():
            assert sa["state"][idx][key].dtype == value.dtype
            torch.testing.assert_close(sa["state"][idx][key], value, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kwargs", INPUTS, ids=[str(k) for k in INPUTS])
def test_same_as_torch(kwargs, dtype):
    ours = _run(optimcore.Adafactor, dtype, kwargs)
    expected = ["torch"] if any(isinstance(v, torch.Tensor) and v.dtype != torch.float64
                                for v in kwargs.values()) else ["core"]
    assert ours[1].last_step_paths == expected
    _assert_same(ours, _run(torch.optim.Adafactor, dtype, kwargs), dtype)


@pytest.mark.parametrize("direction", ["torch_to_optimcore", "optimcore_to_torch"])
def test_checkpoint_interchange(direction):
    first, second = ((torch.optim.Adafactor, optimcore.Adafactor)
                     if direction == "torch_to_optimcore"
                     else (optimcore.Adafactor, torch.optim.Adafactor))
    params, opt = _run(first, torch.float64, dict(lr=0.01), steps=3)
    resumed = _run(second, torch.float64, dict(lr=0.01), steps=3, params=params,
                   state_dict=copy.deepcopy(opt.state_dict()), start=3)
    _assert_same(resumed, _run(torch.optim.Adafactor, torch.float64, dict(lr=0.01), steps=6),
                 torch.float64)


def test_non_contiguous_parameters_run_torchs_step():
    ref, ours = [], []
    for cls, out in ((torch.optim.Adafactor, ref), (optimcore.Adafactor, ours)):
        p = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        p = p.t().requires_grad_()
        opt = cls([p], lr=0.01)
        p.grad = torch.ones_like(p)
        opt.step()
        out.append((p.detach().clone(), opt))
    assert ours[0][1].last_step_paths == ["torch"]
    assert torch.equal(ours[0][0], ref[0][0])


@pytest.mark.parametrize("make_grad,match", [
    (lambda p: torch.sparse_coo_tensor([[0]], torch.ones(1, 3, dtype=torch.float64), (4, 3),
                                       check_invariants=True), "does not support sparse"),
])
def test_torchs_errors_before_any_write(make_grad, match):
    a = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    opt = optimcore.Adafactor([a, b], lr=0.01)
    a.grad = torch.ones(4, 3, dtype=torch.float64)
    b.grad = make_grad(b)
    before = a.detach().clone()
    with pytest.raises(RuntimeError, match=f"parameter 1: Adafactor {match}"):
        opt.step()
    assert torch.equal(a.detach(), before) and not opt.state


def test_empty_parameter_is_refused_before_any_write():
    a = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    empty = torch.nn.Parameter(torch.randn(0, dtype=torch.float64))
    opt = optimcore.Adafactor([a, empty], lr=0.01)
    a.grad, empty.grad = torch.ones(4, 3, dtype=torch.float64), torch.ones(0, dtype=torch.float64)
    before = a.detach().clone()
    with pytest.raises(ZeroDivisionError, match="parameter 1: Adafactor cannot step an empty"):
        opt.step()
    assert torch.equal(a.detach(), before) and not opt.state


def test_incomplete_state_is_refused_before_any_write():
    p = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    opt = optimcore.Adafactor([p], lr=0.01)
    p.grad = torch.ones(4, 3, dtype=torch.float64)
    opt.step()
    del opt.state[p]["col_var"]
    before = p.detach().clone()
    with pytest.raises(RuntimeError, match="state has no 'col_var'"):
        opt.step()
    assert torch.equal(p.detach(), before)


def test_tensors_split_across_threads_match_torch():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = []
        for cls in (torch.optim.Adafactor, optimcore.Adafactor):
            gen = torch.Generator().manual_seed(0)
            params = [torch.randn(200, 200, generator=gen, dtype=torch.float64).requires_grad_()
                      for _ in range(5)]
            runs.append(_run(cls, torch.float64, dict(lr=0.01), steps=3, params=params))
        _assert_same(runs[1], runs[0], torch.float64)
    finally:
        torch.set_num_threads(threads)
