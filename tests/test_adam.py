"""optimcore.Adam against torch.optim.Adam."""

import itertools

import pytest
import torch

import optimcore
from conftest import assert_same_trajectory, make_params, set_grads

OPTIONS = [
    dict(lr=1e-2, betas=b, weight_decay=wd, amsgrad=a, maximize=m, decoupled_weight_decay=d)
    for b, wd, a, m, d in itertools.product(
        [(0.9, 0.999), (0.3, 0.5)],  # beta1 = 0.3 takes lerp's other branch
        [0.0, 0.1],
        [False, True],
        [False, True],
        [False, True],
    )
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kwargs", OPTIONS, ids=str)
def test_matches_torch(kwargs, dtype, simd_level):
    assert_same_trajectory(torch.optim.Adam, optimcore.Adam, kwargs, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_defaults_and_contiguous_grads(dtype):
    assert_same_trajectory(torch.optim.Adam, optimcore.Adam, {}, dtype, grad_layout="contiguous")
    p = [torch.zeros(3, requires_grad=True)]
    assert optimcore.Adam(p).defaults == torch.optim.Adam(p).defaults


@pytest.mark.parametrize(
    "kwargs",
    [
        # float64 tensors: torch computes bias corrections in the tensor's dtype.
        dict(lr=torch.tensor(0.01, dtype=torch.float64)),
        dict(
            lr=torch.tensor(0.01, dtype=torch.float64),
            betas=(torch.tensor(0.8, dtype=torch.float64), torch.tensor(0.99, dtype=torch.float64)),
        ),
        dict(eps=1e-3, betas=(0.0, 0.0)),
    ],
    ids=["tensor_lr", "tensor_betas", "zero_betas"],
)
def test_tensor_hyperparameters(kwargs):
    assert_same_trajectory(torch.optim.Adam, optimcore.Adam, kwargs, torch.float64)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_complex_params(dtype):
    def train(cls):
        g = torch.Generator().manual_seed(0)
        p = torch.randn(40, dtype=dtype, generator=g).requires_grad_()
        opt = cls([p], lr=0.01, weight_decay=0.1, amsgrad=True)
        for _ in range(4):
            p.grad = torch.randn(40, dtype=dtype, generator=g)
            opt.step()
        return p.detach()

    real = torch.float32 if dtype == torch.complex64 else torch.float64
    from conftest import TOL

    torch.testing.assert_close(train(optimcore.Adam), train(torch.optim.Adam), **TOL[real])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_16bit_params_match_torch_fused(dtype, amsgrad, simd_level):
    """torch's fused CPU Adam also computes 16-bit parameters in float32: one 16-bit ULP."""
    out, ref = make_params(dtype, big=1000), make_params(dtype, big=1000)
    opt = optimcore.Adam(out, lr=1e-2, weight_decay=0.1, amsgrad=amsgrad)
    ref_opt = torch.optim.Adam(ref, lr=1e-2, weight_decay=0.1, amsgrad=amsgrad, fused=True)
    for step in range(3):
        set_grads(out, step)
        set_grads(ref, step)
        opt.step()
        ref_opt.step()
    one_ulp = torch.finfo(dtype).eps
    # Parameter 6 is a gapped view, which torch's fused kernel mishandles (it writes into the
    # gaps: see test_gapped_view_updates_only_its_elements); compare the others.
    pairs = [(a, b) for i, (a, b) in enumerate(zip(out, ref)) if i != 6]
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=one_ulp, atol=0)
    for key in ("exp_avg", "exp_avg_sq"):
        for a, b in pairs:
            sa, sb = opt.state[a][key], ref_opt.state[b][key]
            assert sa.dtype == dtype
            torch.testing.assert_close(sa, sb, rtol=2 * one_ulp, atol=1e-7)


@pytest.mark.parametrize("cls", [optimcore.Adam, optimcore.AdamW])
def test_gapped_view_updates_only_its_elements(cls):
    """A parameter that is a strided view is updated in place, and memory between its elements
    is never written (torch 2.13's fused CPU Adam writes there)."""
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    p = base[:, ::2].detach().requires_grad_()
    ref = base[:, ::2].clone().requires_grad_()
    opt, ref_opt = cls([p], lr=0.1), getattr(torch.optim, cls.__name__)([ref], lr=0.1)
    for _ in range(2):
        p.grad = torch.ones(6, 5)
        ref.grad = torch.ones(6, 5)
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(p, ref, rtol=0, atol=0)
    torch.testing.assert_close(base[:, 1::2], torch.arange(60.0).reshape(6, 10)[:, 1::2])
