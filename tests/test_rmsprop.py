"""What is particular to RMSprop (the generic suites cover the rest)."""

import torch

import optimcore


def test_centered_with_alpha_above_one_and_a_half_uses_torchs_lerp_branch():
    """1 - alpha <= -0.5: torch's lerp takes its |weight| >= 0.5 branch (inf gives NaN there)."""
    outs = []
    for cls in (torch.optim.RMSprop, optimcore.RMSprop):
        p = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
        opt = cls([p], lr=0.01, alpha=1.5, centered=True)
        for g in ([0.3, -0.2, 0.1], [float("inf"), 0.5, -0.4]):
            p.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
        outs.append(opt.state[p]["grad_avg"].clone())
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0, equal_nan=True)
