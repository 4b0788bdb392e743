"""64-bit index arithmetic: one bfloat16 tensor just over 2**31 elements (4 GB), split across
threads with chunk boundaries around element 2**31, for every rule in the registry. The result
at any index must not depend on how large the index is: slices at the start, around 2**31 and
at the end equal the same rule run on small copies of them."""

from __future__ import annotations

import pytest
import torch

from optimcore.testing import COMPILED as RULES

N = 2**31 + 4099
EDGES = [(0, 16), (2**31 - 40, 2**31 + 40), (N - 16, N)]


def _available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.bigmem
@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_index_arithmetic_past_2_31(rule):
    if rule.per_tensor_reductions:
        pytest.skip("per-tensor reductions: a slice does not step like the whole tensor")
    kwargs = rule.lean_kwargs or {k: v for k, v in rule.kwargs.items() if k != "amsgrad"}
    probe = torch.zeros(2, dtype=torch.bfloat16, requires_grad=True)
    probe_opt = rule.cls([probe], **kwargs)
    probe.grad = torch.ones(2, dtype=torch.bfloat16)
    probe_opt.step()
    tensors = 2 + sum(1 for s in probe_opt.state[probe].values() if s.numel() == 2)
    need = tensors * N * 2
    if _available_bytes() < need * 1.15:
        pytest.skip(f"needs {need / 2**30:.1f} GiB free")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        p = torch.full((N,), 1.0, dtype=torch.bfloat16)
        grad = torch.full((N,), 0.5, dtype=torch.bfloat16)
        pattern = torch.linspace(-2, 2, 80, dtype=torch.float32).to(torch.bfloat16)
        for begin, end in EDGES:
            p[begin:end] = pattern[: end - begin]
            grad[begin:end] = pattern[: end - begin].flip(0)
        p.requires_grad_()
        p.grad = grad
        opt = rule.cls([p], **kwargs)
        small = [p.detach()[b:e].clone().requires_grad_() for b, e in EDGES]
        small_opt = rule.cls(small, **kwargs)
        for s, (b, e) in zip(small, EDGES):
            s.grad = grad[b:e].clone()
        for _ in range(2):
            opt.step()
            small_opt.step()
        for s, (b, e) in zip(small, EDGES):
            assert torch.equal(p.detach()[b:e], s.detach()), (b, e)
            for key, value in small_opt.state[s].items():
                if value.numel() == e - b:
                    assert torch.equal(opt.state[p][key][b:e], value), (key, b, e)
    finally:
        torch.set_num_threads(threads)
