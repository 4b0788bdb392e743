"""AdaBound, AMSBound and AdaBoundW against the published reference (PyPI adabound 0.0.5,
Luolc/AdaBound): float32 and float64, with and without amsbound and weight decay, with an LR
scheduler and several groups; and the reference's defects that optimcore fixes, each with a
test that fails on the reference."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import optimcore
from optimcore.testing import reference_class

adabound = pytest.importorskip("adabound")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # the reference's add(Number, Tensor)

TOL = {torch.float64: dict(rtol=1e-12, atol=1e-14), torch.float32: dict(rtol=1e-5, atol=1e-6)}
OPTIONS = [dict(), dict(amsbound=True), dict(weight_decay=0.05), dict(amsbound=True,
           weight_decay=0.01, final_lr=0.5, gamma=0.01), dict(lr=0.05, betas=(0.8, 0.99),
           eps=1e-6)]


def params(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(), (7,), (5, 3), (64, 33)]
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
            for s in shapes]


def run(cls, dtype, steps=25, scheduler=None, groups=False, **kw):
    ps = params(dtype)
    spec = [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.003}] if groups else ps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = cls(spec, **kw)
        sched = scheduler(opt) if scheduler else None
        g = torch.Generator().manual_seed(1)
        for _ in range(steps):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype)
            opt.step()
            if sched:
                sched.step()
    return ps, opt


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kw", OPTIONS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items())
                         or "defaults")
def test_same_trajectory_as_reference(dtype, kw, simd_level):
    ref, _ = run(adabound.AdaBound, dtype, **kw)
    ours, opt = run(optimcore.AdaBound, dtype, **kw)
    assert opt.last_step_paths == ["core"]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[dtype])
    ours, _ = run(reference_class(optimcore.AdaBound), dtype, **kw)  # the torch path
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_scheduler_and_groups(dtype):
    """A scheduler moves lr and, through lr / base_lr, the bounds, in every group."""
    def sched(opt):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    ref, _ = run(adabound.AdaBound, dtype, scheduler=sched, groups=True, amsbound=True)
    ours, _ = run(optimcore.AdaBound, dtype, scheduler=sched, groups=True, amsbound=True)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_adaboundw_is_adamw_decay_then_adabound():
    """AdaBoundW = p *= 1 - lr * weight_decay, then AdaBound without weight decay."""
    ours, _ = run(optimcore.AdaBoundW, torch.float64, steps=1, weight_decay=0.1, lr=0.01)
    ps = params(torch.float64)
    with torch.no_grad():
        for p in ps:
            p.mul_(1 - 0.01 * 0.1)
    opt = adabound.AdaBound(ps, lr=0.01)
    g = torch.Generator().manual_seed(1)
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
    opt.step()
    for a, b in zip(ours, ps):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_adaboundw_lr_zero_with_zero_gradients_changes_nothing():
    p = torch.randn(10, dtype=torch.float64, requires_grad=True)
    before = p.detach().clone()
    opt = optimcore.AdaBoundW([p], lr=0.0, weight_decay=0.5)
    for _ in range(3):
        p.grad = torch.zeros_like(p)
        opt.step()
    assert torch.equal(p, before)


# The reference's defects, fixed -----------------------------------------------------------

def _resume(cls, schedule_before: int):
    """Train 10 steps; checkpoint after `schedule_before` with a scheduler that halved lr;
    resume in a fresh optimizer built with the current lr (as a training script does)."""
    whole, _ = run(cls, torch.float64, steps=10, scheduler=lambda o:
                   torch.optim.lr_scheduler.StepLR(o, 3, 0.5))
    first, opt = run(cls, torch.float64, steps=schedule_before, scheduler=lambda o:
                     torch.optim.lr_scheduler.StepLR(o, 3, 0.5))
    ckpt = copy.deepcopy(opt.state_dict())
    ps = [p.detach().clone().requires_grad_() for p in first]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt2 = cls(ps, lr=opt.param_groups[0]["lr"])  # built anew: base_lrs = current lr
        opt2.load_state_dict(ckpt)
        sched = torch.optim.lr_scheduler.StepLR(opt2, 3, 0.5, last_epoch=schedule_before - 1)
        g = torch.Generator().manual_seed(1)
        for _ in range(schedule_before):  # the same gradients as the first run drew
            for p in ps:
                torch.randn(p.shape, generator=g, dtype=torch.float64)
        for _ in range(10 - schedule_before):
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
            opt2.step()
            sched.step()
    return max((a - b).abs().max().item() for a, b in zip(ps, whole))


def test_resumed_run_continues_the_trajectory():
    assert _resume(optimcore.AdaBound, 7) == 0.0
    assert _resume(adabound.AdaBound, 7) > 1e-6  # the reference forgets base_lr


def test_added_group_is_updated():
    for cls, moves in ((optimcore.AdaBound, True), (adabound.AdaBound, False)):
        a = torch.ones(3, requires_grad=True)
        b = torch.ones(3, requires_grad=True)
        opt = cls([a], lr=0.01)
        opt.add_param_group({"params": [b]})
        a.grad = torch.ones(3)
        b.grad = torch.ones(3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt.step()
        assert (not torch.equal(b, torch.ones(3))) == moves


def test_lr_zero_is_a_clean_no_op():
    for cls in (optimcore.AdaBound, adabound.AdaBound):
        p = torch.randn(5, dtype=torch.float64, requires_grad=True)
        before = p.detach().clone()
        opt = cls([p], lr=0.0)
        p.grad = torch.randn(5, dtype=torch.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cls is adabound.AdaBound:  # final_lr * lr / base_lr with base_lr = 0
                with pytest.raises(ZeroDivisionError):
                    opt.step()
                continue
            opt.step()
        assert torch.equal(p, before)


def test_loads_a_reference_checkpoint():
    """The reference's state (an int step) loads, and the run continues its trajectory."""
    whole, _ = run(adabound.AdaBound, torch.float64, steps=10)
    first, ref = run(adabound.AdaBound, torch.float64, steps=4)
    ps = [p.detach().clone().requires_grad_() for p in first]
    opt = optimcore.AdaBound(ps)
    opt.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        for p in ps:
            torch.randn(p.shape, generator=g, dtype=torch.float64)
    for _ in range(6):
        for p in ps:
            p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
        opt.step()
    for a, b in zip(ps, whole):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=-1.0), "Invalid learning rate"), (dict(betas=(1.0, 0.9)), "beta parameter at index 0"),
    (dict(final_lr=-0.1), "final learning rate"), (dict(gamma=1.0), "gamma"),
    (dict(eps=-1.0), "epsilon"), (dict(weight_decay=-1.0), "weight_decay"),
])
def test_constructor_validation(kwargs, words):
    with pytest.raises(ValueError, match=words):
        optimcore.AdaBound([torch.zeros(2, requires_grad=True)], **kwargs)


def test_reference_checkpoint_mid_schedule_keeps_the_base_lr():
    """A reference checkpoint has no base_lr: loading it keeps the one this optimizer was built
    with, as the reference does, so the bounds do not jump."""
    from torch.optim.lr_scheduler import StepLR
    torch.manual_seed(0)
    x0 = torch.randn(6, dtype=torch.float64)
    gs = [torch.randn(6, dtype=torch.float64) for _ in range(10)]

    def run_(cls, ck=None):
        p = torch.nn.Parameter(x0.clone())
        opt = cls([p], lr=1e-2)
        sched = StepLR(opt, 1, 0.5)
        if ck:
            p.data.copy_(ck[0])
            opt.load_state_dict(ck[1])
            sched.load_state_dict(ck[2])
        out = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t in range(5 if ck else 0, 10):
                p.grad = gs[t].clone()
                opt.step()
                sched.step()
                if t == 4 and not ck:
                    out = (p.detach().clone(), copy.deepcopy(opt.state_dict()),
                           sched.state_dict())
        return p, out

    full, ck = run_(adabound.AdaBound)
    resumed, _ = run_(optimcore.AdaBound, ck)
    torch.testing.assert_close(resumed, full, rtol=1e-12, atol=1e-14)


def test_complex_parameter_core_and_torch_path_agree():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(3, dtype=torch.complex128))
    b = torch.nn.Parameter(a.detach().clone())
    oa = optimcore.AdaBound([a], lr=1e-2, amsbound=True)
    ob = optimcore.AdaBound([b], lr=torch.tensor(1e-2, dtype=torch.float32), amsbound=True)
    for _ in range(3):
        g = torch.randn(3, dtype=torch.complex128)
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    assert ob.last_step_paths == ["torch"]
    torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
