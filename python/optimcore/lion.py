"""optimcore.Lion: Chen et al., "Symbolic Discovery of Optimization Algorithms"
(arXiv:2302.06675), numerically the widely used lion-pytorch package (0.2.5), on optimcore's
C++ core (csrc/include/optimcore/lion.hpp).

As lion-pytorch: ``decoupled_weight_decay=True`` divides weight_decay by the constructor's lr,
for every group (``group["base_lr"]`` here, kept in the group so checkpoints carry it;
lion-pytorch keeps it and the flag on the optimizer object, so loading one of its checkpoints
keeps this optimizer's), and the constructor refuses ``lr <= 0`` and betas outside [0, 1]
(lion-pytorch asserts).
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import Optimizer

from ._optimizer import CoreOptimizer, hyperparameter
from ._state import to_float
from ._table import real

__all__ = ["Lion"]


class Lion(CoreOptimizer):
    """Implements Lion on optimcore's compiled core.

    Args:
        params (iterable): parameters to optimize or dicts defining parameter groups.
        lr (float): learning rate (default: 1e-4).
        betas (Tuple[float, float]): interpolation for the update's sign and the momentum
            (default: (0.9, 0.99)).
        weight_decay (float): decoupled weight decay, p *= 1 - lr * weight_decay (default: 0).
        decoupled_weight_decay (bool): divide weight_decay by the initial lr (default: False).

    State per parameter: ``exp_avg``.
    """

    _rule = "lion"
    _sparse_message = "Lion does not support sparse gradients"
    _torch_steps_mixed_dtypes = True  # as lion-pytorch's in-place ops do

    def _init(self, params, lr: float = 1e-4, betas: tuple = (0.9, 0.99),
              weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        if not lr > 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta <= 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay)
        Optimizer.__init__(self, params, defaults)

    # lion-pytorch keeps both on the optimizer: loading its checkpoint keeps this optimizer's.
    _group_keys_kept_on_load = ("base_lr", "decoupled_weight_decay")

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        # The constructor's lr for every group, as lion-pytorch divides by its _init_lr.
        group.setdefault("base_lr", to_float(self.defaults["lr"]))

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("base_lr", to_float(self.defaults["lr"]))

    def _weight_decay(self, group: dict) -> float:
        wd = hyperparameter(group, "weight_decay")
        if group["decoupled_weight_decay"] and wd:
            wd /= hyperparameter(group, "base_lr")
        return wd

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            beta1=hyperparameter(group, "betas", 0, high=1.0, inclusive=True),
            beta2=hyperparameter(group, "betas", 1, high=1.0, inclusive=True),
            weight_decay=self._weight_decay(group),
        )

    @torch.no_grad()
    def _reference_step(self) -> None:
        """The step in torch ops, lion-pytorch's update_fn: the path for groups the compiled
        core cannot take."""
        for group in self.param_groups:
            h = self._hyperparameters(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(self._sparse_message)
                state = self._reference_state(group, p)
                # as the core: a complex parameter as pairs of reals
                exp_avg, grad = real(state["exp_avg"]), real(p.grad)
                p = real(p)
                p.mul_(1.0 - h["lr"] * h["weight_decay"])
                update = exp_avg.clone().mul_(h["beta1"]).add(grad,
                                                              alpha=1.0 - h["beta1"]).sgn_()
                p.add_(update, alpha=-h["lr"])
                exp_avg.mul_(h["beta2"]).add_(grad, alpha=1.0 - h["beta2"])
