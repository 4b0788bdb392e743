"""optimcore.SparseAdam: torch.optim.SparseAdam on optimcore's C++ core
(csrc/include/optimcore/sparse_adam.hpp).

A rule of its own kind: its gradients are row-sparse (nn.Embedding(sparse=True)), so it plans
its step here instead of through the dense tables of _table.py: one row per parameter holding
its pointers, the coalesced gradient's row indices and values, and its step count; the kernel
reads and writes only the touched rows.
"""

from __future__ import annotations


import torch
from torch.autograd.graph import increment_version

from . import _C, _table
from ._optimizer import CoreOptimizer, hyperparameter
from ._state import TorchStep, to_float

__all__ = ["SparseAdam"]

_KERNEL_DTYPES = {torch.float32: 0, torch.float64: 1}


class SparseAdam(CoreOptimizer, torch.optim.SparseAdam):
    """Implements lazy Adam for sparse gradients: ``torch.optim.SparseAdam`` (its constructor,
    arguments, state with a Python-int ``step``, and errors) with the update of the touched rows
    on optimcore's compiled core. Parameters whose gradients are not row-sparse (sparse in their
    first dimension only), or not float32/float64, run torch's own step."""

    _rule = "sparse_adam"
    _supports_sparse = True
    _has_step = True  # a Python int, as torch keeps it
    _state_names = ("exp_avg", "exp_avg_sq")  # for the checkpoint checks

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            beta1=hyperparameter(group, "betas", 0, high=1.0),
            beta2=hyperparameter(group, "betas", 1, high=1.0),
            eps=hyperparameter(group, "eps"),
            maximize=bool(group.get("maximize", False)),
        )

    def _plan_core(self, gi: int, group: dict, hyper: dict):
        rows, stepped, new_state, written, keep = [], [], [], [], []
        dtypes = set()
        for pi, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            where = self._where(gi, pi)
            if not g.is_sparse:  # torch raises this too, but midway through its step
                raise RuntimeError(f"{where}: SparseAdam does not support dense gradients, "
                                   "please consider Adam instead")
            if _table.is_dtensor(p):
                raise TorchStep("DTensor parameter: row indices refer to the whole table")
            _table.check_param(where, p)
            if (p.dtype not in _KERNEL_DTYPES or not p.is_contiguous() or p.dim() == 0
                    or g.dtype != p.dtype or g.shape != p.shape or g.sparse_dim() != 1):
                raise TorchStep(f"parameter {pi}'s gradient is not a row-sparse "
                                "float32/float64 gradient of a contiguous parameter")
            state = self.state.get(p)
            if not state:
                state = {"step": 0, "exp_avg": torch.zeros_like(p),
                         "exp_avg_sq": torch.zeros_like(p)}
                new_state.append((p, state))
            missing = [k for k in ("step", "exp_avg", "exp_avg_sq") if k not in state]
            if missing:
                raise RuntimeError(f"{where}: state has no {missing[0]!r}: the state (or the "
                                   "checkpoint it was loaded from) is incomplete")
            if type(state["step"]) is not int or state["step"] < 0:
                raise TorchStep(f"state 'step' of parameter {pi} is not a non-negative int")
            for key in ("exp_avg", "exp_avg_sq"):
                s = state.get(key)
                if not (isinstance(s, torch.Tensor) and s.shape == p.shape
                        and s.dtype == p.dtype and s.is_contiguous() and s.device == p.device):
                    raise TorchStep(f"state '{key}' of parameter {pi} is not a contiguous tensor "
                                    "like its parameter")
            g = g.coalesce()
            indices = g._indices()[0].contiguous()
            values = g._values().contiguous()
            if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= p.shape[0]):
                # torch's step raises IndexError here too (after writing other parameters)
                raise IndexError(f"{where}: sparse gradient row index out of bounds for a "
                                 f"parameter of {p.shape[0]} rows")
            row_numel = p[0].numel() if p.shape[0] else 0
            rows.append([p.data_ptr(), state["exp_avg"].data_ptr(),
                         state["exp_avg_sq"].data_ptr(), indices.data_ptr(), values.data_ptr(),
                         indices.numel(), row_numel, int(to_float(state["step"])) + 1])
            stepped.append(p)
            written += [p, state["exp_avg"], state["exp_avg_sq"]]
            keep.append((indices, values))
            dtypes.add(p.dtype)
        if not rows:
            return None
        if len(dtypes) > 1:
            raise TorchStep("parameters of several dtypes in one group")
        _table.check_apart(written, [t for pair in keep for t in pair])
        table = torch.tensor(rows, dtype=torch.int64, device="cpu")
        dtype_code = _KERNEL_DTYPES[dtypes.pop()]

        def run(num_threads: int) -> None:
            for p, state in new_state:
                self.state[p] = state
            for p in stepped:
                self.state[p]["step"] += 1
            increment_version(written)
            _C.sparse_adam_step(table.data_ptr(), len(rows), dtype_code, num_threads, **hyper)
            del keep[:]  # the coalesced gradients lived through the kernel

        return run
