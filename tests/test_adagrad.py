"""What is particular to Adagrad (the generic suites cover the rest)."""

import torch

import optimcore


def _pair(**kwargs):
    out = []
    for cls in (torch.optim.Adagrad, optimcore.Adagrad):
        a = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        out.append((cls([a], lr=0.1, **kwargs), a))
    return out


def test_state_of_an_added_group_starts_from_the_default_accumulator_value():
    """As torch: a lazily made `sum` takes the optimizer's initial_accumulator_value, not the
    added group's."""
    sums = []
    for opt, a in _pair(initial_accumulator_value=1.0):
        b = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        opt.add_param_group({"params": [b], "initial_accumulator_value": 5.0})
        a.grad, b.grad = torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
        opt.step()
        sums.append((opt.state[b]["sum"].clone(), b.detach().clone()))
    assert torch.equal(sums[0][0], sums[1][0]) and torch.equal(sums[0][1], sums[1][1])


def test_complex_parameter_state_starts_at_complex_value():
    outs = []
    for cls in (torch.optim.Adagrad, optimcore.Adagrad):
        a = torch.nn.Parameter(torch.ones(2, dtype=torch.complex128))
        opt = cls([a], lr=0.1, initial_accumulator_value=1.0)
        b = torch.nn.Parameter(torch.ones(2, dtype=torch.complex128))
        opt.add_param_group({"params": [b]})
        a.grad = b.grad = torch.ones(2, dtype=torch.complex128)
        opt.step()
        outs.append((opt.state[b]["sum"].clone(), b.detach().clone()))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.allclose(outs[0][1], outs[1][1])


def test_master_weights_state_starts_from_the_initial_value_in_float32():
    p = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    opt = optimcore.Adagrad([p], initial_accumulator_value=0.1, master_weights=True)
    assert opt.state[p]["sum"].dtype == torch.float32
    assert torch.equal(opt.state[p]["sum"], torch.full((4,), 0.1))
