"""What is particular to Rprop (the generic suites cover the rest)."""

import torch

import optimcore


def test_step_sizes_are_not_checked_as_torch_does_not():
    outs = []
    for cls in (torch.optim.Rprop, optimcore.Rprop):
        p = torch.nn.Parameter(torch.ones(3))
        opt = cls([p], lr=0.1, step_sizes=(0.0, -1.0))
        p.grad = torch.ones(3)
        opt.step()
        p.grad = torch.ones(3)
        opt.step()
        outs.append(p.detach().clone())
    assert torch.equal(outs[0], outs[1])


def test_step_size_starts_at_the_lr_of_the_first_step():
    """Created once from the group's lr; schedulers changing lr later do not move it."""
    outs = []
    for cls in (torch.optim.Rprop, optimcore.Rprop):
        p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        opt = cls([p], lr=0.1)
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        opt.param_groups[0]["lr"] = 5.0
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        outs.append((p.detach().clone(), opt.state[p]["step_size"].clone()))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
