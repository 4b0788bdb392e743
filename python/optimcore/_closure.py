"""The closure-driven optimizers' shared step (LBFGS, ConjugateGradient): the parameters as one
flat vector for the compiled core, the closure as its callback, and the state as torch keeps it.

Data path: ``ClosureOptimizer.step(closure)`` → ``_C.<method>_step(segments, sizes, dtype,
state, evaluate, vector, num_threads, **options)`` (bindings/module.cpp) → ``lbfgs_step`` /
``cg_step`` on ``descent_step`` (csrc/include/optimcore/descent.hpp), which calls back into
``evaluate`` for each function evaluation (the closure, then the gradients gathered into one
vector) and into ``vector`` for each vector of n elements it needs.

What this module owns:

- **The flat vector.** Each parameter (its real view, for complex ones) is one contiguous
  segment of x; a non-contiguous parameter is stepped in a contiguous shadow copied back
  before every closure call and at the end of the step. Parameters that share memory, devices
  other than the CPU, dtypes other than float32/float64 and mixed dtypes take the method's
  fallback (torch's own step for LBFGS).
- **The state**, key for key as torch.optim.LBFGS keeps it (``state[params[0]]``): converted to
  the core's plain form before the step and back after it, so ``state_dict()`` moves between
  torch and optimcore in both directions.
- **Failure.** The core steps transactionally: if the closure raises, returns None, a non-scalar
  or a non-finite loss, or leaves a parameter without a dense gradient, the parameters are
  restored to their values at the start of the step, the state is as before, and the error
  propagates (torch.optim.LBFGS leaves the parameters where the partial line search put them).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable

import torch
from torch.optim.optimizer import Optimizer

from . import _C
from ._table import DTYPE_CODES, is_dtensor, span

_FLAT_DTYPES = (torch.float32, torch.float64)
#: Vectors a step gave back are kept for the next one up to this many bytes.
SPARE_BYTES = 64 << 20
_set_grad_enabled = getattr(torch._C, "_set_grad_enabled", torch.set_grad_enabled)


class ClosureOptimizer(Optimizer):
    """Base class of optimcore's closure-driven optimizers: one parameter group, one flat
    vector, a step that re-evaluates the closure. docs/kernels.md ("Closure-driven methods")
    is the recipe; ``lbfgs.py`` the worked example."""

    #: ``_C.<method>_step`` runs the step.
    _method: str
    #: Keys of the core's state form holding lists of vectors (LBFGS: old_dirs, old_stps).
    _vector_lists: tuple = ()

    #: Set by step(): the path it took ("core" or "torch"), why it took torch's, and what the
    #: core's step did (evaluations, iterations, reason it stopped, last loss).
    last_step_paths: list = []
    last_fallback_reasons: dict = {}
    last_step_result: dict | None = None
    _spare_vectors: list  # vectors of n elements earlier steps gave back
    _known_vectors: dict  # id -> (tensor, data_ptr) of the vectors the last step exported
    _known_scalars: dict  # state key -> (list, 1-d tensor its 0-d entries view)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._reset_closure_caches()

    def _reset_closure_caches(self) -> None:
        self._spare_vectors = []
        self._known_vectors = {}
        self._known_scalars = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _refusing_core_options(cls.__dict__["__init__"])
        else:
            torch_cls = next((c for c in cls.__mro__ if c.__module__.startswith("torch.optim")
                              and c is not Optimizer), None)
            if torch_cls is not None:
                cls.__init__ = _refusing_core_options(torch_cls.__init__)

    def _options(self, group: dict) -> dict:
        """The group's options by the core's names, validated (before any evaluation)."""
        raise NotImplementedError

    def _fallback(self, reason: str, closure):
        """The step when the core cannot take it (`reason`): torch's own, or an error."""
        raise RuntimeError(f"optimcore.{type(self).__name__}: {reason}")

    def _import_extra(self, state: dict, flat: dict, vector) -> None:
        """Adds the method's own state keys to the core's form `flat`."""

    def _export_extra(self, flat: dict, state: dict, tensor_of, dtype) -> None:
        """Writes the method's own state keys from the core's form `flat` into torch's."""

    # The step -------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any]):  # type: ignore[override]
        """Perform a single optimization step.

        Args:
            closure (Callable): A closure that reevaluates the model
                and returns the loss.
        """
        name = type(self).__name__
        if closure is None:
            raise TypeError(f"optimcore.{name}.step needs a closure that reevaluates the model "
                            "and returns the loss")
        if len(self.param_groups) != 1:
            raise ValueError(f"optimcore.{name} doesn't support per-parameter options (parameter "
                             f"groups): it has {len(self.param_groups)} groups, and steps one "
                             "flat vector")
        group = self.param_groups[0]
        params = group["params"]
        options = self._options(group)
        reason = self._core_refuses(params)
        if reason is not None:
            self.last_step_paths = ["torch"]
            self.last_fallback_reasons = {0: reason}
            return self._fallback(reason, closure)
        self.last_step_paths = ["core"]
        self.last_fallback_reasons = {}
        if not hasattr(self, "_spare_vectors"):
            self._reset_closure_caches()
        return _FlatStep(self, params, closure).run(options)

    @staticmethod
    def _core_refuses(params: list) -> str | None:
        """Why the compiled core cannot step these parameters (None: it can)."""
        dtypes = set()
        spans = []
        for i, p in enumerate(params):
            if is_dtensor(p):
                return f"parameter {i} is a DTensor"
            if p.device.type != "cpu":
                return f"parameter {i} is on {p.device}"
            if p.layout != torch.strided:
                return f"parameter {i} has layout {p.layout}"
            r = torch.view_as_real(p) if p.is_complex() else p
            if r.dtype not in _FLAT_DTYPES:
                return f"parameter {i} is {p.dtype} (the core steps float32 and float64)"
            dtypes.add(r.dtype)
            s = span(r)
            if s is not None:
                spans.append((s[0], s[1], i))
        if len(dtypes) > 1:
            return "the parameters mix dtypes"
        spans.sort()
        for (b0, e0, i), (b1, e1, j) in zip(spans, spans[1:]):
            if b1 < e0:
                return f"parameters {i} and {j} share memory"
        return None


def _refusing_core_options(init):
    """`init` with optimcore's keyword-only options of the elementwise rules (master_weights,
    stochastic_rounding), refused when set: a flat float32/float64 vector has no use for them."""
    import functools
    import inspect

    @functools.wraps(init)
    def __init__(self, *args, master_weights: bool = False, stochastic_rounding: bool = False,
                 **kwargs):
        for name, on in (("master_weights", master_weights),
                         ("stochastic_rounding", stochastic_rounding)):
            if on:
                raise ValueError(f"optimcore.{type(self).__name__} has no compiled elementwise "
                                 f"kernel: {name} needs one")
        init(self, *args, **kwargs)

    signature = inspect.signature(init)
    extras = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=False)
              for k in ("master_weights", "stochastic_rounding")]
    __init__.__signature__ = signature.replace(parameters=[*signature.parameters.values(),
                                                           *extras])
    return __init__


class _FlatStep:
    """One step: the parameters as segments of x, the closure as the core's callback."""

    def __init__(self, opt: ClosureOptimizer, params: list, closure):
        self.opt = opt
        self.name = type(opt).__name__
        self.params = params
        self.closure = closure
        reals = [_real(p) for p in params]
        self.dtype = reals[0].dtype if reals else torch.float32
        self.sizes = [r.numel() for r in reals]
        self.n = sum(self.sizes)
        # x's segments: each parameter's own memory, or a contiguous shadow for a
        # non-contiguous one. `memory` keeps the segments alive for the whole step even if the
        # closure rebinds a parameter (p.data = ...): that parameter then steps through its
        # old memory as a shadow, synced both ways around each closure call.
        self.memory = [r.detach() if r.is_contiguous() else r.contiguous() for r in reals]
        self.segments = [m.data_ptr() for m in self.memory]
        self.shadowed = [not r.is_contiguous() for r in reals]
        self.complex = [p.is_complex() for p in params]
        self.any_shadow = any(self.shadowed)
        self.vectors: dict[int, torch.Tensor] = {}  # data_ptr -> vector of n elements
        self.imported: set = set()  # pointers of the state's own vectors
        self.first_loss = None

    # Vectors ----------------------------------------------------------------------------
    def lend_spares(self) -> list:
        """The optimizer's spare vectors (given back by earlier steps) the core uses before
        asking for new ones."""
        spare = self.opt._spare_vectors
        self.opt._spare_vectors = []
        ptrs = []
        for v in spare:
            if v.dtype is self.dtype and v.numel() == self.n and self.n:
                ptrs.append(v.data_ptr())
                self.vectors[ptrs[-1]] = v
        return ptrs

    def vector(self) -> int:
        """A new vector of n elements for the core."""
        v = torch.empty(self.n, dtype=self.dtype, device="cpu")
        ptr = v.data_ptr() if self.n else id(v)
        self.vectors[ptr] = v
        return ptr

    def keep_spares(self, live: set) -> None:
        """After the step: vectors the state does not hold become the optimizer's spares (up to
        SPARE_BYTES: small problems stop allocating per step, large ones free them as torch
        does). A vector of the state the step started from only if nothing else can see it
        (no other Python reference, no view of its storage: an earlier state_dict() may hold
        it)."""
        per_vector = max(self.n * self.dtype.itemsize, 1)
        budget = SPARE_BYTES // per_vector
        spare = []
        for ptr in list(self.vectors):
            if len(spare) >= budget:
                break
            if ptr in live:
                continue
            if ptr in self.imported and not _unshared(self.vectors, ptr):
                continue
            spare.append(self.vectors[ptr])
        self.opt._spare_vectors = spare

    def sync(self) -> None:
        """x -> the parameters stepped through shadows (before each closure call, at the
        end of the step)."""
        if self.any_shadow:
            for p, m, shadowed in zip(self.params, self.memory, self.shadowed):
                if shadowed:
                    _real(p).copy_(m)

    def refresh(self) -> None:
        """After a closure call: what it wrote into shadowed parameters (p.clamp_(...)) goes
        into x, as it would for a parameter stepped in place; a parameter it rebound
        (p.data = ...) becomes shadowed."""
        for i, (p, m) in enumerate(zip(self.params, self.memory)):
            r = _real(p)
            if not self.shadowed[i]:
                if r.data_ptr() == self.segments[i] or r.numel() == 0:
                    continue
                if r.dtype is not m.dtype or r.shape != m.shape:
                    raise RuntimeError(
                        f"optimcore.{self.name}: the closure replaced parameter {i} with a "
                        f"tensor of another dtype or shape ({p.dtype}, {tuple(p.shape)}); "
                        "change parameters in place")
                self.shadowed[i] = self.any_shadow = True
            m.copy_(r)

    def restore_rebound(self) -> None:
        """After a failed step: parameters the closure rebound to another dtype or shape get
        their original memory back (holding the restored values)."""
        for p, m, was_complex in zip(self.params, self.memory, self.complex):
            r = _real(p)
            if r.dtype is not m.dtype or r.shape != m.shape:
                p.data = torch.view_as_complex(m) if was_complex else m

    def evaluate(self) -> tuple:
        """The closure at the current point: (loss, pointers of the gradients, contiguous and
        real, in parameter order), which the binding gathers into the core's vector."""
        self.sync()
        enabled = torch.is_grad_enabled()
        _set_grad_enabled(True)  # the closure runs with grad enabled, as in torch
        try:
            loss = self.closure()
        finally:
            _set_grad_enabled(enabled)
        self.refresh()
        if self.first_loss is None:
            self.first_loss = loss
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise ValueError(f"optimcore.{self.name}: the closure returned a tensor of shape "
                                 f"{tuple(loss.shape)}; it must return the loss as a scalar")
            value = loss.item()
        elif loss is None:
            raise TypeError(f"optimcore.{self.name}: the closure returned None; it must return "
                            "the loss")
        else:
            value = loss
        if not isinstance(value, (float, int)) or isinstance(value, bool):
            raise TypeError(f"optimcore.{self.name}: the closure returned a "
                            f"{type(value).__name__} loss; it must return a real scalar")
        value = float(value)
        ptrs = []
        keep = []
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                raise RuntimeError(f"optimcore.{self.name}: parameter {i} has no gradient after "
                                   "the closure (call backward() in the closure; torch.optim."
                                   "LBFGS would treat it as zero)")
            if g.layout is not torch.strided:
                raise RuntimeError(f"optimcore.{self.name}: parameter {i} has a {g.layout} "
                                   "gradient; the closure-driven methods need dense gradients")
            if g.dtype is not p.dtype or g.shape != p.shape:
                raise RuntimeError(
                    f"optimcore.{self.name}: parameter {i}: gradient ({g.dtype}, "
                    f"{tuple(g.shape)}) does not match the parameter ({p.dtype}, "
                    f"{tuple(p.shape)})")
            if not g.is_contiguous() or g.is_conj() or g.is_neg() or type(g) is not torch.Tensor:
                g = torch.as_tensor(g).resolve_conj().resolve_neg().contiguous()
                keep.append(g)
            ptrs.append(g.data_ptr())
        self.keep = keep  # alive until the binding has copied them
        return value, ptrs

    # State conversion -----------------------------------------------------------------------
    def _vector_ptr(self, key: str, t) -> int:
        """The pointer of a state vector, copied into a fresh contiguous vector of the step's
        dtype when it is not one already (a checkpoint of another dtype, a view...)."""
        if t is None:
            return 0
        known = self.opt._known_vectors.get(id(t))
        if known is not None and known[0] is t and t.data_ptr() == known[1] \
                and t.dtype is self.dtype and t.numel() == self.n:  # a vector this optimizer exported, still in place
            self.vectors[known[1]] = t
            self.imported.add(known[1])
            return known[1]
        if not isinstance(t, torch.Tensor) or t.numel() != self.n:
            raise ValueError(
                f"optimcore.{self.name}: state '{key}' has "
                f"{t.numel() if isinstance(t, torch.Tensor) else type(t).__name__} elements; "
                f"the parameters have {self.n} (was the state loaded for other parameters?)")
        if (t.dtype is self.dtype and t.is_cpu and t.dim() == 1 and t.is_contiguous()
                and self.n and type(t) is torch.Tensor):
            ptr = t.data_ptr()
            self.vectors.setdefault(ptr, t)
            self.imported.add(ptr)
            return ptr
        ptr = self.vector()
        self.vectors[ptr].copy_(t.reshape(-1))
        return ptr

    @staticmethod
    def _scalar(v) -> tuple:
        if v is None:
            return (0.0, False)
        if isinstance(v, torch.Tensor):
            return (float(v), True)
        return (float(v), False)

    def import_state(self, state: dict) -> dict:
        flat = {
            "func_evals": int(state.get("func_evals", 0)),
            "n_iter": int(state.get("n_iter", 0)),
            "started": "d" in state,
            "d": self._vector_ptr("d", state.get("d")),
            "prev_flat_grad": self._vector_ptr("prev_flat_grad", state.get("prev_flat_grad")),
            "t": self._scalar(state.get("t")),
            "prev_loss": float(state["prev_loss"]) if state.get("prev_loss") is not None
            else 0.0,
        }
        self.opt._import_extra(state, flat, self._vector_ptr)
        return flat

    def live(self, flat: dict) -> set:
        """Pointers of the vectors a state (in the core's form) holds."""
        ptrs = {flat["d"], flat["prev_flat_grad"]}
        for key in self.opt._vector_lists:
            ptrs.update(flat.get(key, ()))
        return ptrs

    def tensor_of(self, ptr: int):
        return None if ptr == 0 else self.vectors[ptr]

    def scalar_of(self, pair: tuple):
        value, tensor = pair
        return torch.tensor(value, dtype=self.dtype, device="cpu") if tensor else value

    def export_state(self, flat: dict, state: dict) -> None:
        state["func_evals"] = flat["func_evals"]
        state["n_iter"] = flat["n_iter"]
        if flat["started"]:
            state["d"] = self.tensor_of(flat["d"])
            state["t"] = self.scalar_of(flat["t"])
            self.opt._export_extra(flat, state, self.tensor_of, self.dtype)
            state["prev_flat_grad"] = self.tensor_of(flat["prev_flat_grad"])
            state["prev_loss"] = flat["prev_loss"]

    # The step -------------------------------------------------------------------------------
    def run(self, options: dict):
        opt = self.opt
        state = opt.state[self.params[0]]
        state.setdefault("func_evals", 0)  # as torch, before the first evaluation
        state.setdefault("n_iter", 0)
        flat = self.import_state(state)
        kernel = getattr(_C, f"{opt._method}_step")
        spare = self.lend_spares()
        try:
            result, new_flat, _ = kernel(self.segments, self.sizes, DTYPE_CODES[self.dtype],
                                         flat, self.evaluate, self.vector, spare,
                                         torch.get_num_threads(), **options)
        except BaseException:
            self.restore_rebound()
            self.sync()  # the restored parameters
            self.keep_spares(self.imported)  # the state is as before
            raise
        self.sync()  # the final parameters
        self.export_state(new_flat, state)
        live = self.live(new_flat)
        opt._known_vectors = {id(self.vectors[p]): (self.vectors[p], p) for p in live if p}
        self.keep_spares(live)
        #: What the last step did: evaluations, iterations, why it stopped, its last loss.
        opt.last_step_result = result
        return self.first_loss


def _real(p: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(p) if p.is_complex() else p


def _references(vectors: dict, ptr: int):
    """(Python references to vectors[ptr], Python references to its storage object, users of
    its storage), as seen from here; None without torch's private use count."""
    use_count = getattr(torch._C, "_storage_Use_Count", None)
    if use_count is None:
        return None
    storage = vectors[ptr].untyped_storage()
    return sys.getrefcount(vectors[ptr]), sys.getrefcount(storage), use_count(storage._cdata)


# The counts of a vector nothing else refers to, measured once on a fresh one.
_ALONE = _references({0: torch.empty(1, device="cpu")}, 0)


def _unshared(vectors: dict, ptr: int) -> bool:
    """Whether vectors[ptr] is referenced by nothing but `vectors`: no other Python reference
    to it or to its storage, no other tensor on its storage. Recycling is only an optimization:
    when in doubt (or without torch's private use count) the answer is no."""
    return _ALONE is not None and _references(vectors, ptr) == _ALONE


def whole_number(name: str, value) -> int:
    """An iteration or evaluation count: an int (or a float holding one). torch's LBFGS takes
    2.7 iterations as 3 and 3.5 evaluations as 4 by comparison; optimcore refuses them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_nonnegative(name: str, value, kind=float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            kind is int and not isinstance(value, int)):
        raise TypeError(f"{name} must be {'an int' if kind is int else 'a number'}, got "
                        f"{value!r}")
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"Invalid {name}: {value}")
