"""optimcore.Adagrad: torch.optim.Adagrad on optimcore's C++ core
(csrc/include/optimcore/adagrad.hpp)."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["Adagrad"]


class Adagrad(CoreOptimizer, torch.optim.Adagrad):
    """Implements Adagrad: ``torch.optim.Adagrad`` (its constructor, which makes the state
    ``sum`` and ``step`` of every parameter, arguments, defaults and errors) with the update on
    optimcore's compiled core. Sparse gradients run torch's own step."""

    _rule = "adagrad"
    _supports_sparse = True
    _torch_steps_mixed_dtypes = True  # torch's in-place ops cast (e.g. after model.double())

    def _new_state(self, group: dict, key: str, p: torch.Tensor, dtype: torch.dtype):
        # As torch (constructor and lazy init alike): the optimizer's default value, not the
        # group's, and complex(v, v) for a complex parameter.
        value = self.defaults["initial_accumulator_value"]
        fill = complex(value, value) if p.is_complex() else value
        return torch.full_like(p, fill, dtype=dtype, memory_format=torch.preserve_format)

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            lr_decay=hyperparameter(group, "lr_decay"),
            weight_decay=hyperparameter(group, "weight_decay"),
            eps=hyperparameter(group, "eps"),
            maximize=bool(group["maximize"]),
        )
