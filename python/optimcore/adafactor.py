"""optimcore.Adafactor: torch.optim.Adafactor, a drop-in whose steps run torch's own implementation until
the rule has a compiled kernel (opt.last_step_paths says "torch")."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer

__all__ = ["Adafactor"]


class Adafactor(CoreOptimizer, torch.optim.Adafactor):
    """Implements Adafactor (factored second moments; Shazeer & Stern, arXiv:1804.04235): ``torch.optim.Adafactor``. Every step is torch's own (no compiled
    kernel yet), so results, state and checkpoints are torch's exactly."""

    _rule = None
