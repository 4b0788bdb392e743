"""optimcore.Adamax: torch.optim.Adamax on optimcore's C++ core
(csrc/include/optimcore/adamax.hpp)."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["Adamax"]


class Adamax(CoreOptimizer, torch.optim.Adamax):
    """Implements Adamax: ``torch.optim.Adamax`` with the update on optimcore's compiled core."""

    _rule = "adamax"

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            beta1=hyperparameter(group, "betas", 0, high=1.0),  # beta1 = 1 divides by zero
            beta2=hyperparameter(group, "betas", 1, high=1.0),
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            maximize=bool(group["maximize"]),
        )
