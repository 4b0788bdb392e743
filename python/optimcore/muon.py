"""optimcore.Muon: torch.optim.Muon, a drop-in whose steps run torch's own implementation until
the rule has a compiled kernel (opt.last_step_paths says "torch")."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer

__all__ = ["Muon"]


class Muon(CoreOptimizer, torch.optim.Muon):
    """Implements Muon (momentum orthogonalized by Newton-Schulz iterations; Jordan et al. 2024): ``torch.optim.Muon``. Every step is torch's own (no compiled
    kernel yet), so results, state and checkpoints are torch's exactly."""

    _rule = None
