"""optimcore.NAdam: torch.optim.NAdam on optimcore's C++ core (csrc/include/optimcore/nadam.hpp)."""

from __future__ import annotations

import torch
from torch.optim.optimizer import _get_scalar_dtype

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["NAdam"]


class NAdam(CoreOptimizer, torch.optim.NAdam):
    """Implements NAdam: ``torch.optim.NAdam`` with the update on optimcore's compiled core.
    The per-parameter ``mu_product`` stays a float32 0-d tensor, multiplied in float32, as torch
    keeps it (under a float64 default dtype torch's step runs)."""

    _rule = "nadam"
    # With tensor betas/momentum_decay torch multiplies mu_product by a float64 mu: torch's step.
    _tensor_hyperparameters_on_core = False

    def _new_scalar_state(self, group: dict, key: str, p: torch.Tensor) -> torch.Tensor:
        return torch.tensor(1.0, dtype=_get_scalar_dtype(), device=p.device)  # mu_product

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            beta1=hyperparameter(group, "betas", 0, high=1.0),
            beta2=hyperparameter(group, "betas", 1, high=1.0),  # beta2 = 1 divides by zero
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            momentum_decay=hyperparameter(group, "momentum_decay"),
            decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
            maximize=bool(group["maximize"]),
        )
