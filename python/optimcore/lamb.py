"""optimcore.LAMB: You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
minutes" (arXiv:1904.00962), numerically torch_optimizer.Lamb (torch-optimizer 0.3.0) under the
same options, on optimcore's C++ core (csrc/include/optimcore/lamb.hpp).

The choices, as arguments with torch_optimizer's defaults:

- ``debias=False``: no bias correction in the step size (the paper's v3); ``True`` uses Adam's.
- ``clamp_value=10``: the weight norm in the trust ratio is clipped to [0, clamp_value].
- ``adam=False``: ``True`` sets the trust ratio to 1 (Adam with LAMB's step).
- Every tensor is adapted, 0-d and 1-d ones (biases, norms) included, as in torch_optimizer:
  exclude them by putting them in a group with ``adam=True``.

torch_optimizer keeps ``clamp_value``, ``adam`` and ``debias`` on the optimizer object; here they
are group options (a group can differ, and checkpoints carry them; loading a torch_optimizer
checkpoint keeps this optimizer's). Its ``step`` is an int, here a float32 tensor as torch.optim
keeps it: an optimcore checkpoint loaded into torch_optimizer with ``debias=True`` makes it
compute ``beta ** step`` in float32 (a ~1e-8 drift in float64). State per tensor: ``step`` (float32 tensor; torch_optimizer:
an int), ``exp_avg``, ``exp_avg_sq`` and, as torch_optimizer keeps them, ``weight_norm``,
``adam_norm`` and ``trust_ratio`` (float64 0-d tensors of the values in the parameter's
precision).
"""

from __future__ import annotations

import math

import torch
from torch.optim.optimizer import Optimizer

from ._optimizer import CoreOptimizer, check_adam_arguments, hyperparameter
from ._table import real

__all__ = ["LAMB"]


class LAMB(CoreOptimizer):
    """Implements LAMB on optimcore's compiled core.

    Args:
        params (iterable): parameters to optimize or dicts defining parameter groups.
        lr (float): learning rate (default: 1e-3).
        betas (Tuple[float, float]): Adam's coefficients (default: (0.9, 0.999)).
        eps (float): added to sqrt(v) (default: 1e-6).
        weight_decay (float): added to the Adam step as weight_decay * p (default: 0).
        clamp_value (float): clip of the weight norm in the trust ratio (default: 10).
        adam (bool): trust ratio 1 (default: False).
        debias (bool): Adam's bias corrections in the step size (default: False).
    """

    _rule = "lamb"
    _sparse_message = "Lamb does not support sparse gradients, please consider SparseAdam instead"
    _torch_steps_mixed_dtypes = True
    _exact_scalar_load = True
    # diagnostics torch_optimizer keeps; a checkpoint from it (or from a step of a rule
    # version without them) may lack them
    _optional_state = frozenset({"weight_norm", "adam_norm", "trust_ratio"})
    _group_keys_kept_on_load = ("clamp_value", "adam", "debias")

    def _init(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-6,
              weight_decay: float = 0, clamp_value: float = 10, adam: bool = False,
              debias: bool = False):
        check_adam_arguments(lr, eps, betas, weight_decay, lr_positive=True)
        if clamp_value < 0.0:
            raise ValueError(f"Invalid clamp value: {clamp_value}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        clamp_value=clamp_value, adam=adam, debias=debias)
        Optimizer.__init__(self, params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key in ("clamp_value", "adam", "debias"):
                group.setdefault(key, self.defaults.get(key, dict(clamp_value=10, adam=False,
                                                                  debias=False)[key]))

    def _scalar_dtype(self, key: str) -> torch.dtype:
        return torch.float64

    def _new_scalar_state(self, group: dict, key: str, p: torch.Tensor) -> torch.Tensor:
        return torch.tensor(0.0, dtype=torch.float64, device=p.device)

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            beta1=hyperparameter(group, "betas", 0, high=1.0),
            beta2=hyperparameter(group, "betas", 1, high=1.0),
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            clamp_value=hyperparameter(group, "clamp_value"),
            adam=bool(group["adam"]),
            debias=bool(group["debias"]),
        )

    @torch.no_grad()
    def _reference_step(self) -> None:
        """The step in torch ops, torch_optimizer.Lamb's: the path for groups the compiled core
        cannot take."""
        for group in self.param_groups:
            h = self._hyperparameters(group)
            beta1, beta2 = h["beta1"], h["beta2"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(self._sparse_message)
                state = self._reference_state(group, p)
                grad, q = real(p.grad), real(p)
                exp_avg, exp_avg_sq = real(state["exp_avg"]), real(state["exp_avg_sq"])
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if h["debias"]:
                    k = float(state["step"])
                    bias_correction = math.sqrt(1 - beta2 ** k) / (1 - beta1 ** k)
                else:
                    bias_correction = 1
                step_size = h["lr"] * bias_correction
                weight_norm = torch.norm(q).clamp(0, h["clamp_value"])
                adam_step = exp_avg / exp_avg_sq.sqrt().add(h["eps"])
                if h["weight_decay"] != 0:
                    adam_step.add_(q, alpha=h["weight_decay"])
                adam_norm = torch.norm(adam_step)
                if q.is_meta:  # no values to branch on: the same ops, without the diagnostics
                    trust = torch.where((weight_norm == 0) | (adam_norm == 0),
                                        torch.ones_like(adam_norm), weight_norm / adam_norm)
                    q.add_(adam_step * (-step_size * (1 if h["adam"] else trust)))
                    continue
                trust_ratio = 1 if weight_norm == 0 or adam_norm == 0 else weight_norm / adam_norm
                state["weight_norm"].fill_(float(weight_norm))
                state["adam_norm"].fill_(float(adam_norm))
                state["trust_ratio"].fill_(float(trust_ratio))
                if h["adam"]:
                    trust_ratio = 1
                q.add_(adam_step, alpha=-step_size * trust_ratio)
