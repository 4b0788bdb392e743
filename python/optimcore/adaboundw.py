"""optimcore.AdaBoundW: AdaBound with AdamW's decoupled weight decay, p *= 1 - lr *
weight_decay before the update (the rule is AdaBound's, csrc/include/optimcore/adabound.hpp,
decoupled_weight_decay=True), so lr = 0 with zero gradients changes nothing. Luolc's AdaBoundW
subtracts weight_decay * p, not scaled by lr: a schedule that lowers lr then does not lower the
decay."""

from __future__ import annotations

from .adabound import AdaBound

__all__ = ["AdaBoundW"]


class AdaBoundW(AdaBound):
    """Implements AdaBoundW: ``optimcore.AdaBound`` with decoupled weight decay (default
    weight_decay=1e-2, as torch's AdamW)."""

    _decoupled = True

    def _init(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
              final_lr: float = 0.1, gamma: float = 1e-3, eps: float = 1e-8,
              weight_decay: float = 1e-2, amsbound: bool = False):
        AdaBound._init(self, params, lr, betas, final_lr, gamma, eps, weight_decay, amsbound)
