"""optimcore.LBFGS: torch.optim.LBFGS on the compiled core (csrc/include/optimcore/lbfgs.hpp):
the same iterates, evaluation counts and state (key for key, so checkpoints move both ways),
with the vector work fused and threaded. A failing closure restores the parameters and the
state (see _closure.py). Steps the core cannot take (another device, float16/bfloat16,
parameters of mixed dtypes or sharing memory) run torch's own LBFGS.step."""

from __future__ import annotations

import operator

import torch

from ._closure import ClosureOptimizer, whole_number
from ._optimizer import _unhooked

__all__ = ["LBFGS"]


class LBFGS(ClosureOptimizer, torch.optim.LBFGS):
    """Implements L-BFGS: ``torch.optim.LBFGS``'s algorithm, arguments, defaults and state,
    on the compiled core. ``last_step_result`` says what the last step did."""

    _method = "lbfgs"
    _vector_lists = ("old_dirs", "old_stps")

    def _options(self, group: dict) -> dict:
        line_search_fn = group["line_search_fn"]
        if line_search_fn is not None and line_search_fn != "strong_wolfe":
            raise RuntimeError("only 'strong_wolfe' is supported")
        max_iter = whole_number("max_iter", group["max_iter"])
        max_eval = group["max_eval"]
        max_eval = max_iter * 5 // 4 if max_eval is None else whole_number("max_eval", max_eval)
        history_size = whole_number("history_size", group["history_size"])
        if history_size < 1:
            raise ValueError(f"Invalid history_size: {history_size} (at least 1)")
        return dict(
            lr=float(group["lr"]),
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=float(group["tolerance_grad"]),
            tolerance_change=float(group["tolerance_change"]),
            history_size=history_size,
            line_search=line_search_fn is not None,
        )

    def _fallback(self, reason: str, closure):
        return _unhooked(torch.optim.LBFGS.step)(self, closure)

    def _import_extra(self, state: dict, flat: dict, vector) -> None:
        h = state.get("H_diag")
        h = 1 if h is None else h  # None: torch's state after a step of max_iter=0
        flat["H_diag"] = (float(h), isinstance(h, torch.Tensor))
        flat["old_dirs"] = [vector("old_dirs", y) for y in state.get("old_dirs") or []]
        flat["old_stps"] = [vector("old_stps", s) for s in state.get("old_stps") or []]
        flat["ro"] = self._scalar_pairs(state, "ro")
        flat["al"] = self._scalar_pairs(state, "al")
        if not (len(flat["old_dirs"]) == len(flat["old_stps"]) == len(flat["ro"])):
            raise ValueError("optimcore.LBFGS: state 'old_dirs', 'old_stps' and 'ro' differ in "
                             "length (a truncated checkpoint?)")

    def _export_extra(self, flat: dict, state: dict, tensor_of, dtype) -> None:
        value, tensor = flat["H_diag"]
        state["H_diag"] = torch.tensor(value, dtype=dtype, device="cpu") if tensor else (
            int(value) if value == 1 else value)
        state["old_dirs"] = [tensor_of(p) for p in flat["old_dirs"]]
        state["old_stps"] = [tensor_of(p) for p in flat["old_stps"]]
        state["ro"] = self._zero_dim(flat["ro"], dtype, "ro")
        if flat["al"]:
            state["al"] = self._zero_dim(flat["al"], dtype, "al")

    def _scalar_pairs(self, state: dict, key: str) -> list:
        """torch's list of 0-d tensors (or floats, or None) under `key` as (value, is_tensor)
        pairs, None as (0.0, False). The list the last step exported (views of one 1-d
        tensor) is read in one call, in-place edits included."""
        values = state.get(key) or []
        known = self._known_scalars.get(key)
        if known is not None and known[0] is values and len(values) == len(known[1]) \
                and all(map(operator.is_, values, known[1])):
            return [(v, e is not None) for v, e in zip(known[2].tolist(), values)]
        return _pairs(values)

    def _zero_dim(self, pairs: list, dtype, key: str) -> list:
        """(value, is_tensor) pairs as torch keeps them: 0-d tensors (views of one 1-d tensor,
        made in one call) or None."""
        if not pairs:
            return []
        base = torch.tensor([v for v, _ in pairs], dtype=dtype, device="cpu")
        out = [v if tensor else None for v, (_, tensor) in zip(base.unbind(0), pairs)]
        self._known_scalars[key] = (out, tuple(out), base)
        return out


def _pairs(values: list) -> list:
    """torch's list of 0-d tensors (or floats, or None) as (value, is_tensor) pairs; None is
    (0.0, False). All tensors of one dtype: read in one call."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if tensors and len(tensors) == len(values) and len({t.dtype for t in tensors}) == 1:
        return [(v, True) for v in torch.stack([t.reshape(()) for t in tensors]).tolist()]
    return [(0.0, False) if v is None else (float(v), isinstance(v, torch.Tensor))
            for v in values]
