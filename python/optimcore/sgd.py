"""optimcore.SGD: torch.optim.SGD on optimcore's C++ core (csrc/include/optimcore/sgd.hpp)."""

from __future__ import annotations

import torch
from torch.optim.sgd import sgd as _torch_sgd

from ._optimizer import CoreOptimizer, hyperparameter

__all__ = ["SGD"]


class SGD(CoreOptimizer, torch.optim.SGD):
    """Implements stochastic gradient descent (optionally with momentum): ``torch.optim.SGD``
    (its constructor, arguments, defaults, state and errors) with the update on optimcore's
    compiled core.

    Sparse gradients are supported as in torch: those parameters are updated by torch's own
    implementation. ``foreach`` and ``fused`` are accepted; on the CPU the compiled kernel runs
    either way. ``differentiable=True`` and parameters off the CPU run torch's own step, as do
    a momentum buffer or gradient of another dtype than the parameter (torch.optim.SGD steps
    with them, e.g. after ``model.double()``).

    ``master_weights=True`` (optimcore only): bfloat16/float16 parameters keep a float32 copy
    (state "master_param") and float32 momentum; each step updates the copy and rounds it into the
    parameter, so small updates are not lost to 16-bit rounding.
    ``stochastic_rounding=True`` (optimcore only): bfloat16 parameters are rounded stochastically
    (unbiased), with random bits drawn from torch's default generator each step.
    """

    _rule = "sgd"
    _supports_sparse = True
    _optional_state = frozenset({"momentum_buffer"})  # momentum switched on mid-training
    _torch_steps_mixed_dtypes = True

    def _uses_state(self, group: dict, key: str) -> bool:
        return group["momentum"] != 0

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            momentum=hyperparameter(group, "momentum"),
            dampening=hyperparameter(group, "dampening", low=float("-inf")),
            weight_decay=hyperparameter(group, "weight_decay"),
            nesterov=bool(group["nesterov"]),
            maximize=bool(group["maximize"]),
        )

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
