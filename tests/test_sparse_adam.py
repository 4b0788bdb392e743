"""SparseAdam, the row-sparse kind: the touched rows on the compiled core, identical to
torch.optim.SparseAdam (options, dtypes, several embeddings, empty gradients, checkpoints both
ways), torch's step for gradients the kernel does not take, errors before any write."""

from __future__ import annotations

import copy

import pytest
import torch

import optimcore


def _train(cls, dtype, kwargs, steps=6, tables=2, start=0, state_dict=None, weights=None):
    torch.manual_seed(0)
    embs = [torch.nn.Embedding(40 + 7 * i, 5 + i, sparse=True).to(dtype) for i in range(tables)]
    params = [e.weight for e in embs]
    if weights is not None:
        with torch.no_grad():
            for p, w in zip(params, weights):
                p.copy_(w)
    opt = cls(params, **kwargs)
    if state_dict is not None:
        opt.load_state_dict(state_dict)
    for k in range(start, start + steps):
        opt.zero_grad()
        loss = sum(e(torch.tensor([k % 9, 3, 3, 11 + k, 2 * k % 13])).pow(2).sum() * (i + 1)
                   for i, e in enumerate(embs))
        loss.backward()
        opt.step()
    return params, opt


def _assert_same(a, b):
    (pa, oa), (pb, ob) = a, b
    for x, y in zip(pa, pb):
        torch.testing.assert_close(x.detach(), y.detach(), rtol=1e-6 if x.dtype == torch.float32
                                   else 1e-13, atol=0)
    sa, sb = oa.state_dict(), ob.state_dict()
    for idx, entry in sb["state"].items():
        assert sa["state"][idx]["step"] == entry["step"]
        assert type(sa["state"][idx]["step"]) is type(entry["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(sa["state"][idx][key], entry[key], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kwargs", [{}, dict(lr=0.01), dict(lr=0.05, maximize=True),
                                    dict(lr=0.02, betas=(0.5, 0.9), eps=1e-4)])
def test_same_as_torch(dtype, kwargs):
    ours = _train(optimcore.SparseAdam, dtype, kwargs)
    assert ours[1].last_step_paths == ["core"]
    _assert_same(ours, _train(torch.optim.SparseAdam, dtype, kwargs))


@pytest.mark.parametrize("direction", ["torch_to_optimcore", "optimcore_to_torch"])
def test_checkpoint_interchange(direction):
    first, second = ((torch.optim.SparseAdam, optimcore.SparseAdam)
                     if direction == "torch_to_optimcore"
                     else (optimcore.SparseAdam, torch.optim.SparseAdam))
    params, opt = _train(first, torch.float64, dict(lr=0.01), steps=3)
    sd = copy.deepcopy(opt.state_dict())
    weights = [p.detach().clone() for p in params]
    resumed = _train(second, torch.float64, dict(lr=0.01), steps=3, start=3, state_dict=sd,
                     weights=weights)
    _assert_same(resumed, _train(torch.optim.SparseAdam, torch.float64, dict(lr=0.01), steps=6))


def test_dense_gradient_is_refused_before_any_write():
    a = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    opt = optimcore.SparseAdam([a, b], lr=0.1)
    a.grad = torch.sparse_coo_tensor([[0, 2]], torch.ones(2, 3, dtype=torch.float64), (4, 3),
                                     check_invariants=True)
    b.grad = torch.ones(4, 3, dtype=torch.float64)
    before = a.detach().clone()
    with pytest.raises(RuntimeError, match="parameter 1: SparseAdam does not support dense"):
        opt.step()
    assert torch.equal(a.detach(), before) and not opt.state


def test_bfloat16_runs_torchs_step():
    e = torch.nn.Embedding(10, 4, sparse=True).to(torch.bfloat16)
    opt = optimcore.SparseAdam(e.parameters(), lr=0.01)
    e(torch.tensor([1, 2])).float().sum().backward()
    opt.step()
    assert opt.last_step_paths == ["torch"]


def _coo(indices, values, shape):
    # check_invariants=False: the point is a gradient torch does not check
    return torch.sparse_coo_tensor(torch.tensor([indices]), values, shape,
                                   check_invariants=False)


def test_out_of_range_row_is_refused_before_any_write():
    a = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    opt = optimcore.SparseAdam([a, b], lr=0.1)
    a.grad = _coo([0, 2], torch.ones(2, 3, dtype=torch.float64), (4, 3))
    b.grad = _coo([1, 4], torch.ones(2, 3, dtype=torch.float64), (4, 3))  # row 4 of 4 rows
    before = a.detach().clone()
    with pytest.raises(IndexError, match="parameter 1: sparse gradient row index out of bounds"):
        opt.step()
    assert torch.equal(a.detach(), before) and not opt.state


def test_gradient_values_aliasing_the_parameter_run_torchs_step():
    outs = []
    for cls in (torch.optim.SparseAdam, optimcore.SparseAdam):
        p = torch.nn.Parameter(torch.arange(18, dtype=torch.float64).view(6, 3) / 10)
        opt = cls([p], lr=0.1)
        p.grad = torch.sparse_coo_tensor(torch.tensor([[1, 2, 3, 4, 5]]), p.detach()[:-1],
                                         (6, 3), is_coalesced=True, check_invariants=False)
        opt.step()
        outs.append((p.detach().clone(), opt.state[p]["exp_avg"].clone(), opt))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    assert outs[1][2].last_step_paths == ["torch"]


def test_incomplete_state_is_refused_before_any_write():
    p = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    opt = optimcore.SparseAdam([p], lr=0.1)
    opt.state[p] = {"step": 3}
    p.grad = _coo([0], torch.ones(1, 3, dtype=torch.float64), (4, 3))
    before = p.detach().clone()
    with pytest.raises(RuntimeError, match="state has no 'exp_avg'"):
        opt.step()
    assert torch.equal(p.detach(), before) and opt.state[p] == {"step": 3}
