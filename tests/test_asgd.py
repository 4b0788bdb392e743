"""What is particular to ASGD (the generic suites cover the rest)."""

import pytest
import torch

import optimcore


@pytest.mark.filterwarnings("ignore:Casting complex values to real:UserWarning")
@pytest.mark.parametrize("lambd", [-0.4, -0.5])
def test_negative_lambd_is_torchs_step(lambd):
    """torch accepts lambd < 0; 1 + lambd * lr * step then reaches zero (ZeroDivisionError) or
    goes negative (complex power): torch's own step runs, so the outcome is torch's."""
    outcomes = []
    for cls in (torch.optim.ASGD, optimcore.ASGD):
        p = torch.nn.Parameter(torch.tensor([1.5, -3.0], dtype=torch.float64))
        opt = cls([p], lr=1.0, lambd=lambd, alpha=0.5)
        steps = []
        try:
            for _ in range(4):
                p.grad = torch.tensor([0.1, -0.1], dtype=torch.float64)
                opt.step()
                steps.append(p.detach().clone())
        except ZeroDivisionError as e:
            steps.append(str(e))
        outcomes.append(steps)
    assert len(outcomes[0]) == len(outcomes[1])
    for a, b in zip(*outcomes):
        assert (a == b) if isinstance(a, str) else torch.equal(a, b)
