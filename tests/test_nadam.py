"""What is particular to NAdam (the generic suites cover the rest)."""

import torch

import optimcore


def test_tensor_hyperparameters_run_torchs_step():
    """With tensor betas torch multiplies mu_product by a float64 mu: its step runs, exactly."""
    outs = []
    for cls in (torch.optim.NAdam, optimcore.NAdam):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 8, dtype=torch.float64))
        opt = cls([p], lr=0.01, betas=(torch.tensor(0.9, dtype=torch.float64),
                                       torch.tensor(0.999, dtype=torch.float64)))
        for k in range(20):
            p.grad = torch.full_like(p, 0.1 * (k % 3 - 1))
            opt.step()
        outs.append((p.detach().clone(), opt))
    assert torch.equal(outs[0][0], outs[1][0])
    assert outs[1][1].last_step_paths == ["torch"]
