"""optimcore.Rprop: torch.optim.Rprop on optimcore's C++ core (csrc/include/optimcore/rprop.hpp)."""

from __future__ import annotations

import torch

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["Rprop"]


class Rprop(CoreOptimizer, torch.optim.Rprop):
    """Implements Rprop: ``torch.optim.Rprop`` with the update on optimcore's compiled core.
    As in torch, each element's step size starts at the group's lr when its state is made; lr
    changes after that (schedulers) do not move it."""

    _rule = "rprop"
    _torch_steps_mixed_dtypes = True  # torch's in-place ops cast (e.g. after model.double())

    def _new_state(self, group: dict, key: str, p: torch.Tensor, dtype: torch.dtype):
        if key == "step_size":  # torch: full_like(grad, lr); complex(lr, lr) for complex p
            lr = float(group["lr"])
            fill = complex(lr, lr) if p.is_complex() else lr
            return torch.full_like(p, fill, dtype=dtype, memory_format=torch.preserve_format)
        return super()._new_state(group, key, p, dtype)

    def _hyperparameters(self, group: dict) -> dict:
        etaminus, etaplus = group["etas"]
        if not 0.0 < float(etaminus) < 1.0 < float(etaplus):
            raise ValueError(f"etas={group['etas']!r} must satisfy 0 < etas[0] < 1 < etas[1]")
        return dict(
            etaminus=hyperparameter(group, "etas", 0),
            etaplus=hyperparameter(group, "etas", 1),
            # torch does not check step_sizes (clamp bounds): neither does optimcore
            step_size_min=hyperparameter(group, "step_sizes", 0, low=float("-inf")),
            step_size_max=hyperparameter(group, "step_sizes", 1, low=float("-inf")),
            maximize=bool(group["maximize"]),
        )
