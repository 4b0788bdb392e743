"""optimcore.SGD: torch.optim.SGD on optimcore's C++ core (csrc/include/optimcore/sgd.hpp)."""

from __future__ import annotations

from torch import Tensor
from torch.optim.sgd import sgd as _torch_sgd

from . import _C
from ._optimizer import CoreOptimizer, _to_float

__all__ = ["SGD"]


class SGD(CoreOptimizer):
    """Implements stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    Same arguments, defaults, state and errors. Sparse gradients are supported as in torch: those
    parameters are updated by torch's own implementation. ``foreach`` and ``fused`` are accepted
    and ignored; ``differentiable=True`` raises.

    ``master_weights=True`` (optimcore only): bfloat16/float16 parameters keep a float32 copy
    (state "master_param") and float32 momentum; each step updates the copy and rounds it into the
    parameter, so small updates are not lost to 16-bit rounding.
    ``stochastic_rounding=True`` (optimcore only): bfloat16 parameters are rounded stochastically
    (unbiased), with random bits drawn from torch's default generator each step.
    """

    _supports_sparse = True

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
    ) -> None:
        # Validation mirrors torch/optim/sgd.py (2.13), message for message.
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
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
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    def _state_keys(self, group: dict) -> tuple:
        return ("momentum_buffer" if group["momentum"] != 0 else None,)

    def _new_state_is_flagged(self, key: str) -> bool:
        # torch starts the buffer as a copy of the first (decayed) gradient: the kernel writes it.
        return key == "momentum_buffer"

    def _hyperparameters(self, group: dict) -> tuple:
        return (
            _to_float(group["lr"]), _to_float(group["momentum"]), _to_float(group["dampening"]),
            _to_float(group["weight_decay"]), bool(group["nesterov"]), bool(group["maximize"]),
        )

    _kernel = staticmethod(_C.sgd_step)

    def _sparse_step(self, group: dict, params: list, grads: list) -> None:
        momentum = group["momentum"]
        buffers = [self.state[p].get("momentum_buffer") for p in params] if momentum else []
        _torch_sgd(
            params, grads, buffers if momentum else [None] * len(params),
            has_sparse_grad=True, foreach=False, fused=False,
            weight_decay=group["weight_decay"], momentum=momentum, lr=group["lr"],
            dampening=group["dampening"], nesterov=group["nesterov"],
            maximize=group["maximize"],
        )
        if momentum:
            for p, buf in zip(params, buffers):
                self.state[p]["momentum_buffer"] = buf
