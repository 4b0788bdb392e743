"""Changes made between steps are honoured exactly as torch.optim honours them, although
optimcore caches each group's pointer table: replaced state tensors or their storage, replaced
parameter storage (`p.data = ...`), groups that mix dtypes, and a failed step followed by edits."""

import pytest
import torch

import optimcore

RULES = {"SGD": dict(lr=0.1, momentum=0.9), "Adam": dict(lr=0.1), "AdamW": dict(lr=0.1)}


def twin(name, make_params, edit, steps_before=2, steps_after=2):
    """Run torch.optim and optimcore, apply the same `edit(opt, params)` in between, and return
    both parameter lists."""
    out = []
    for lib in (torch.optim, optimcore):
        params = make_params()
        opt = getattr(lib, name)(params, **RULES[name])
        g = torch.Generator().manual_seed(0)
        for i in range(steps_before + steps_after):
            if i == steps_before:
                edit(opt, params)
            for p in params:
                p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
            opt.step()
        out.append(params)
    return out


def assert_same(ref, ours):
    for a, b in zip(ref, ours):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


def square():
    return [torch.randn(4, 4, requires_grad=True, generator=torch.Generator().manual_seed(1))]


@pytest.mark.parametrize("name", RULES)
def test_state_tensor_storage_replaced(name):
    key = "momentum_buffer" if name == "SGD" else "exp_avg"

    def edit(opt, params):
        opt.state[params[0]][key].data = torch.full((4, 4), 0.5)

    assert_same(*twin(name, square, edit))


@pytest.mark.parametrize("name", RULES)
def test_state_tensor_replaced(name):
    key = "momentum_buffer" if name == "SGD" else "exp_avg_sq"

    def edit(opt, params):
        opt.state[params[0]][key] = torch.full((4, 4), 0.25)

    assert_same(*twin(name, square, edit))


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_step_replaced(name):
    def edit(opt, params):
        opt.state[params[0]]["step"] = torch.tensor(100.0)

    ref, ours = twin(name, square, edit)
    assert_same(ref, ours)


@pytest.mark.parametrize("name", RULES)
def test_parameter_storage_replaced(name):
    def edit(opt, params):
        params[0].data = params[0].data.t()  # same address, other strides

    assert_same(*twin(name, square, edit))


@pytest.mark.parametrize("name", RULES)
def test_state_dict_entry_reset(name):
    def edit(opt, params):
        opt.state[params[0]] = {}

    assert_same(*twin(name, square, edit))


@pytest.mark.parametrize("name", RULES)
def test_group_mixing_dtypes(name):
    def make():
        g = torch.Generator().manual_seed(2)
        return [
            torch.randn(5, generator=g).requires_grad_(),
            torch.randn(3, dtype=torch.float64, generator=g).requires_grad_(),
            torch.randn(4, generator=g).requires_grad_(),
            torch.randn(2, dtype=torch.complex64, generator=g).requires_grad_(),
        ]

    def edit(opt, params):
        pass

    assert_same(*twin(name, make, edit))


@pytest.mark.parametrize("name", RULES)
def test_conjugated_complex_gradient(name):
    """A gradient with the lazy conjugate bit counts as its conjugate (torch's Adam raises on
    one, so the reference gets it resolved)."""
    out = []
    for lib in (torch.optim, optimcore):
        p = torch.tensor([1 + 2j, 3 + 4j], requires_grad=True)
        opt = getattr(lib, name)([p], **RULES[name])
        for _ in range(2):
            grad = torch.tensor([1 + 2j, 3 - 1j]).conj()
            p.grad = grad.resolve_conj() if lib is torch.optim else grad
            opt.step()
        out.append([p])
    assert_same(*out)


def test_failed_step_does_not_undo_later_edits():
    a = torch.zeros(3, requires_grad=True)
    bad = torch.zeros(3, dtype=torch.int32)
    opt = optimcore.Adam([{"params": [a]}, {"params": [bad]}], lr=0.1)
    a.grad = torch.ones(3)
    bad.grad = torch.zeros(3, dtype=torch.int32)
    with pytest.raises(RuntimeError):
        opt.step()  # plans state for `a`, then fails on `bad`
    assert a not in opt.state
    opt.param_groups[1]["params"] = []
    opt.step()
    opt.state[a]["exp_avg"] = torch.full((3,), 7.0)
    opt.step()
    torch.testing.assert_close(opt.state[a]["exp_avg"], torch.full((3,), 0.9 * 7 + 0.1))

