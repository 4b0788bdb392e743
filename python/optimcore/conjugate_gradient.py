"""optimcore.ConjugateGradient: nonlinear conjugate gradient through ``step(closure)``, on the
compiled core (csrc/include/optimcore/conjugate_gradient.hpp) and the strong-Wolfe line search
LBFGS uses. torch.optim has no conjugate gradient: the arguments follow torch.optim.LBFGS's.

Sources: Nocedal & Wright, Numerical Optimization (2nd ed.), ch. 5.2; Hager & Zhang, "A survey
of nonlinear conjugate gradient methods" (Pacific J. Optim., 2006)."""

from __future__ import annotations

import math

import torch

from ._closure import ClosureOptimizer, check_nonnegative

__all__ = ["ConjugateGradient"]

BETAS = ("PR+", "FR", "HS", "DY")


class ConjugateGradient(ClosureOptimizer):
    """Nonlinear conjugate gradient: ``d = -g + beta d_prev`` with a strong-Wolfe line search.

    Args:
        params (iterable): parameters to optimize (one group; float32 or float64, real or
            complex, on the CPU).
        lr (float): scale of the first trial step of every line search (default: 1).
        max_iter (int): iterations per ``step`` (default: 20).
        max_eval (int, optional): function evaluations per ``step`` (default:
            ``max_iter * 5 // 4``).
        tolerance_grad (float): stop when ``max|g| <= tolerance_grad`` (default: 1e-7).
        tolerance_change (float): stop when the loss or ``max|t d|`` changes by less
            (default: 1e-9).
        beta (str): ``"PR+"`` (Polak-Ribiere clipped at 0, default), ``"FR"``
            (Fletcher-Reeves), ``"HS"`` (Hestenes-Stiefel) or ``"DY"`` (Dai-Yuan).
        restart_every (int, optional): restart with ``d = -g`` every this many iterations
            (default: the number of elements). Restarts also happen when Powell's test fires
            (``|g.g_prev| >= 0.2 g.g``) and when ``d`` is not a descent direction.
        c1, c2 (float): the line search's Wolfe constants, ``0 < c1 < c2 < 1`` (default: 1e-4
            and 0.1; CG needs a tighter curvature condition than L-BFGS's 0.9).

    State (``state[params[0]]``, in ``state_dict``): ``func_evals``, ``n_iter``, ``d``, ``t``,
    ``prev_flat_grad``, ``prev_loss``, ``since_restart``. ``last_step_result`` says what the
    last step did.
    """

    _method = "conjugate_gradient"

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 beta: str = "PR+", restart_every: int | None = None, c1: float = 1e-4,
                 c2: float = 0.1):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr or math.isinf(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        beta=beta, restart_every=restart_every, c1=c1, c2=c2)
        self._check(defaults)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("ConjugateGradient doesn't support per-parameter options "
                             "(parameter groups)")

    @staticmethod
    def _check(group: dict) -> None:
        check_nonnegative("max_iter", group["max_iter"], int)
        check_nonnegative("max_eval", group["max_eval"], int)
        if group["max_eval"] < 1:
            raise ValueError(f"Invalid max_eval: {group['max_eval']} (at least 1)")
        check_nonnegative("tolerance_grad", group["tolerance_grad"])
        check_nonnegative("tolerance_change", group["tolerance_change"])
        if group["beta"] not in BETAS:
            raise ValueError(f"Invalid beta: {group['beta']!r} (one of {', '.join(BETAS)})")
        every = group["restart_every"]
        if every is not None:
            check_nonnegative("restart_every", every, int)
            if every < 1:
                raise ValueError(f"Invalid restart_every: {every}")
        c1, c2 = group["c1"], group["c2"]
        if not 0.0 < c1 < c2 < 1.0:
            raise ValueError(f"Invalid Wolfe constants: need 0 < c1 < c2 < 1, got c1={c1}, "
                             f"c2={c2}")

    def _options(self, group: dict) -> dict:
        self._check(group)
        lr = group["lr"]
        if not 0.0 <= lr or math.isinf(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        return dict(lr=float(lr), max_iter=group["max_iter"], max_eval=group["max_eval"],
                    tolerance_grad=float(group["tolerance_grad"]),
                    tolerance_change=float(group["tolerance_change"]), beta=group["beta"],
                    restart_every=group["restart_every"] or 0, c1=float(group["c1"]),
                    c2=float(group["c2"]), powell=0.2)

    def _import_extra(self, state: dict, flat: dict, vector) -> None:
        flat["since_restart"] = int(state.get("since_restart", 0))

    def _export_extra(self, flat: dict, state: dict, tensor_of, dtype) -> None:
        state["since_restart"] = flat["since_restart"]


