"""optimcore.Adafactor: torch.optim.Adafactor on optimcore's C++ core
(csrc/include/optimcore/adafactor.hpp).

A rule of its own kind: per-tensor reductions (the parameter's RMS, the factored row and column
second moments, whose state has another shape than the parameter, the update's RMS), so it plans
its step here instead of through the elementwise tables of _table.py: one row per parameter with
its pointers and its matrix shape (batch, rows, cols); the kernel makes the reduction passes and
the update pass of each tensor.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.graph import increment_version
from torch.optim.optimizer import _get_scalar_dtype

from . import _C, _table
from ._optimizer import CoreOptimizer, hyperparameter
from ._state import TorchStep

__all__ = ["Adafactor"]

_KERNEL_DTYPES = {torch.float32: 0, torch.float64: 1}


class Adafactor(CoreOptimizer, torch.optim.Adafactor):
    """Implements Adafactor: ``torch.optim.Adafactor`` (its constructor, arguments, defaults,
    state and errors) with the step on optimcore's compiled core. Parameters that are not
    contiguous float32/float64, or are empty, run torch's own step."""

    _rule = "adafactor"
    _has_step = True
    _state_names = ()  # which of row_var/col_var or variance depends on the parameter's rank

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            beta2_decay=hyperparameter(group, "beta2_decay", low=-math.inf, high=0.0,
                                       inclusive=True),
            eps2=hyperparameter(group, "eps", 1),
            d=hyperparameter(group, "d", low=1.0),
            weight_decay=hyperparameter(group, "weight_decay"),
            maximize=bool(group["maximize"]),
        )

    def _plan_core(self, gi: int, group: dict, hyper: dict):
        rows, grad_ptrs, new_state, written, keep, dtypes = [], [], [], [], [], set()
        for pi, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            where = self._where(gi, pi)
            if p.is_complex():  # torch's messages, raised before anything is written
                raise RuntimeError(f"{where}: Adafactor does not support complex parameters")
            if g.is_sparse:
                raise RuntimeError(f"{where}: Adafactor does not support sparse gradients")
            if _table.is_dtensor(p):
                raise TorchStep("DTensor parameter: its reductions need the whole tensor, not the local shard")
            _table.check_param(where, p)
            if p.numel() == 0:  # torch divides by zero here too, after earlier parameters
                raise ZeroDivisionError(f"{where}: Adafactor cannot step an empty parameter "
                                        "(its RMS divides by zero)")
            if (p.dtype not in _KERNEL_DTYPES or not p.is_contiguous()
                    or g.dtype != p.dtype or g.shape != p.shape or g.device != p.device):
                raise TorchStep(f"parameter {pi} is not a non-empty contiguous float32/float64 "
                                "tensor with a gradient like it")
            g = g.resolve_neg().contiguous()
            state = self.state.get(p)
            if not state:
                state = {"step": torch.tensor(0.0, dtype=_get_scalar_dtype(), device="cpu")}
                if g.dim() > 1:
                    state["row_var"] = g.new_zeros(g.shape[:-1] + (1,))
                    state["col_var"] = g.new_zeros(g.shape[:-2] + (1, g.shape[-1]))
                else:
                    state["variance"] = torch.zeros_like(g)
                new_state.append((p, state))
            keys = ("row_var", "col_var") if g.dim() > 1 else ("variance",)
            missing = [k for k in ("step",) + keys if k not in state]
            if missing:
                raise RuntimeError(f"{where}: state has no {missing[0]!r}: the state (or the "
                                   "checkpoint it was loaded from) is incomplete")
            shapes = ((g.shape[:-1] + (1,), g.shape[:-2] + (1, g.shape[-1])) if g.dim() > 1
                      else (g.shape,))
            step = state.get("step")
            if not (isinstance(step, torch.Tensor) and step.dtype == torch.float32
                    and step.numel() == 1 and step.is_contiguous() and step.device.type == "cpu"):
                raise TorchStep(f"state 'step' of parameter {pi} is not a float32 tensor")
            for key, shape in zip(keys, shapes):
                s = state.get(key)
                if not (isinstance(s, torch.Tensor) and s.shape == shape and s.dtype == p.dtype
                        and s.is_contiguous() and s.device == p.device):
                    raise TorchStep(f"state '{key}' of parameter {pi} is not a contiguous "
                                    f"{p.dtype} tensor of shape {tuple(shape)}")
            if g.dim() > 1:
                batch, nrows, ncols = math.prod(g.shape[:-2]), g.shape[-2], g.shape[-1]
            else:
                batch, nrows, ncols = 1, 1, g.numel()
            rows.append([p.data_ptr(), 0, step.data_ptr(),
                         state["row_var"].data_ptr() if g.dim() > 1 else 0,
                         state["col_var"].data_ptr() if g.dim() > 1 else 0,
                         state["variance"].data_ptr() if g.dim() <= 1 else 0,
                         batch, nrows, ncols, int(g.dim() > 1)])
            grad_ptrs.append(g.data_ptr())
            written += [p, step] + [state[k] for k in keys]
            keep.append(g)
            dtypes.add(p.dtype)
        if not rows:
            return None
        if len(dtypes) > 1:
            raise TorchStep("parameters of several dtypes in one group")
        _table.check_apart(written, keep)
        dtype = dtypes.pop()
        eps1 = group["eps"][0]
        hyper = dict(hyper, eps1=torch.finfo(dtype).eps if eps1 is None else float(eps1))
        table = torch.tensor(rows, dtype=torch.int64, device="cpu")
        grads = torch.tensor(grad_ptrs, dtype=torch.int64, device="cpu")

        def run(num_threads: int) -> None:
            for p, state in new_state:
                self.state[p] = state
            increment_version(written)
            _C.adafactor_step(table.data_ptr(), grads.data_ptr(), len(rows),
                              _KERNEL_DTYPES[dtype], num_threads, **hyper)
            del keep[:]  # the gradients (contiguous copies if needed) lived through the kernel

        return run
