"""LAMB against torch_optimizer.Lamb (torch-optimizer 0.3.0) under matching options: float32
and float64, with and without weight decay, debias, adam, clamp; several groups; a scheduler;
its checkpoint loads."""

from __future__ import annotations

import copy

import pytest
import torch

import optimcore
from optimcore.testing import reference_class

torch_optimizer = pytest.importorskip("torch_optimizer")

TOL = {torch.float64: dict(rtol=1e-11, atol=1e-13), torch.float32: dict(rtol=2e-5, atol=1e-6)}
OPTIONS = [dict(), dict(weight_decay=0.01), dict(debias=True, lr=0.01),
           dict(adam=True, weight_decay=0.1), dict(clamp_value=0.5, eps=1e-8, lr=0.02)]


def run(cls, dtype, steps=20, sched=None, state=None, **kw):
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
          for s in [(), (7,), (5, 3), (64, 33)]]
    opt = cls([{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-3}], **kw)
    if state is not None:
        opt.load_state_dict(state)
    scheduler = sched(opt) if sched else None
    for _ in range(steps):
        for p in ps:
            p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype)
        opt.step()
        if scheduler:
            scheduler.step()
    return ps, opt


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kw", OPTIONS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items())
                         or "defaults")
def test_same_trajectory_as_torch_optimizer(dtype, kw, simd_level):
    ref, ref_opt = run(torch_optimizer.Lamb, dtype, **kw)
    ours, opt = run(optimcore.LAMB, dtype, **kw)
    assert opt.last_step_paths == ["core", "core"]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[dtype])
    for p, q in zip(ours, ref):  # the diagnostics torch_optimizer keeps
        for key in ("weight_norm", "adam_norm"):
            assert float(opt.state[p][key]) == pytest.approx(float(ref_opt.state[q][key]),
                                                             rel=1e-5)
    ours, _ = run(reference_class(optimcore.LAMB), dtype, **kw)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_scheduler():
    def sched(opt):
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=20)
    ref, _ = run(torch_optimizer.Lamb, torch.float64, sched=sched, weight_decay=0.01)
    ours, _ = run(optimcore.LAMB, torch.float64, sched=sched, weight_decay=0.01)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[torch.float64])


def test_torch_optimizer_checkpoint_continues():
    whole, _ = run(torch_optimizer.Lamb, torch.float64, steps=10, debias=True)
    first, ref = run(torch_optimizer.Lamb, torch.float64, steps=4, debias=True)
    state = copy.deepcopy(ref.state_dict())
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_()
          for s in [(), (7,), (5, 3), (64, 33)]]
    with torch.no_grad():
        for p, q in zip(ps, first):
            p.copy_(q)
    opt = optimcore.LAMB([{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-3}], debias=True)
    opt.load_state_dict(state)
    assert opt.param_groups[0]["debias"] is True
    for _ in range(4):
        for p in ps:
            torch.randn(p.shape, generator=g, dtype=torch.float64)
    for _ in range(6):
        for p in ps:
            p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
        opt.step()
    for a, b in zip(ps, whole):
        torch.testing.assert_close(a, b, **TOL[torch.float64])


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=0.0), "Invalid learning rate"), (dict(betas=(1.0, 0.9)), "index 0"),
    (dict(clamp_value=-1.0), "clamp value"), (dict(weight_decay=-1.0), "weight_decay"),
])
def test_constructor_validation(kwargs, words):
    with pytest.raises(ValueError, match=words):
        optimcore.LAMB([torch.zeros(2, requires_grad=True)], **kwargs)


def test_weight_decay_zero_keeps_an_infinite_weight_to_itself():
    """With weight_decay=0 the step has no wd * p term (as torch_optimizer): one infinite
    weight does not turn the tensor into NaN."""
    results = []
    for cls in (torch_optimizer.Lamb, optimcore.LAMB):
        p = torch.tensor([float("inf"), 1.0, 2.0], requires_grad=True)
        opt = cls([p])
        p.grad = torch.ones(3)
        opt.step()
        results.append((p.detach().clone(), float(opt.state[p]["adam_norm"])))
    torch.testing.assert_close(results[1][0], results[0][0])
    assert results[1][1] == pytest.approx(results[0][1], rel=1e-6)


@pytest.mark.parametrize("cls", [optimcore.LAMB, optimcore.SWATS], ids=["LAMB", "SWATS"])
def test_meta_device_takes_the_torch_path(cls):
    p = torch.empty(3, device="meta", requires_grad=True)
    opt = cls([p])
    p.grad = torch.empty(3, device="meta")
    opt.step()
    assert opt.last_step_paths == ["torch"]


def test_short_betas_edit_names_the_key():
    p = torch.zeros(2, requires_grad=True)
    opt = optimcore.LAMB([p])
    opt.param_groups[0]["betas"] = (0.9,)
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        opt.step()
