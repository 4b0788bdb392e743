"""optimcore.SGD against torch.optim.SGD."""

import itertools

import pytest
import torch

import optimcore
from conftest import assert_same_trajectory, make_params, set_grads

OPTIONS = [
    dict(lr=lr, momentum=m, dampening=d, weight_decay=wd, nesterov=n, maximize=mx)
    for lr, m, d, wd, n, mx in itertools.product(
        [0.1], [0.0, 0.9], [0.0, 0.3], [0.0, 0.05], [False, True], [False, True]
    )
    if not (n and (m == 0 or d != 0))
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kwargs", OPTIONS, ids=str)
def test_matches_torch(kwargs, dtype, simd_level):
    assert_same_trajectory(torch.optim.SGD, optimcore.SGD, kwargs, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_contiguous_grads_for_strided_params(dtype):
    kwargs = dict(lr=0.05, momentum=0.9, weight_decay=0.01)
    assert_same_trajectory(torch.optim.SGD, optimcore.SGD, kwargs, dtype, grad_layout="contiguous")


def test_tensor_lr_and_defaults():
    assert_same_trajectory(torch.optim.SGD, optimcore.SGD, dict(lr=torch.tensor(0.01)), torch.float64)
    p = [torch.zeros(3, requires_grad=True)]
    assert optimcore.SGD(p).defaults == torch.optim.SGD(p).defaults


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sparse_gradients_follow_torch(momentum):
    def train(cls):
        emb = torch.nn.Embedding(20, 4, sparse=True)
        torch.nn.init.normal_(emb.weight, generator=torch.Generator().manual_seed(0))
        dense = torch.nn.Parameter(torch.ones(4))
        opt = cls([emb.weight, dense], lr=0.1, momentum=momentum)
        for step in range(4):
            opt.zero_grad()
            idx = torch.tensor([step, step + 3, 7])
            (emb(idx) * dense).sum().backward()
            assert emb.weight.grad.is_sparse
            opt.step()
        return emb.weight.detach(), dense.detach(), opt

    w_ref, d_ref, ref = train(torch.optim.SGD)
    w, d, out = train(optimcore.SGD)
    torch.testing.assert_close(w, w_ref)
    torch.testing.assert_close(d, d_ref)
    assert out.state_dict()["state"].keys() == ref.state_dict()["state"].keys()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_16bit_params_compute_in_float32(dtype, momentum, simd_level):
    """16-bit parameters: each step is computed in float32 from the 16-bit values and rounded
    once, so it equals a float32 step on the widened values, rounded to the 16-bit type (to one
    16-bit ULP: at a SIMD level without FMA the float32 result can differ from torch's by one
    float32 ULP, which may flip the final rounding)."""
    params = make_params(dtype, big=1000)
    wide = [p.detach().float().requires_grad_() for p in params]
    opt = optimcore.SGD(params, lr=0.1, momentum=momentum, weight_decay=0.01)
    ref = torch.optim.SGD(wide, lr=0.1, momentum=momentum, weight_decay=0.01)
    set_grads(params, 0)
    for p, w in zip(params, wide):
        w.grad = p.grad.float()
    opt.step()
    ref.step()
    one_ulp = torch.finfo(dtype).eps
    for p, w in zip(params, wide):
        torch.testing.assert_close(p, w.to(dtype), rtol=one_ulp, atol=0)
