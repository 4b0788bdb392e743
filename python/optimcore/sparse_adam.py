"""optimcore.SparseAdam: torch.optim.SparseAdam, a drop-in whose steps run torch's own implementation until
the rule has a compiled kernel (opt.last_step_paths says "torch")."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer

__all__ = ["SparseAdam"]


class SparseAdam(CoreOptimizer, torch.optim.SparseAdam):
    """Implements SparseAdam (Adam on the rows a sparse gradient touches): ``torch.optim.SparseAdam``. Every step is torch's own (no compiled
    kernel yet), so results, state and checkpoints are torch's exactly."""

    _rule = None
