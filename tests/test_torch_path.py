"""Rules without a compiled kernel yet run torch's own step: results, state and checkpoints are
torch's exactly, and last_step_paths says "torch". Options that need an elementwise kernel
(master weights, stochastic rounding) are refused by every rule of another kind."""

from __future__ import annotations

import pytest
import torch

from optimcore.testing import RULES, torch_inputs

TORCH_ONLY = [rule for rule in RULES if not rule.compiled]
CASES = [(rule, kwargs) for rule in TORCH_ONLY for kwargs in torch_inputs(rule)]


def _params(kind: str, dtype):
    gen = torch.Generator().manual_seed(0)
    if kind == "matrix":
        return [torch.randn(6, 4, generator=gen, dtype=dtype).requires_grad_(),
                torch.randn(3, 5, generator=gen, dtype=dtype).requires_grad_()]
    if kind == "sparse":
        return [torch.randn(10, 3, generator=gen, dtype=dtype).requires_grad_()]
    return [torch.randn(7, generator=gen, dtype=dtype).requires_grad_(),
            torch.randn(4, 5, generator=gen, dtype=dtype).requires_grad_(),
            torch.randn(2, 3, 4, generator=gen, dtype=dtype).requires_grad_()]


def _grad(kind: str, p, step):
    gen = torch.Generator().manual_seed(100 + step)
    if kind == "sparse":
        rows = torch.tensor([[1, 4, 7]])
        return torch.sparse_coo_tensor(rows, torch.randn(3, p.shape[1], generator=gen,
                                                          dtype=p.dtype), p.shape,
                                       check_invariants=True)
    return torch.randn(p.shape, generator=gen, dtype=p.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[f"{r.name}-{k}" for r, k in CASES])
def test_identical_to_torch(case, dtype):
    rule, kwargs = case
    runs = []
    for cls in (rule.reference, rule.cls):
        params = _params(rule.params, dtype)
        opt = cls(params, **kwargs)
        for step in range(3):
            if rule.params == "closure":  # a quadratic with a closure that recomputes it
                def closure():
                    opt.zero_grad()
                    loss = sum(((p - 0.5) ** 2 * (i + 1)).sum() for i, p in enumerate(params))
                    loss.backward()
                    return loss
                opt.step(closure)
                continue
            for p in params:
                p.grad = _grad(rule.params, p, step)
            opt.step()
        runs.append((params, opt))
    (ref, ref_opt), (ours, opt) = runs
    assert opt.last_step_paths == ["torch"]
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
    sa, sb = opt.state_dict(), ref_opt.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for idx, entry in sb["state"].items():
        for key, value in entry.items():
            assert _same(sa["state"][idx][key], value), key


def _same(a, b) -> bool:
    """Equal values: tensors bit for bit, lists (LBFGS's history) element by element."""
    if isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if torch.is_tensor(b):
        return torch.is_tensor(a) and torch.equal(a, b)
    return a == b


NOT_ELEMENTWISE = [rule for rule in RULES if not rule.compiled or rule.params != "any"]


@pytest.mark.parametrize("rule", NOT_ELEMENTWISE, ids=[r.name for r in NOT_ELEMENTWISE])
@pytest.mark.parametrize("option", ["master_weights", "stochastic_rounding"])
def test_options_that_need_an_elementwise_kernel_are_refused(rule, option):
    with pytest.raises(ValueError, match=f"no compiled elementwise kernel: .*{option}"):
        rule.cls(_params(rule.params, torch.float32), **rule.kwargs, **{option: True})
