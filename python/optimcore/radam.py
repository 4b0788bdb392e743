"""optimcore.RAdam: torch.optim.RAdam on optimcore's C++ core (csrc/include/optimcore/radam.hpp)."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["RAdam"]


class RAdam(CoreOptimizer, torch.optim.RAdam):
    """Implements RAdam: ``torch.optim.RAdam`` with the update on optimcore's compiled core."""

    _rule = "radam"

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            beta1=hyperparameter(group, "betas", 0, high=1.0),  # beta = 1 divides by zero
            beta2=hyperparameter(group, "betas", 1, high=1.0),
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
            maximize=bool(group["maximize"]),
        )
