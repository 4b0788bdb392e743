"""optimcore.AdaBound (and AMSBound): Luo et al., "Adaptive Gradient Methods with Dynamic Bound
of Learning Rate" (ICLR 2019), numerically the reference implementation (PyPI ``adabound``
0.0.5, Luolc/AdaBound), on optimcore's C++ core (csrc/include/optimcore/adabound.hpp).

Differences from the reference, where it does not work as intended:

- Each group keeps its base learning rate in the group (``group["base_lr"]``, its lr when
  added), so it survives ``state_dict``/``load_state_dict`` and a resumed run continues the
  exact trajectory (the reference keeps ``base_lrs`` on the optimizer object only). Loading a
  checkpoint without it (the reference's) keeps this optimizer's, as the reference does.
- Groups added with ``add_param_group`` are updated (the reference zips the groups with the
  base lrs of the constructor and silently skips later groups).
- ``final_lr`` is scaled by ``lr / base_lr`` as in the reference; with ``base_lr == 0`` (built
  with lr=0) the reference divides by zero, here ``final_lr`` is used unscaled, and ``lr == 0``
  makes the step a clean no-op (bounds [0, 0]).
- ``step`` is a float32 0-d tensor, as torch.optim's Adam keeps it (the reference: an int);
  either loads.
- Constructor checks also refuse a negative ``weight_decay``.
"""

from __future__ import annotations

import math

import torch
from torch.optim.optimizer import Optimizer

from ._optimizer import CoreOptimizer, check_adam_arguments, hyperparameter
from ._state import to_float
from ._table import real

__all__ = ["AdaBound"]


class AdaBound(CoreOptimizer):
    """Implements AdaBound (``amsbound=True``: AMSBound) on optimcore's compiled core.

    Args:
        params (iterable): parameters to optimize or dicts defining parameter groups.
        lr (float): Adam learning rate (default: 1e-3).
        betas (Tuple[float, float]): coefficients of the running averages of the gradient and
            its square (default: (0.9, 0.999)).
        final_lr (float): final (SGD) learning rate (default: 0.1), scaled by lr / base_lr.
        gamma (float): convergence speed of the bound functions (default: 1e-3).
        eps (float): added to sqrt(v) (uncorrected) in the denominator (default: 1e-8).
        weight_decay (float): L2 penalty added to the gradient (default: 0).
        amsbound (bool): use the running maximum of the second moment (default: False).

    State per parameter: ``step`` (float32 0-d tensor), ``exp_avg``, ``exp_avg_sq`` (and
    ``max_exp_avg_sq`` with amsbound). ``master_weights`` and ``stochastic_rounding`` as for
    ``optimcore.Adam``.
    """

    _rule = "adabound"
    _optional_state = frozenset({"max_exp_avg_sq"})  # amsbound switched on mid-training
    _sparse_message = "AdaBound does not support sparse gradients"
    # Its torch-ops step (the reference's) steps with state or gradients of another dtype:
    # such a group takes it.
    _torch_steps_mixed_dtypes = True
    _group_keys_kept_on_load = ("base_lr",)  # a reference checkpoint has none
    #: AdaBoundW: AdamW's decoupled weight decay (p *= 1 - lr * weight_decay).
    _decoupled = False

    def _init(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
              final_lr: float = 0.1, gamma: float = 1e-3, eps: float = 1e-8,
              weight_decay: float = 0, amsbound: bool = False):
        check_adam_arguments(lr, eps, betas, weight_decay)
        if not 0.0 <= final_lr:
            raise ValueError(f"Invalid final learning rate: {final_lr}")
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"Invalid gamma parameter: {gamma}")
        defaults = dict(lr=lr, betas=betas, final_lr=final_lr, gamma=gamma, eps=eps,
                        weight_decay=weight_decay, amsbound=amsbound)
        Optimizer.__init__(self, params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("base_lr", to_float(group["lr"]))

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsbound", False)
            group.setdefault("base_lr", to_float(group["lr"]))  # a reference checkpoint

    def _uses_state(self, group: dict, key: str) -> bool:
        return key != "max_exp_avg_sq" or bool(group["amsbound"])

    def _final_lr(self, group: dict, lr: float) -> float:
        """final_lr scaled by lr / base_lr, so schedulers move the bounds (see the module)."""
        final_lr = hyperparameter(group, "final_lr")
        base_lr = hyperparameter(group, "base_lr")
        if lr == 0.0:
            return 0.0
        return final_lr * lr / base_lr if base_lr > 0.0 else final_lr

    def _hyperparameters(self, group: dict) -> dict:
        lr = hyperparameter(group, "lr")
        return dict(
            lr=lr,
            beta1=hyperparameter(group, "betas", 0, high=1.0),  # beta = 1 divides by zero
            beta2=hyperparameter(group, "betas", 1, high=1.0),
            final_lr=self._final_lr(group, lr),
            gamma=hyperparameter(group, "gamma", high=1.0),
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            amsbound=bool(group["amsbound"]),
            decoupled_weight_decay=self._decoupled,
        )

    @torch.no_grad()
    def _reference_step(self) -> None:
        """The step in torch ops, the reference's operation order with the fixes above: the
        path for groups the compiled core cannot take (another device, tensor
        hyperparameters other than float64, ...)."""
        for group in self.param_groups:
            h = self._hyperparameters(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError(self._sparse_message)
                state = self._reference_state(group, p)
                p, grad = real(p), real(grad)  # as the core: complex as pairs of reals
                state["step"] += 1
                t = float(state["step"])
                if h["weight_decay"] != 0:
                    if h["decoupled_weight_decay"]:
                        p.mul_(1 - h["lr"] * h["weight_decay"])
                    else:
                        grad = grad.add(p, alpha=h["weight_decay"])
                exp_avg, exp_avg_sq = real(state["exp_avg"]), real(state["exp_avg_sq"])
                exp_avg.mul_(h["beta1"]).add_(grad, alpha=1 - h["beta1"])
                exp_avg_sq.mul_(h["beta2"]).addcmul_(grad, grad, value=1 - h["beta2"])
                if h["amsbound"]:
                    max_sq = real(state["max_exp_avg_sq"])
                    torch.max(max_sq, exp_avg_sq, out=max_sq)
                    denom = max_sq.sqrt().add_(h["eps"])
                else:
                    denom = exp_avg_sq.sqrt().add_(h["eps"])
                bias_correction1 = 1 - h["beta1"] ** t
                bias_correction2 = 1 - h["beta2"] ** t
                step_size = h["lr"] * math.sqrt(bias_correction2) / bias_correction1
                final_lr = h["final_lr"]
                lower = final_lr * (1 - 1 / (h["gamma"] * t + 1))
                upper = final_lr * (1 + 1 / (h["gamma"] * t)) if h["gamma"] else math.inf
                step = torch.full_like(denom, step_size)
                step.div_(denom).clamp_(lower, upper).mul_(exp_avg)
                p.add_(-step)
