"""optimcore.SWATS: Keskar & Socher, "Improving Generalization Performance by Switching from Adam
to SGD" (arXiv:1712.07628), Algorithm 1, on optimcore's C++ core (csrc/include/optimcore/
swats.hpp): Adam until the projected SGD learning-rate estimate converges, then SGD with
momentum at the learned rate.

Choices where the paper leaves them open, and how the popular collections differ:

- **Per tensor.** Each parameter tensor (a layer's weight, its bias) estimates and switches on
  its own. torch_optimizer.SWATS (0.3.0) estimates per tensor but switches the whole group at
  the first tensor that converges, and writes that tensor's rate into ``group["lr"]`` (a
  scheduler then overwrites it, and the other tensors take a rate estimated for another).
- **Bias correction** as the paper: Adam's step uses the bias-corrected moments, the switch
  compares ``lambda / (1 - beta2^k)`` with the current estimate.
- **Switch test** relative: ``|lambda / (1 - beta2^k) - gamma| <= switch_tolerance * |gamma|``
  (default 1e-6; the paper's 1e-9 is absolute, on rates of about 1e-3); torch_optimizer uses
  ``allclose(rtol=1e-6)``.
- **SGD phase** as the paper: ``v = beta1 v + g; x -= (1 - beta1) * sgd_lr * v``, with
  ``sgd_lr`` scaled by ``lr / switch_lr`` (the lr when it switched), so an LR schedule scales
  the learned rate from the switch on, instead of overwriting it. torch_optimizer scales its
  momentum buffer by ``1 - beta1`` in place every step (its buffer then decays differently
  from the paper's v).

State per tensor: ``step``, ``exp_avg``, ``exp_avg_sq`` (``max_exp_avg_sq`` with amsgrad),
``momentum_buffer`` (zeros until the switch), and 0-d tensors ``exp_avg2`` (lambda),
``sgd_lr`` (the learned rate), ``switch_lr`` (float64) and ``switched_at`` (float32: the step
it switched at; 0: still Adam). lambda is float64: in float32 it stops moving ~3e-5 short of
its limit, before a 1e-6 test can pass. All survive checkpoints exactly (``load_state_dict``
takes them from the checkpoint as saved, not through torch's cast to the parameter's dtype);
a torch_optimizer.SWATS checkpoint loads into the Adam phase. ``optimizer.switches()`` lists
them.
"""

from __future__ import annotations

import math

import torch
from torch.optim.optimizer import Optimizer

from ._optimizer import CoreOptimizer, check_adam_arguments, hyperparameter
from ._table import real

__all__ = ["SWATS"]


class SWATS(CoreOptimizer):
    """Implements SWATS on optimcore's compiled core.

    Args:
        params (iterable): parameters to optimize or dicts defining parameter groups.
        lr (float): Adam's learning rate (default: 1e-3); after the switch it scales the learned
            SGD rate by lr / (the lr at the switch).
        betas (Tuple[float, float]): Adam's coefficients; beta1 is also the SGD momentum and
            beta2 the estimate's averaging (default: (0.9, 0.999)).
        eps (float): Adam's denominator term (default: 1e-8).
        weight_decay (float): L2 penalty added to the gradient, in both phases (default: 0).
        amsgrad (bool): AMSGrad's running maximum in the Adam phase (default: False).
        switch_tolerance (float): relative tolerance of the switch test (default: 1e-6).
    """

    _rule = "swats"
    # max_exp_avg_sq: amsgrad switched on mid-training; the others: a torch_optimizer.SWATS
    # checkpoint (its exp_avg2 is kept), zero-initialised as on a first step.
    _optional_state = frozenset({"max_exp_avg_sq", "momentum_buffer", "sgd_lr", "switch_lr",
                                 "switched_at"})
    _SCALARS = {"exp_avg2": torch.float64, "sgd_lr": torch.float64,
                "switch_lr": torch.float64, "switched_at": torch.float32}
    _sparse_message = "SWATS does not support sparse gradients"
    _torch_steps_mixed_dtypes = True  # its torch-ops step does
    _group_keys_kept_on_load = ("switch_tolerance",)  # a torch_optimizer checkpoint has none
    _exact_scalar_load = True

    def _init(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0, amsgrad: bool = False, switch_tolerance: float = 1e-6):
        check_adam_arguments(lr, eps, betas, weight_decay)
        if not 0.0 <= switch_tolerance:
            raise ValueError(f"Invalid switch_tolerance: {switch_tolerance}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        switch_tolerance=switch_tolerance)
        Optimizer.__init__(self, params, defaults)

    def _uses_state(self, group: dict, key: str) -> bool:
        return key != "max_exp_avg_sq" or bool(group["amsgrad"])

    def _scalar_dtype(self, key: str) -> torch.dtype:
        return self._SCALARS[key]

    def _new_scalar_state(self, group: dict, key: str, p: torch.Tensor) -> torch.Tensor:
        return torch.tensor(0.0, dtype=self._SCALARS[key], device=p.device)

    def _hyperparameters(self, group: dict) -> dict:
        lr = hyperparameter(group, "lr")
        return dict(
            lr=lr,
            beta1=hyperparameter(group, "betas", 0, high=1.0),
            beta2=hyperparameter(group, "betas", 1, high=1.0),
            eps=hyperparameter(group, "eps"),
            weight_decay=hyperparameter(group, "weight_decay"),
            amsgrad=bool(group["amsgrad"]),
            switch_tolerance=hyperparameter(group, "switch_tolerance"),
        )

    def switches(self) -> list:
        """[(group index, parameter index, step it switched at (0: still Adam), learned SGD
        rate)] for every parameter with state."""
        out = []
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                state = self.state.get(p)
                if state and "switched_at" in state:
                    out.append((gi, pi, int(state["switched_at"]), float(state["sgd_lr"])))
        return out

    @torch.no_grad()
    def _reference_step(self) -> None:
        """The step in torch ops (the path for groups the compiled core cannot take)."""
        for group in self.param_groups:
            h = self._hyperparameters(group)
            beta1, beta2 = h["beta1"], h["beta2"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(self._sparse_message)
                state = self._reference_state(group, p)
                grad, p = real(p.grad), real(p)  # as the core: complex as pairs of reals
                state["step"] += 1
                k = float(state["step"])
                if h["weight_decay"] != 0:
                    grad = grad.add(p, alpha=h["weight_decay"])
                if not p.is_meta and float(state["switched_at"]) > 0:
                    buf = real(state["momentum_buffer"])
                    buf.mul_(beta1).add_(grad)
                    switch_lr = float(state["switch_lr"])
                    scale = h["lr"] / switch_lr if switch_lr > 0 else 1.0
                    p.add_(buf, alpha=-(1 - beta1) * float(state["sgd_lr"]) * scale)
                    continue
                exp_avg, exp_avg_sq = real(state["exp_avg"]), real(state["exp_avg_sq"])
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if h["amsgrad"]:
                    max_sq = real(state["max_exp_avg_sq"])
                    torch.max(max_sq, exp_avg_sq, out=max_sq)
                    denom = max_sq.sqrt().add_(h["eps"])
                else:
                    denom = exp_avg_sq.sqrt().add_(h["eps"])
                bias_correction1 = 1 - beta1 ** k
                bias_correction2 = 1 - beta2 ** k
                step_size = h["lr"] * bias_correction2 ** 0.5 / bias_correction1
                step = -step_size * (exp_avg / denom)
                p.add_(step)
                if p.is_meta:  # no values to estimate from
                    continue
                flat = step.reshape(-1).double()
                pg = float(flat.dot(grad.reshape(-1).double()))
                if pg != 0:
                    gamma = float(flat.dot(flat)) / -pg
                    lam = beta2 * float(state["exp_avg2"]) + (1 - beta2) * gamma
                    state["exp_avg2"].fill_(lam)
                    corrected = float(state["exp_avg2"]) / bias_correction2
                    if k > 1 and corrected > 0 and math.fabs(corrected - gamma) <= \
                            h["switch_tolerance"] * math.fabs(gamma):
                        state["sgd_lr"].fill_(corrected)
                        state["switch_lr"].fill_(h["lr"])
                        state["switched_at"].fill_(k)
