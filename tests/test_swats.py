"""SWATS: its Adam phase equals torch_optimizer.SWATS's (which follows the paper there), it
switches to SGD where the projected rate converges, the SGD phase is the paper's, the phase and
rates survive checkpoints, and schedulers scale the learned rate."""

from __future__ import annotations

import copy
import io

import pytest
import torch

import optimcore
from optimcore.testing import reference_class

F64 = torch.float64


def problem(dtype=F64):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 20, generator=g, dtype=dtype)
    y = (X @ torch.randn(20, generator=g, dtype=dtype) > 0).to(dtype)

    def loss_fn(w, b):
        return torch.nn.functional.binary_cross_entropy_with_logits(X @ w + b, y) \
            + 1e-3 * (w * w).sum()
    return loss_fn


def run(cls, steps, dtype=F64, state=None, start=None, sched=None, **kw):
    loss_fn = problem(dtype)
    w = torch.zeros(20, dtype=dtype, requires_grad=True)
    b = torch.zeros((), dtype=dtype, requires_grad=True)
    if start is not None:
        with torch.no_grad():
            w.copy_(start[0])
            b.copy_(start[1])
    opt = cls([w, b], **kw)
    if state is not None:
        opt.load_state_dict(state)
    scheduler = sched(opt) if sched else None
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w, b).backward()
        opt.step()
        if scheduler:
            scheduler.step()
    return (w.detach().clone(), b.detach().clone()), opt


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("kw", [dict(), dict(amsgrad=True, weight_decay=1e-2)],
                         ids=["plain", "amsgrad-wd"])
def test_adam_phase_equals_torch_optimizer(dtype, kw, simd_level):
    torch_optimizer = pytest.importorskip("torch_optimizer")
    ref, ref_opt = run(torch_optimizer.SWATS, 30, dtype, lr=1e-2, eps=1e-8, **kw)  # its eps: 1e-3
    assert all(g["phase"] == "ADAM" for g in ref_opt.param_groups)
    ours, opt = run(optimcore.SWATS, 30, dtype, lr=1e-2, switch_tolerance=0.0, **kw)
    assert opt.last_step_paths == ["core"]
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == F64 else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
def test_core_equals_its_torch_ops_step_across_the_switch(dtype):
    ours, opt = run(optimcore.SWATS, 200, dtype, lr=1e-2, switch_tolerance=1e-3)
    ref, ref_opt = run(reference_class(optimcore.SWATS), 200, dtype, lr=1e-2,
                       switch_tolerance=1e-3)
    ours_s, ref_s = opt.switches(), ref_opt.switches()
    assert [s[:3] for s in ours_s] == [s[:3] for s in ref_s]  # who switched, when
    for a, b in zip(ours_s, ref_s):  # the learned rates (float32: dot products of float32 steps)
        assert a[3] == pytest.approx(b[3], rel=1e-12 if dtype == F64 else 1e-6)
    assert ours_s[0][2] > 0  # the weight switched
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == F64 else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **tol)


def test_sgd_phase_is_the_papers():
    """After the switch: v = beta1 v + g; x -= (1 - beta1) sgd_lr v."""
    (w0, b0), opt = run(optimcore.SWATS, 60, lr=1e-2, switch_tolerance=1e-3)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert int(state["switched_at"]) > 0
    v = state["momentum_buffer"].clone()
    lr = float(state["sgd_lr"])
    loss_fn = problem()
    w = opt.param_groups[0]["params"][0]
    opt.zero_grad()
    loss_fn(w, opt.param_groups[0]["params"][1]).backward()
    g = w.grad.clone()
    opt.step()
    torch.testing.assert_close(state["momentum_buffer"], 0.9 * v + g, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(w.detach(), w0 - 0.1 * lr * (0.9 * v + g), rtol=1e-12,
                               atol=1e-15)


def test_checkpoint_resumes_across_the_switch():
    whole, opt = run(optimcore.SWATS, 40, lr=1e-2, switch_tolerance=1e-3)
    switched = opt.switches()[0][2]
    assert 2 < switched < 40
    first, opt = run(optimcore.SWATS, switched - 2, lr=1e-2, switch_tolerance=1e-3)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    resumed, opt2 = run(optimcore.SWATS, 42 - switched, state=torch.load(buf), start=first,
                        lr=1e-2, switch_tolerance=1e-3)
    assert opt2.switches()[0][2] == switched
    for a, b in zip(resumed, whole):
        assert torch.equal(a, b)


def test_scheduler_scales_the_learned_rate_once():
    """The same lr at every step, one set directly and one through a scheduler, gives the same
    run before and after the switch: the SGD phase scales the learned rate by lr / (lr at the
    switch), not by the scheduler's total factor."""
    direct, opt = run(optimcore.SWATS, 60, lr=1e-3, switch_tolerance=1e-2)
    scheduled, opt2 = run(optimcore.SWATS, 60, lr=1e-2, switch_tolerance=1e-2,
                          sched=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.1))
    assert any(s > 0 for _, _, s, _ in opt.switches())
    assert opt.switches() == opt2.switches()
    for a, b in zip(direct, scheduled):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    state = opt2.state[opt2.param_groups[0]["params"][0]]
    assert state["exp_avg2"].dtype == F64 and state["switch_lr"].dtype == F64
    torch.testing.assert_close(state["switch_lr"], torch.tensor(1e-3, dtype=F64))


def test_halving_after_the_switch_halves_the_sgd_step():
    _, opt = run(optimcore.SWATS, 40, lr=1e-2, switch_tolerance=1e-3)
    w = opt.param_groups[0]["params"][0]
    state = opt.state[w]
    assert int(state["switched_at"]) > 0
    before = w.detach().clone()
    buf = state["momentum_buffer"].clone()
    opt.param_groups[0]["lr"] = 5e-3
    loss_fn = problem()
    opt.zero_grad()
    loss_fn(w, opt.param_groups[0]["params"][1]).backward()
    g = w.grad.clone()
    opt.step()
    rate = float(state["sgd_lr"]) * 0.5
    torch.testing.assert_close(w.detach(), before - 0.1 * rate * (0.9 * buf + g), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_scalar_state_loads_exactly_for_16_bit_parameters(dtype):
    p = torch.nn.Parameter(torch.randn(8).to(dtype))
    opt = optimcore.SWATS([p])
    p.grad = torch.randn(8).to(dtype)
    opt.step()
    opt.state[p]["sgd_lr"].fill_(0.0048377532)
    opt.state[p]["switched_at"].fill_(70001.0)
    opt2 = optimcore.SWATS([p])
    opt2.load_state_dict(opt.state_dict())
    assert float(opt2.state[p]["sgd_lr"]) == 0.0048377532
    assert float(opt2.state[p]["switched_at"]) == 70001.0
    assert opt2.switches()[0][2] == 70001


def test_loads_a_torch_optimizer_checkpoint_into_the_adam_phase():
    torch_optimizer = pytest.importorskip("torch_optimizer")
    whole, _ = run(torch_optimizer.SWATS, 10, lr=1e-2, eps=1e-8)
    first, ref = run(torch_optimizer.SWATS, 4, lr=1e-2, eps=1e-8)
    assert all(g["phase"] == "ADAM" for g in ref.param_groups)
    resumed, opt = run(optimcore.SWATS, 6, state=copy.deepcopy(ref.state_dict()), start=first,
                       lr=1e-2, switch_tolerance=0.0)
    for a, b in zip(resumed, whole):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=-1.0), "Invalid learning rate"), (dict(betas=(1.0, 0.9)), "index 0"),
    (dict(switch_tolerance=-1.0), "switch_tolerance"), (dict(weight_decay=-1.0), "weight_decay"),
])
def test_constructor_validation(kwargs, words):
    with pytest.raises(ValueError, match=words):
        optimcore.SWATS([torch.zeros(2, requires_grad=True)], **kwargs)
