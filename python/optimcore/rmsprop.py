"""optimcore.RMSprop: torch.optim.RMSprop on optimcore's C++ core
(csrc/include/optimcore/rmsprop.hpp)."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["RMSprop"]


class RMSprop(CoreOptimizer, torch.optim.RMSprop):
    """Implements RMSprop: ``torch.optim.RMSprop`` with the update on optimcore's compiled
    core."""

    _rule = "rmsprop"
    # Made when momentum / centered is switched on mid-training (torch raises KeyError there).
    _optional_state = frozenset({"momentum_buffer", "grad_avg"})

    def _torch_steps_mixed(self, group: dict) -> bool:
        # torch's in-place ops cast, except grad_avg.lerp_ (centered), which needs one dtype.
        return not group["centered"]

    def _uses_state(self, group: dict, key: str) -> bool:
        if key == "momentum_buffer":
            return group["momentum"] > 0
        if key == "grad_avg":
            return bool(group["centered"])
        return True

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            alpha=hyperparameter(group, "alpha"),
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            momentum=hyperparameter(group, "momentum"),
            centered=bool(group["centered"]),
            maximize=bool(group["maximize"]),
        )
