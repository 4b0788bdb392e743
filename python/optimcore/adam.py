"""optimcore.Adam: torch.optim.Adam on optimcore's C++ core (csrc/include/optimcore/adam.hpp)."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["Adam"]


class Adam(CoreOptimizer, torch.optim.Adam):
    """Implements Adam: ``torch.optim.Adam`` (its constructor, arguments, defaults, state and
    errors) with the update on optimcore's compiled core.

    ``foreach`` and ``fused`` are accepted; on the CPU the compiled kernel runs either way.
    ``differentiable=True``, ``capturable=True`` and parameters off the CPU run torch's own step.

    ``master_weights=True`` (optimcore only): bfloat16/float16 parameters keep a float32 copy
    (state "master_param") and float32 exp_avg/exp_avg_sq; each step updates the copy and rounds
    it into the parameter, so small updates are not lost to 16-bit rounding.
    ``stochastic_rounding=True`` (optimcore only): bfloat16 parameters are rounded stochastically
    (unbiased), with random bits drawn from torch's default generator each step.
    """

    _rule = "adam"
    _optional_state = frozenset({"max_exp_avg_sq"})  # amsgrad switched on mid-training
    _sparse_message = (
        "Adam does not support sparse gradients, please consider SparseAdam instead"
    )

    def _uses_state(self, group: dict, key: str) -> bool:
        return key != "max_exp_avg_sq" or bool(group["amsgrad"])

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            beta1=hyperparameter(group, "betas", 0, high=1.0),  # beta = 1 divides by zero
            beta2=hyperparameter(group, "betas", 1, high=1.0),
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            amsgrad=bool(group["amsgrad"]),
            maximize=bool(group["maximize"]),
            decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
        )
