"""optimcore.LBFGS: torch.optim.LBFGS, a drop-in whose steps run torch's own implementation
(closure, line search and all) until the rule has its compiled core (issue 6)."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer

__all__ = ["LBFGS"]


class LBFGS(CoreOptimizer, torch.optim.LBFGS):
    """Implements L-BFGS: ``torch.optim.LBFGS``. Every step is torch's own, so iterates, state
    and checkpoints are torch's exactly."""

    _rule = None
