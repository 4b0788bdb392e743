"""optimcore.ASGD: torch.optim.ASGD on optimcore's C++ core (csrc/include/optimcore/asgd.hpp)."""

from __future__ import annotations

import torch
from torch.optim.optimizer import _get_scalar_dtype

from ._optimizer import CoreOptimizer, hyperparameter
from ._state import TorchStep

__all__ = ["ASGD"]


class ASGD(CoreOptimizer, torch.optim.ASGD):
    """Implements averaged SGD: ``torch.optim.ASGD`` with the update on optimcore's compiled
    core. The per-parameter ``eta`` and ``mu`` stay float32 0-d tensors as torch keeps them
    (under a float64 default dtype torch's step runs)."""

    _rule = "asgd"
    _torch_steps_mixed_dtypes = True  # torch's in-place ops cast (e.g. after model.double())

    def _new_scalar_state(self, group: dict, key: str, p: torch.Tensor) -> torch.Tensor:
        if key == "eta":  # torch: the group's lr, rounded to the scalar dtype
            return torch.as_tensor(float(group["lr"]), dtype=_get_scalar_dtype(),
                                   device=p.device).clone()
        return torch.ones((), dtype=_get_scalar_dtype(), device=p.device)  # mu

    def _hyperparameters(self, group: dict) -> dict:
        if float(group["lambd"]) < 0:
            # 1 + lambd * lr * step can reach 0 or below: torch divides by zero or goes complex.
            raise TorchStep("lambd < 0")
        return dict(
            lr=hyperparameter(group, "lr"),
            lambd=hyperparameter(group, "lambd", low=float("-inf")),
            alpha=hyperparameter(group, "alpha", low=float("-inf")),
            t0=hyperparameter(group, "t0", low=float("-inf")),
            weight_decay=hyperparameter(group, "weight_decay"),
            maximize=bool(group["maximize"]),
        )
