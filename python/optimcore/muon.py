"""optimcore.Muon: torch.optim.Muon with its elementwise passes on optimcore's C++ core
(csrc/include/optimcore/muon.hpp) around torch's own Newton-Schulz orthogonalization.

A rule of its own kind: per 2-D parameter, a momentum pass writes the bfloat16 input of
Newton-Schulz, torch's `_zeropower_via_newtonschulz` (its matmuls) orthogonalizes it, and an
update pass applies weight decay and the orthogonalized update. The class plans its step here.
"""

from __future__ import annotations


import torch
from torch.autograd.graph import increment_version
from torch.optim._muon import _adjust_lr, _zeropower_via_newtonschulz

from . import _C, _table
from ._optimizer import CoreOptimizer, hyperparameter
from ._state import TorchStep

__all__ = ["Muon"]

_KERNEL_DTYPES = {torch.float32: 0, torch.float64: 1}


class Muon(CoreOptimizer, torch.optim.Muon):
    """Implements Muon: ``torch.optim.Muon`` (its constructor, arguments, defaults, state and
    errors); the momentum and update passes run on optimcore's compiled core, the
    Newton-Schulz orthogonalization on torch's matmuls, exactly as torch computes it."""

    _rule = "muon"
    _has_step = False
    _state_names = ("momentum_buffer",)

    def _hyperparameters(self, group: dict) -> dict:
        return dict(
            lr=hyperparameter(group, "lr"),
            weight_decay=hyperparameter(group, "weight_decay"),
            momentum=hyperparameter(group, "momentum"),
            nesterov=bool(group["nesterov"]),
        )

    def _plan_core(self, gi: int, group: dict, hyper: dict):
        coefficients, ns_steps = group["ns_coefficients"], group["ns_steps"]
        if ns_steps >= 100 or len(coefficients) != 3:  # torch's checks, before any write here
            raise ValueError(f"optimcore.Muon: param group {gi}: ns_steps must be < 100 and "
                             "ns_coefficients 3 values")
        rows, lrs, updates, new_state, written, dtypes, grads = [], [], [], [], [], set(), []
        for pi, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            where = self._where(gi, pi)
            if p.is_complex():
                raise RuntimeError(f"{where}: Muon does not support complex parameters")
            if g.is_sparse:
                raise RuntimeError(f"{where}: Muon does not support sparse gradients")
            if g.ndim != 2:
                raise ValueError(f"{where}: Param gradient must be a 2D matrix")
            if _table.is_dtensor(p):
                raise TorchStep("DTensor parameter: Newton-Schulz needs the whole matrix")
            _table.check_param(where, p)
            if (p.dtype not in _KERNEL_DTYPES or not p.is_contiguous() or g.dtype != p.dtype
                    or g.shape != p.shape or g.device != p.device):
                raise TorchStep(f"parameter {pi} is not a contiguous float32/float64 matrix "
                                "with a gradient like it")
            g = g.resolve_neg().contiguous()
            state = self.state.get(p)
            buf = state.get("momentum_buffer") if state else None
            if buf is None:
                buf = torch.zeros_like(g)
                new_state.append((p, buf))
            elif not (isinstance(buf, torch.Tensor) and buf.shape == p.shape
                      and buf.dtype == p.dtype and buf.is_contiguous()):
                raise TorchStep(f"state 'momentum_buffer' of parameter {pi} is not a "
                                "contiguous tensor like its parameter")
            update = torch.empty(p.shape, dtype=torch.bfloat16, device="cpu")
            rows.append([p.data_ptr(), g.data_ptr(), buf.data_ptr(), update.data_ptr(),
                         p.numel()])
            lrs.append(-_adjust_lr(hyper["lr"], group["adjust_lr_fn"], p.shape))
            updates.append(update)
            grads.append(g)
            written += [p, buf]
            dtypes.add(p.dtype)
        if not rows:
            return None
        if len(dtypes) > 1:
            raise TorchStep("parameters of several dtypes in one group")
        _table.check_apart(written, grads)
        table = torch.tensor(rows, dtype=torch.int64, device="cpu")
        neg_lr = torch.tensor(lrs, dtype=torch.float64, device="cpu")
        dtype = _KERNEL_DTYPES[dtypes.pop()]

        def run(num_threads: int) -> None:
            for p, buf in new_state:
                self.state[p]["momentum_buffer"] = buf
            increment_version(written)
            _C.muon_momentum(table.data_ptr(), neg_lr.data_ptr(), len(rows), dtype, num_threads,
                             **hyper)
            for k, update in enumerate(updates):  # torch's matmuls, in bfloat16 as torch does
                ortho = _zeropower_via_newtonschulz(update, coefficients, ns_steps,
                                                    group["eps"]).contiguous()
                updates[k] = ortho
                table[k, 3] = ortho.data_ptr()
            _C.muon_update(table.data_ptr(), neg_lr.data_ptr(), len(rows), dtype, num_threads,
                           **hyper)
            del grads[:], updates[:]

        return run
