"""optimcore.Adam: torch.optim.Adam on optimcore's C++ core (csrc/include/optimcore/adam.hpp)."""

from __future__ import annotations

import torch
from torch import Tensor

from . import _C
from ._optimizer import CoreOptimizer, _to_float

__all__ = ["Adam"]


class Adam(CoreOptimizer):
    """Implements Adam, as ``torch.optim.Adam`` (same arguments, defaults, state and errors).

    ``foreach`` and ``fused`` are accepted and ignored: the compiled kernel always runs.
    ``capturable=True`` and ``differentiable=True`` raise, since compiled kernels are neither.

    ``master_weights=True`` (optimcore only): bfloat16/float16 parameters keep a float32 copy
    (state "master_param") and float32 exp_avg/exp_avg_sq; each step updates the copy and rounds
    it into the parameter, so small updates are not lost to 16-bit rounding.
    ``stochastic_rounding=True`` (optimcore only): bfloat16 parameters are rounded stochastically
    (unbiased), with random bits drawn from torch's default generator each step.
    """

    _has_step = True
    _sparse_message = (
        "Adam does not support sparse gradients, please consider SparseAdam instead"
    )

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
    ) -> None:
        # Validation mirrors torch/optim/adam.py (2.13), message for message.
        if isinstance(lr, Tensor):
            if foreach and not capturable:
                raise ValueError(
                    "lr as a Tensor is not supported for capturable=False and foreach=True"
                )
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not (
            (isinstance(betas[0], float) and isinstance(betas[1], float))
            or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))
        ):
            raise ValueError("betas must be either both floats or both Tensors")
        for i, beta in enumerate(betas):
            if isinstance(beta, Tensor):
                if not capturable and foreach:
                    raise ValueError(
                        f"betas[{i}] as a Tensor is not supported for capturable=False and "
                        "foreach=True"
                    )
                if beta.numel() != 1:
                    raise ValueError(f"Tensor betas[{i}] must be 1-element")
        betas = tuple(b.squeeze() if isinstance(b, Tensor) and b.dim() != 0 else b for b in betas)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        # optimcore's extensions: absent by default, so param groups match torch's
        if master_weights:
            defaults["master_weights"] = True
        if stochastic_rounding:
            defaults["stochastic_rounding"] = True
        super().__init__(params, defaults)
        if fused and differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)
            for p in group["params"]:  # very old checkpoints hold a number: torch makes a tensor
                p_state = self.state.get(p, {})
                if p_state and not torch.is_tensor(p_state.get("step", 0.0)):
                    p_state["step"] = torch.tensor(float(p_state["step"]), dtype=torch.float32)

    def _state_keys(self, group: dict) -> tuple:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq" if group["amsgrad"] else None)

    def _hyperparameters(self, group: dict) -> tuple:
        beta1, beta2 = group["betas"]
        return (
            _to_float(group["lr"]), _to_float(beta1), _to_float(beta2), _to_float(group["eps"]),
            _to_float(group["weight_decay"]), bool(group["amsgrad"]), bool(group["maximize"]),
            bool(group["decoupled_weight_decay"]),
        )

    _kernel = staticmethod(_C.adam_step)
