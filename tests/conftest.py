"""Shared helpers: run torch.optim and optimcore side by side on identical parameters."""

from __future__ import annotations

import copy

import pytest
import torch

import optimcore

# Tolerances for whole trajectories (a few ULPs per step, accumulated).
TOL = {
    torch.float64: dict(rtol=1e-12, atol=1e-14),
    torch.float32: dict(rtol=2e-5, atol=1e-6),
}

SIMD_LEVELS = optimcore.supported_simd_levels()


@pytest.fixture(params=SIMD_LEVELS)
def simd_level(request):
    """Run the test at every SIMD level this machine supports, then restore the default."""
    before = optimcore.simd_level()
    optimcore.set_simd_level(request.param)
    yield request.param
    optimcore.set_simd_level(before)


def make_params(dtype=torch.float32, seed=0, big=70_000):
    """Leaf tensors covering the layouts a model has: 0-d, empty, odd sizes, a matrix, a
    transposed (dense, non-contiguous) weight, a gapped view, and one tensor large enough that
    the group is split across threads."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)

    params = [
        rnd(()),
        rnd(0),
        rnd(1),
        rnd(7),
        rnd(33, 17),
        rnd(9, 5).t(),  # transposed: dense, non-contiguous
        rnd(6, 10)[:, ::2],  # gapped: not dense
        rnd(big),
    ]
    return [p.detach().requires_grad_() for p in params]


def set_grads(params, step, seed=1, grad_layout="like_param"):
    """Deterministic gradients for `step`; 'like_param' gives them the parameter's strides (as
    autograd does), 'contiguous' always contiguous."""
    g = torch.Generator().manual_seed(seed * 100_003 + step)
    for p in params:
        values = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
        if grad_layout == "like_param":
            grad = torch.empty_like(p, memory_format=torch.preserve_format)
            grad.copy_(values)
        else:
            grad = values.contiguous()
        p.grad = grad


def run(optim_cls, kwargs, dtype=torch.float32, steps=6, grad_layout="like_param", params=None):
    params = params if params is not None else make_params(dtype)
    opt = optim_cls(params, **kwargs)
    for step in range(steps):
        set_grads(params, step, grad_layout=grad_layout)
        opt.step()
    return params, opt


def assert_same_trajectory(torch_cls, oc_cls, kwargs, dtype, steps=6, grad_layout="like_param"):
    ref, ref_opt = run(torch_cls, copy.deepcopy(kwargs), dtype, steps, grad_layout)
    out, out_opt = run(oc_cls, copy.deepcopy(kwargs), dtype, steps, grad_layout)
    for i, (a, b) in enumerate(zip(out, ref)):
        torch.testing.assert_close(a, b, **TOL[dtype], msg=lambda m: f"param {i}: {m}")
    assert_same_state(out_opt, ref_opt, dtype)


def assert_same_state(out_opt, ref_opt, dtype=None):
    """Same state_dict layout, keys, dtypes and values."""
    a, b = out_opt.state_dict(), ref_opt.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for idx in b["state"]:
        sa, sb = a["state"][idx], b["state"][idx]
        assert sa.keys() == sb.keys(), idx
        for key in sb:
            va, vb = sa[key], sb[key]
            assert type(va) is type(vb), (idx, key)
            if isinstance(vb, torch.Tensor):
                assert va.dtype == vb.dtype and va.shape == vb.shape, (idx, key)
                tol = dict(TOL.get(dtype or vb.dtype, {})) if key != "step" else dict(
                    rtol=0, atol=0)
                if tol and vb.numel() and vb.is_floating_point():
                    # Absolute tolerance at the tensor's scale: state that accumulates (momentum
                    # of g / sqrt(v)) can be far from 1, and torch's sqrt is not correctly
                    # rounded (one ulp), so cancellation shows at that scale.
                    tol["atol"] *= max(1.0, float(vb.abs().max()))
                torch.testing.assert_close(va, vb, **tol, msg=lambda m: f"{idx}/{key}: {m}")
