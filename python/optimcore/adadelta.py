"""optimcore.Adadelta: torch.optim.Adadelta on optimcore's C++ core
(csrc/include/optimcore/adadelta.hpp)."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["Adadelta"]


class Adadelta(CoreOptimizer, torch.optim.Adadelta):
    """Implements Adadelta: ``torch.optim.Adadelta`` with the update on optimcore's compiled
    core."""

    _rule = "adadelta"
    _torch_steps_mixed_dtypes = True  # torch's in-place ops cast (e.g. after model.double())

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            rho=hyperparameter(group, "rho", high=1.0, inclusive=True),
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            maximize=bool(group["maximize"]),
        )
