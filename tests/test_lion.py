"""Lion against the widely used lion-pytorch package (0.2.5): float32 and float64, with and
without weight decay (and its decoupled variant), several groups and a scheduler."""

from __future__ import annotations

import pytest
import torch

import optimcore
from optimcore.testing import reference_class

lion_pytorch = pytest.importorskip("lion_pytorch")

TOL = {torch.float64: dict(rtol=1e-12, atol=1e-14), torch.float32: dict(rtol=1e-5, atol=1e-6)}
OPTIONS = [dict(), dict(weight_decay=0.1, lr=1e-3), dict(betas=(0.95, 0.98), lr=3e-3),
           dict(weight_decay=1e-3, decoupled_weight_decay=True, lr=1e-3)]


def run(cls, dtype, steps=25, scheduler=None, **kw):
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
          for s in [(), (7,), (5, 3), (64, 33)]]
    opt = cls([{"params": ps[:2]}, {"params": ps[2:]}], **kw)
    sched = scheduler(opt) if scheduler else None
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
def test_same_trajectory_as_lion_pytorch(dtype, kw, simd_level):
    ref, _ = run(lion_pytorch.Lion, dtype, **kw)
    ours, opt = run(optimcore.Lion, dtype, **kw)
    assert opt.last_step_paths == ["core", "core"]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[dtype])
    ours, _ = run(reference_class(optimcore.Lion), dtype, **kw)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_scheduler():
    def sched(opt):
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    ref, _ = run(lion_pytorch.Lion, torch.float64, scheduler=sched, lr=1e-2, weight_decay=0.1)
    ours, _ = run(optimcore.Lion, torch.float64, scheduler=sched, lr=1e-2, weight_decay=0.1)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, **TOL[torch.float64])


def test_checkpoint_from_lion_pytorch_continues():
    whole, _ = run(lion_pytorch.Lion, torch.float64, steps=10, lr=1e-2)
    first, ref = run(lion_pytorch.Lion, torch.float64, steps=4, lr=1e-2)
    assert torch.equal(first[0], run(lion_pytorch.Lion, torch.float64, steps=4, lr=1e-2)[0][0])
    opt = optimcore.Lion([{"params": first[:2]}, {"params": first[2:]}], lr=1e-2)
    opt.load_state_dict(ref.state_dict())
    assert len(opt.state) == len(ref.state)


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=0.0), "Invalid learning rate"), (dict(betas=(1.5, 0.9)), "beta parameter at index 0"),
    (dict(weight_decay=-1.0), "weight_decay"),
])
def test_constructor_validation(kwargs, words):
    with pytest.raises(ValueError, match=words):
        optimcore.Lion([torch.zeros(2, requires_grad=True)], **kwargs)


def test_lion_pytorch_checkpoint_keeps_decoupled_decay_and_initial_lr():
    """lion-pytorch keeps decoupled_weight_decay and its initial lr on the optimizer object:
    loading its checkpoint keeps this optimizer's (built with the same arguments), also after
    a schedule changed lr."""
    torch.manual_seed(0)
    x0 = torch.randn(6, dtype=torch.float64)
    gs = [torch.randn(6, dtype=torch.float64) for _ in range(8)]
    kw = dict(lr=1e-3, weight_decay=1.0, decoupled_weight_decay=True)
    ref = torch.nn.Parameter(x0.clone())
    oref = lion_pytorch.Lion([ref], **kw)
    sched = torch.optim.lr_scheduler.StepLR(oref, 2, 0.5)
    for g in gs[:4]:
        ref.grad = g.clone()
        oref.step()
        sched.step()
    p = torch.nn.Parameter(ref.detach().clone())
    opt = optimcore.Lion([p], **kw)
    opt.load_state_dict(oref.state_dict())
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    assert opt.param_groups[0]["base_lr"] == 1e-3
    for g in gs[4:]:
        ref.grad = g.clone()
        p.grad = g.clone()
        oref.step()
        opt.step()
    assert torch.equal(p, ref)


def test_decoupled_decay_divides_by_the_constructor_lr_in_every_group():
    p = [torch.nn.Parameter(torch.ones(4)) for _ in range(2)]
    q = [torch.nn.Parameter(torch.ones(4)) for _ in range(2)]
    kw = dict(lr=1e-3, weight_decay=0.1, decoupled_weight_decay=True)
    opt = optimcore.Lion([{"params": [p[0]]}, {"params": [p[1]], "lr": 1e-2}], **kw)
    ref = lion_pytorch.Lion([{"params": [q[0]]}, {"params": [q[1]], "lr": 1e-2}], **kw)
    for x in p + q:
        x.grad = torch.zeros(4)
    opt.step()
    ref.step()
    for a, b in zip(p, q):
        assert torch.equal(a, b)
    opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "lr": 0.0})
    opt.param_groups[2]["params"][0].grad = torch.zeros(2)
    opt.step()  # lr=0 in an added group: no division by it


def test_complex_parameter_core_and_torch_path_agree():
    """A complex parameter is stepped as pairs of reals on both paths (a tensor lr sends the
    group to the torch-ops step)."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(3, dtype=torch.complex64))
    b = torch.nn.Parameter(a.detach().clone())
    oa = optimcore.Lion([a], lr=2.0 ** -7)
    ob = optimcore.Lion([b], lr=torch.tensor(2.0 ** -7))
    for _ in range(3):
        g = torch.randn(3, dtype=torch.complex64)
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    assert ob.last_step_paths == ["torch"]
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
