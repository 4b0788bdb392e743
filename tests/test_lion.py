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
