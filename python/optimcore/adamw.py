"""optimcore.AdamW: torch.optim.AdamW (Adam with decoupled weight decay) on the C++ core.

The rule is Adam's (csrc/include/optimcore/adam.hpp, decoupled_weight_decay=True), as in torch,
where AdamW is a subclass of Adam.
"""

from __future__ import annotations

from torch import Tensor

from .adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    """Implements AdamW, as ``torch.optim.AdamW`` (same arguments, defaults, state and errors)."""

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad,
            foreach=foreach, maximize=maximize, capturable=capturable,
            differentiable=differentiable, fused=fused, decoupled_weight_decay=True,
            master_weights=master_weights, stochastic_rounding=stochastic_rounding,
        )

    # As torch: loading any state into AdamW keeps decoupled weight decay on.
    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
