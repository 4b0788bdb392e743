"""What every optimcore optimizer shares: validation, state, and the tensor tables the kernels read.

A rule subclass (sgd.py, adam.py, ...) declares its state tensors and calls its kernel; this class
does the rest, the same way for every rule:

1. ``step`` plans every param group before touching anything: it validates each parameter, its
   gradient and its state, and allocates the state a first step needs (unpublished). Any error
   is raised here, naming the group and parameter, so a failed step changes nothing.
2. It then publishes new state and makes one kernel call per group with an int64 *table*: one
   row per parameter holding data pointers (see ``csrc/bindings/kernels.hpp`` for the layout).
   Tables are cached per group: a step's Python work per tensor is reading and checking its
   gradient and checking that the table still describes the parameter and its state
   (_GroupPlan.still_valid). bench/profile_step.py measures each part.
"""

from __future__ import annotations

import itertools
import operator
import sys
from array import array
from typing import Any, Callable

import torch
from torch.optim import Optimizer

from . import _C

_COL = _C.TABLE_COLUMNS
_PARAM, _STEP, _NUMEL, _MASTER, _FLAGS, _STATE0 = (
    _COL[k] for k in ("param", "step", "numel", "master", "flags", "state0")
)
_STATE_IS_NEW = _C.FLAG_STATE_IS_NEW

# Element type codes of csrc/bindings/kernels.hpp (enum DType).
_DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.bfloat16: 2, torch.float16: 3}
# 16-bit parameters that master_weights=True gives float32 state and a float32 master copy.
_MASTER_DTYPES = (torch.bfloat16, torch.float16)
_MASTER_KEY = "master_param"
# Complex parameters are updated as their real view, exactly as torch.optim does.
_REAL_OF_COMPLEX = {torch.complex64: torch.float32, torch.complex128: torch.float64}


# Per-step checks run as C-level map() passes over a group's tensors: the gradient checks cost
# ~0.7 us per tensor this way, ~2 us as attribute reads from Python bytecode.
_grad_of = operator.attrgetter("grad")
_dtype_of = operator.attrgetter("dtype")
_layout_of = operator.attrgetter("layout")
_is_cpu = operator.attrgetter("is_cpu")
_is_contiguous = torch.Tensor.is_contiguous
_shape_of = operator.attrgetter("shape")
_placements_of = operator.attrgetter("placements")
_version_of = operator.attrgetter("_version")
_stride = torch.Tensor.stride
_is_conj = torch.Tensor.is_conj
_is_neg = torch.Tensor.is_neg
_data_ptr = torch.Tensor.data_ptr
_numel = torch.Tensor.numel
_STRIDED = {torch.strided}
_local_of = operator.attrgetter("_local_tensor")


def _is_dtensor(t) -> bool:
    # No DTensor can exist before torch.distributed.tensor is imported: do not import it here.
    module = sys.modules.get("torch.distributed.tensor")
    cls = getattr(module, "DTensor", None)
    return cls is not None and isinstance(t, cls)


def _is_dense(t: torch.Tensor) -> bool:
    """True when t's elements fill its memory span exactly once (any dimension order)."""
    if t.is_contiguous():
        return True
    expected = 1
    for stride, size in sorted((st, sz) for st, sz in zip(t.stride(), t.shape) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _local(t: torch.Tensor) -> torch.Tensor:
    """The tensor holding t's elements in this process: a DTensor's local shard (FSDP2), else t.
    Every rule here is elementwise, so updating the shard is updating the DTensor."""
    return t._local_tensor if _is_dtensor(t) else t


def _local_ptrs(tensors) -> list[int]:
    return [_local(t).data_ptr() for t in tensors]


def _real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def _same_layout(t: torch.Tensor, ref: torch.Tensor) -> bool:
    """True when t can be read element-for-element in ref's memory order."""
    return t.stride() == ref.stride() or (t.is_contiguous() and ref.is_contiguous())


def _to_float(x: Any) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


class _GroupPlan:
    """A group's cached table and the tensors behind its pointers."""

    __slots__ = (
        "key_params", "param_ptrs", "state_keys", "dtype", "views", "table", "staged",
        "new_state", "new_rows", "state_tensors", "state_ptrs", "shapes", "strides",
        "dtype_set", "simple", "master", "columns", "dtensor", "complex", "placements",
        "tracked_keys", "numels", "contiguous", "versions", "refresh",
    )

    def __init__(self):
        self.key_params: list[torch.Tensor] = []  # active parameters, in order
        self.param_ptrs: list[int] = []
        self.state_keys: tuple = ()
        self.dtype: torch.dtype | None = None
        self.views: list[torch.Tensor] = []  # real views of the active parameters
        self.table: torch.Tensor | None = None
        self.staged: list[int] = []  # rows whose param/state memory is not one dense span
        self.new_state: list[tuple[torch.Tensor, dict]] = []  # (param, state) to publish
        self.new_rows: list[int] = []  # rows flagged _STATE_IS_NEW until their first step
        # The state tensors the table points at (step included), checked each step by identity
        # and data pointer: code that replaces one (opt.state[p]["exp_avg"] = t) or its storage
        # (.data =, set_) gets a new table. Replacing a whole state dict is caught
        # optimizer-wide (CoreOptimizer._state_unchanged).
        self.state_tensors: tuple = ([], [], [])  # parallel lists: state dict, key, tensor
        self.state_ptrs: list[int] = []
        self.tracked_keys: list[str] = []
        # Parameter (local) shapes and strides when the table was built; with param_ptrs they
        # catch `p.data = ...`. Also what the per-step fast path compares gradients against,
        # with {parameter dtype} and whether every parameter is contiguous.
        self.shapes: list = []
        self.strides: list = []
        self.numels: list[int] = []
        self.contiguous = False  # every parameter contiguous: then ptr + numel fix its span
        # Master weights: the parameters' version counters after the last step (the kernel
        # writes through pointers and leaves them unchanged), so an outside write to a parameter
        # (load_state_dict, clamp_, re-initialisation) shows; `refresh` lists the rows whose
        # master copy must be re-read from the parameter before the next kernel call.
        self.versions: list[int] = []
        self.refresh: list[int] = []
        self.complex = False  # complex parameters: gradients may carry conj/neg bits
        self.placements: list = []  # DTensor placements of the parameters
        self.dtype_set: set = set()
        self.simple = False
        self.master = False  # float32 state and master weights for 16-bit parameters
        self.dtensor = False  # parameters are DTensors: rows point at their local shards
        # (state key, table column) of every tensor a row points at besides param and step.
        self.columns: list[tuple[str, int]] = []

    def ptrs(self, tensors) -> list[int]:
        return _local_ptrs(tensors) if self.dtensor else list(map(_data_ptr, tensors))

    def locals(self, tensors) -> list:
        return list(map(_local_of, tensors)) if self.dtensor else tensors

    def still_valid(self, key_params) -> bool:
        """Whether the table still describes these parameters and their state."""
        if not (
            len(self.key_params) == len(key_params)
            and all(map(operator.is_, self.key_params, key_params))
            and self.param_ptrs == self.ptrs(key_params)
        ):
            return False
        local = self.locals(key_params)
        # An elementwise kernel needs each parameter's memory span and order: for contiguous
        # parameters the data pointer, numel and contiguity fix them (cheaper than shape and
        # strides, which are tuples built per call).
        if list(map(_numel, local)) != self.numels or set(map(_dtype_of, local)) != self.dtype_set:
            return False
        if self.contiguous:
            if not all(map(_is_contiguous, local)):
                return False
        elif list(map(_stride, local)) != self.strides or list(map(_shape_of, local)) != self.shapes:
            return False
        dicts, keys, tensors = self.state_tensors
        return (
            all(map(operator.is_, map(dict.get, dicts, keys), tensors))
            and self.ptrs(tensors) == self.state_ptrs
        )

    def record_state(self, states) -> None:
        dicts = [states.get(p) for p in self.key_params]
        triples = [(d, k, d[k]) for d in dicts if d for k in self.tracked_keys if k in d]
        self.state_tensors = tuple(map(list, zip(*triples))) if triples else ([], [], [])
        self.state_ptrs = self.ptrs(self.state_tensors[2])

    def fast_grad_ptrs(self, grads):
        """Pointers of this step's gradients if they all have the common, simple form (CPU,
        strided, contiguous, the parameter's dtype and shape); None means: check one by one."""
        if self.dtensor:
            # Same placements as the parameter (so never Partial): the shards line up.
            if not (
                all(map(_is_dtensor, grads))
                and list(map(_placements_of, grads)) == self.placements
            ):
                return None
            grads = list(map(_local_of, grads))
        if self.complex and (any(map(_is_conj, grads)) or any(map(_is_neg, grads))):
            return None
        if (
            self.simple
            and set(map(_dtype_of, grads)) == self.dtype_set
            and all(map(_is_cpu, grads))
            and all(map(_is_contiguous, grads))
            and list(map(_shape_of, grads)) == self.shapes
        ):
            ptrs = array("q", map(_data_ptr, grads))
            if 0 not in ptrs:  # a tensor subclass without plain storage: check one by one
                return ptrs
        return None


class CoreOptimizer(Optimizer):
    """Base class of optimcore's optimizers (a ``torch.optim.Optimizer``)."""

    # Rule interface -------------------------------------------------------------------------
    #: Sparse gradients: False raises ``_sparse_message``; True sends those parameters to
    #: ``_sparse_step`` (torch's own implementation).
    _supports_sparse = False
    _sparse_message = "{name} does not support sparse gradients"
    #: Whether the rule keeps a float32 0-d ``step`` tensor per parameter (torch's convention).
    _has_step = False

    def _state_keys(self, group: dict) -> tuple:
        """Names of the per-element state tensors, in table order; None marks a column the group's
        options leave unused. The length is fixed per rule: it is the kernel's row width."""
        raise NotImplementedError

    def _new_state_is_flagged(self, key: str) -> bool:
        """True if the kernel fills this state on its first step (no zero-initialisation)."""
        return False

    def _hyperparameters(self, group: dict) -> tuple:
        """The group's hyperparameters as the kernel's scalar arguments (floats and bools),
        computed while planning so that a bad value raises before anything is written."""
        raise NotImplementedError

    #: The kernel, called once per group (per dtype part) by ``_launch`` as ``_kernel(table,
    #: grads, count, dtype_code, master, *hyperparameters, stochastic_rounding, seed,
    #: num_threads)``: `table` and `grads` are addresses of the int64 row table and of the
    #: gradient pointers, `count` rows; `master`: float32 state and master weights.
    _kernel: Callable[..., None]

    def _sparse_step(self, group: dict, params: list, grads: list) -> None:
        raise NotImplementedError

    # torch.optim.Optimizer interface --------------------------------------------------------
    def __init__(self, params, defaults: dict):
        self._plans: dict[int, _GroupPlan] = {}
        self._state_seen: tuple = (None, [])
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for key in ("master_weights", "stochastic_rounding"):  # a torch checkpoint lacks these
            if key in self.defaults:
                for group in self.param_groups:
                    group.setdefault(key, self.defaults[key])
        self._plans = {}  # load_state_dict replaced state tensors: rebuild every table
        self._state_seen = (None, [])

    def load_state_dict(self, state_dict: dict) -> None:
        """As torch's, except that float32 state of 16-bit parameters trained with
        master_weights=True stays float32 (torch casts floating state to the parameter dtype)."""
        saved_groups = state_dict["param_groups"]
        keep = {}
        for saved in saved_groups:
            if not saved.get("master_weights"):
                continue
            for pid in saved["params"]:
                for key, value in state_dict["state"].get(pid, {}).items():
                    if key != "step" and isinstance(value, torch.Tensor) and value.dtype == torch.float32:
                        keep[pid, key] = value
        super().load_state_dict(state_dict)
        if keep:
            ids = itertools.chain.from_iterable(g["params"] for g in saved_groups)
            params = itertools.chain.from_iterable(g["params"] for g in self.param_groups)
            by_id = dict(zip(ids, params))
            for (pid, key), value in keep.items():
                p = by_id[pid]
                if p.dtype in _MASTER_DTYPES:
                    self.state[p][key] = value.to(device=p.device, dtype=torch.float32, copy=True)

    def add_param_group(self, param_group: dict) -> None:
        merged = {**getattr(self, "defaults", {}), **param_group}
        name = type(self).__name__
        for flag in ("differentiable", "capturable"):
            if merged.get(flag):
                raise RuntimeError(
                    f"optimcore.{name} does not support {flag}=True: its compiled kernels are "
                    f"not differentiable and run on the CPU; use torch.optim.{name} for that"
                )
        if merged.get("fused") and merged.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        super().add_param_group(param_group)
        if hasattr(self, "_plans"):
            self._plans = {}

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): A closure that reevaluates the model
                and returns the loss.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self._state_unchanged():
            self._plans = {}
        # Validate every group before the first write: a step that raises changes nothing.
        try:
            steps = [self._plan_step(i, g) for i, g in enumerate(self.param_groups)]
        except BaseException:
            # Plans holding unpublished state would publish it on a later step, over whatever
            # the caller changes in between: drop them.
            self._plans = {i: p for i, p in self._plans.items() if not p.new_state}
            raise
        num_threads = torch.get_num_threads()
        for step in steps:
            if step is not None:
                step(num_threads)
        self._state_seen = (self.state, list(self.state.values()))
        return loss

    def _state_unchanged(self) -> bool:
        """True if self.state holds the same per-parameter dicts as after the last step (a cheap
        identity scan: replacing, adding or deleting any entry, or the whole dict, shows)."""
        state, values = self._state_seen
        return (
            state is self.state
            and len(values) == len(state)
            and all(map(operator.is_, state.values(), values))
        )

    # Planning -------------------------------------------------------------------------------
    def _where(self, gi: int, pi: int) -> str:
        return f"optimcore.{type(self).__name__}: param group {gi}, parameter {pi}"

    def _plan_step(self, gi: int, group: dict):
        """Validate group gi for this step; return a callable that performs it (or None)."""
        params = group["params"]
        grads = list(map(_grad_of, params))
        if any(map(operator.is_, grads, itertools.repeat(None))):  # `None in` calls __eq__
            active = [i for i, g in enumerate(grads) if g is not None]
            grads = [grads[i] for i in active]
            key_params = [params[i] for i in active]
        else:
            active = range(len(params))
            key_params = params
        if not grads:
            return None

        sparse_params = sparse_grads = None
        if set(map(_layout_of, grads)) != _STRIDED:
            sparse = [k for k, g in enumerate(grads) if g.is_sparse]
            if sparse and not self._supports_sparse:
                raise RuntimeError(
                    f"{self._where(gi, active[sparse[0]])}: gradient is sparse; "
                    + self._sparse_message.format(name=type(self).__name__)
                )
            for k in sparse:
                self._check_sparse(gi, active[k], key_params[k], grads[k], group)
            sparse_params = [key_params[k] for k in sparse]
            sparse_grads = [grads[k] for k in sparse]
            dense = [k for k in range(len(grads)) if not grads[k].is_sparse]
            active = [active[k] for k in dense]
            key_params = [key_params[k] for k in dense]
            grads = [grads[k] for k in dense]

        try:
            hyper = self._hyperparameters(group)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"optimcore.{type(self).__name__}: param group {gi}: invalid "
                             f"hyperparameter: {e}") from e
        stochastic = bool(group.get("stochastic_rounding"))
        work = []  # (plan, gradients, their pointers): one kernel call each
        for key, part_active, part_params, part_grads, known_valid in self._split_by_dtype(
            gi, group, active, key_params, grads
        ):
            plan = self._cached_plan(key, gi, group, part_active, part_params, known_valid)
            if stochastic and plan.dtype == torch.float16:
                raise ValueError(
                    f"optimcore.{type(self).__name__}: param group {gi}: stochastic_rounding "
                    "supports bfloat16 parameters (float16 ones round to nearest: leave it off)"
                )
            if plan.master:
                versions = list(map(_version_of, part_params))
                if versions != plan.versions:
                    plan.refresh = sorted(set(plan.refresh) | {
                        r for r, (a, b) in enumerate(zip(versions, plan.versions)) if a != b})
            grad_ptrs = plan.fast_grad_ptrs(part_grads)
            if grad_ptrs is None:
                part_grads, grad_ptrs = self._check_grads(gi, part_active, plan, part_grads)
            work.append((plan, part_grads, grad_ptrs))

        def run(num_threads: int) -> None:
            if sparse_params:
                self._sparse_step(group, sparse_params, sparse_grads)
                for p in sparse_params:  # torch updated the parameter: refresh its master copy
                    master = self.state.get(p, {}).get(_MASTER_KEY)
                    if master is not None:
                        master.copy_(p)
            for plan, part_grads, grad_ptrs in work:
                self._run(plan, hyper, part_grads, grad_ptrs, num_threads, stochastic)

        return run

    def _split_by_dtype(self, gi, group, active, key_params, grads):
        """[(cache key, active, params, grads, cached table known valid)]: the group as is (key
        gi), or one part per parameter dtype (key (gi, dtype)): torch allows a group to mix
        dtypes, a kernel call takes one."""
        if not key_params:
            return []
        plan = self._plans.get(gi)
        if plan is not None and self._plan_matches(plan, group, key_params):
            return [(gi, active, key_params, grads, True)]  # the common case: a known table
        dtypes = list(map(_dtype_of, key_params))
        if len(set(dtypes)) == 1:
            return [(gi, active, key_params, grads, False)]
        parts = {}
        for a, p, g, dt in zip(active, key_params, grads, dtypes):
            part = parts.setdefault(dt, ((gi, dt), [], [], [], False))
            part[1].append(a)
            part[2].append(p)
            part[3].append(g)
        return list(parts.values())

    def _plan_matches(self, plan: _GroupPlan, group: dict, key_params) -> bool:
        return (
            plan.state_keys == self._state_keys(group)
            and plan.master == (bool(group.get("master_weights")) and plan.dtype in _MASTER_DTYPES)
            and plan.still_valid(key_params)
        )

    def _cached_plan(self, key, gi, group, active, key_params, known_valid) -> _GroupPlan:
        plan = self._plans.get(key)
        if plan is not None and (known_valid or self._plan_matches(plan, group, key_params)):
            return plan
        plan = self._build_plan(gi, group, active, key_params, self._state_keys(group))
        self._plans[key] = plan
        return plan

    def _check_param(self, gi: int, pi: int, p: torch.Tensor) -> None:
        where = self._where(gi, pi)
        if p.device.type != "cpu":
            raise RuntimeError(f"{where}: parameter is on {p.device}; optimcore runs on the CPU")
        if p.layout != torch.strided:
            raise RuntimeError(f"{where}: parameter has layout {p.layout}; expected torch.strided")
        local = _local(p)
        if local.numel() and not local.data_ptr():
            raise RuntimeError(
                f"{where}: parameter ({type(p).__name__}) has no data pointer; optimcore reads "
                "plain CPU tensors and DTensor shards"
            )
        if local.is_conj() or local.is_neg():
            raise RuntimeError(f"{where}: parameter is a lazily conjugated/negated view; "
                               "call resolve_conj()/resolve_neg() on it first")
        if not _is_dense(local) and torch._debug_has_internal_overlap(local) == 1:
            raise RuntimeError(f"{where}: parameter has elements that share memory (e.g. from "
                               "expand()); an in-place update of it is undefined")
        dtype = _REAL_OF_COMPLEX.get(p.dtype, p.dtype)
        if dtype not in _DTYPE_CODES:
            kind = "floating-point " if p.is_floating_point() else "non-floating "
            raise RuntimeError(
                f"{where}: {kind}parameter dtype {p.dtype} is not supported "
                f"(supported: float32, float64, bfloat16, float16, complex64, complex128)"
            )

    def _check_sparse(self, gi: int, pi: int, p: torch.Tensor, g: torch.Tensor, group) -> None:
        self._check_param(gi, pi, p)
        if group.get("weight_decay"):
            # torch.optim.SGD fails here too, but only midway through its step.
            raise RuntimeError(f"{self._where(gi, pi)}: weight_decay is not supported with a "
                               "sparse gradient")
        if g.device != p.device or g.dtype != p.dtype or g.shape != p.shape:
            raise RuntimeError(
                f"{self._where(gi, pi)}: sparse gradient ({g.dtype}, {tuple(g.shape)}, {g.device}) "
                f"does not match its parameter ({p.dtype}, {tuple(p.shape)}, {p.device})"
            )

    def _build_plan(self, gi, group, active, key_params, state_keys) -> _GroupPlan:
        plan = _GroupPlan()
        plan.key_params = list(key_params)
        plan.state_keys = state_keys
        plan.master = bool(group.get("master_weights")) and key_params[0].dtype in _MASTER_DTYPES
        plan.columns = [(k, _STATE0 + i) for i, k in enumerate(state_keys) if k is not None]
        if plan.master:
            plan.columns.append((_MASTER_KEY, _MASTER))
        width = _STATE0 + len(state_keys)
        rows = []
        for pi, p in zip(active, key_params):
            self._check_param(gi, pi, p)
            view = _real(_local(p).detach())  # an alias: it keeps this storage and metadata
            plan.dtype = view.dtype  # one dtype per plan: _split_by_dtype made it so
            state, flagged, changed = self._planned_state(gi, pi, p, state_keys, plan.master)
            if changed:
                plan.new_state.append((p, state))
            if plan.master and not _master_matches(state[_MASTER_KEY], p):
                plan.refresh.append(len(rows))
            row = [0] * width
            row[_PARAM] = view.data_ptr()
            row[_NUMEL] = view.numel()
            if self._has_step:
                row[_STEP] = state["step"].data_ptr()
            dense = _is_dense(view)
            flags = 0
            for key, column in plan.columns:
                s = _real(_local(state[key]))
                row[column] = s.data_ptr()
                dense = dense and _same_layout(s, view)
                if key in flagged:
                    flags |= _STATE_IS_NEW
            row[_FLAGS] = flags
            if flags:
                plan.new_rows.append(len(rows))
            if not dense:
                plan.staged.append(len(rows))
            plan.views.append(view)
            rows.append(row)
        plan.dtensor = _is_dtensor(key_params[0])
        if any(_is_dtensor(p) != plan.dtensor for p in key_params):
            raise RuntimeError(
                f"optimcore.{type(self).__name__}: param group {gi} mixes DTensor and plain "
                "parameters; put them in separate param groups"
            )
        locals_ = [_local(p) for p in key_params]
        plan.param_ptrs = [t.data_ptr() for t in locals_]
        plan.shapes = list(map(_shape_of, locals_))
        plan.strides = list(map(_stride, locals_))
        plan.numels = list(map(_numel, locals_))
        plan.contiguous = all(t.is_contiguous() for t in locals_)
        if plan.master:
            plan.versions = list(map(_version_of, key_params))
        plan.complex = key_params[0].is_complex()
        plan.placements = [p.placements for p in key_params] if plan.dtensor else []
        plan.tracked_keys = [k for k, _ in plan.columns] + (["step"] if self._has_step else [])
        plan.dtype_set = {key_params[0].dtype}
        plan.simple = (
            not plan.staged
            and all(v.is_contiguous() for v in plan.views)
            and all(t.numel() for t in locals_)
        )
        if not plan.new_state:
            plan.record_state(self.state)
        plan.table = torch.tensor(rows, dtype=torch.int64).reshape(len(rows), width)
        return plan

    def _planned_state(self, gi, pi, p, state_keys, master) -> tuple[dict, set, bool]:
        """The state p will have after this step, validated (nothing is published here).

        Returns (state, keys the kernel must initialise, whether state differs from self.state[p]).
        With `master`, state is float32 and "master_param" holds the float32 master weights.
        """
        where = self._where(gi, pi)
        old = self.state.get(p)
        state = dict(old) if old else {}
        changed = not old
        if self._has_step:
            step = state.get("step")
            if step is None:
                if old:
                    raise RuntimeError(f"{where}: state has no 'step'")
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
            elif not (
                isinstance(step, torch.Tensor)
                and step.dtype == torch.float32
                and step.device.type == "cpu"
                and step.numel() == 1
                and step.is_contiguous()
            ):
                # A checkpoint may hold a float64 or Python-number step (torch.optim under
                # default dtype float64, or older torch); the kernels count in float32.
                try:
                    value = _to_float(step)
                except (TypeError, ValueError, RuntimeError):
                    raise RuntimeError(f"{where}: state 'step' is not a number: {step!r}") from None
                state["step"] = torch.tensor(value, dtype=torch.float32)
                changed = True
        dtype = torch.float32 if master else p.dtype
        if master and state.get(_MASTER_KEY) is None:
            state[_MASTER_KEY] = _like(p, p, torch.float32)
            changed = True
        elif not master and _MASTER_KEY in state:
            del state[_MASTER_KEY]  # master weights switched off: the parameter is the truth
            changed = True
        flagged = set()
        for key in [k for k in state_keys if k is not None] + ([_MASTER_KEY] if master else []):
            s = state.get(key)
            if s is None:
                # New state (first step, or amsgrad/momentum switched on mid-training).
                if self._new_state_is_flagged(key):
                    state[key] = torch.empty_like(p, dtype=dtype, memory_format=torch.preserve_format)
                    flagged.add(key)
                else:
                    state[key] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
                changed = True
                continue
            if not isinstance(s, torch.Tensor):
                raise RuntimeError(f"{where}: state '{key}' is a {type(s).__name__}, not a Tensor")
            if s.layout != torch.strided:
                raise RuntimeError(f"{where}: state '{key}' has layout {s.layout}")
            if (
                p.dtype in _MASTER_DTYPES
                and s.dtype in (torch.float32, p.dtype)
                and s.dtype != dtype
                and s.shape == p.shape
                and s.device == p.device
            ):
                # master_weights switched on or off (or a checkpoint saved the other way):
                # widen the state to float32, or round it to the parameter's dtype, once.
                state[key] = s = _like(p, s, dtype)
                changed = True
            if s.device != p.device or s.dtype != dtype or s.shape != p.shape:
                raise RuntimeError(
                    f"{where}: state '{key}' ({s.dtype}, {tuple(s.shape)}, {s.device}) does not "
                    f"match its parameter ({dtype}, {tuple(p.shape)}, {p.device})"
                )
            if s.layout != torch.strided:
                raise RuntimeError(f"{where}: state '{key}' has layout {s.layout}")
            if not _same_layout(s, p) and _is_dense(p):
                # E.g. a contiguous checkpoint tensor for a channels_last parameter: store it
                # once in the parameter's memory order so every step walks one span.
                state[key] = _like(p, s, dtype)
                changed = True
        return state, flagged, changed

    def _check_grads(self, gi, active, plan: _GroupPlan, grads):
        """Validate this step's gradients; return them (as real views, in the parameter's memory
        order) and their data pointers."""
        views = plan.views
        dtype = plan.dtype
        out = []
        ptrs = []
        for k, g in enumerate(grads):
            view = views[k]
            if plan.dtensor and (
                not _is_dtensor(g) or g.placements != plan.placements[k]
            ):
                raise RuntimeError(
                    f"{self._where(gi, active[k])}: gradient placements "
                    f"{getattr(g, 'placements', None)} differ from the parameter's "
                    f"{plan.placements[k]}; optimcore updates matching local shards only"
                )
            g = _local(g)
            if g.is_complex():
                g = torch.view_as_real(g.resolve_conj().resolve_neg())
            # The parameter's current shape: the table only needs its span, which a reshape
            # in place (p.data = p.data.view(...)) keeps.
            shape = _real(_local(plan.key_params[k])).shape
            if not (g.dtype == dtype and g.shape == shape and g.device.type == "cpu"
                    and g.layout == torch.strided):
                p = plan.key_params[k]
                where = self._where(gi, active[k])
                if g.layout != torch.strided:
                    raise RuntimeError(f"{where}: gradient has layout {g.layout}")
                raise RuntimeError(
                    f"{where}: gradient ({g.dtype}, {tuple(g.shape)}, {g.device}) does not match "
                    f"its parameter ({p.dtype}, {tuple(p.shape)}, {p.device})"
                )
            if g.numel() and not g.data_ptr():
                raise RuntimeError(
                    f"{self._where(gi, active[k])}: gradient ({type(grads[k]).__name__}) has no "
                    "data pointer; optimcore reads plain CPU tensors and DTensor shards"
                )
            if not _same_layout(g, view) and _is_dense(view):
                g = _like(view, g)  # e.g. a transposed gradient: read it in the param's order
            out.append(g)
            ptrs.append(g.data_ptr())
        return out, array("q", ptrs)

    # Running --------------------------------------------------------------------------------
    def _run(self, plan: _GroupPlan, hyper: tuple, grads, grad_ptrs, num_threads,
             stochastic: bool) -> None:
        for p, state in plan.new_state:
            if state:  # like torch, a rule without state (SGD, momentum=0) leaves none
                self.state[p] = state
        if plan.new_state:
            plan.new_state = []
            plan.record_state(self.state)
        table = plan.table
        for r in plan.refresh:  # the parameter was written from outside: it is the truth now
            p = plan.key_params[r]
            self.state[p][_MASTER_KEY].copy_(p)
        plan.refresh = []
        write_back = []
        for r in plan.staged:
            write_back += self._stage_row(plan, r, grads[r], grad_ptrs)
        self._launch(plan, hyper, grad_ptrs, num_threads, stochastic)
        for original, copy in write_back:
            if original is not None:
                original.copy_(copy)
        if plan.new_rows:
            table[plan.new_rows, _FLAGS] &= ~_STATE_IS_NEW
            plan.new_rows = []
        if plan.master:  # after any write-back above, which counts as our own write
            plan.versions = list(map(_version_of, plan.key_params))

    def _launch(self, plan: _GroupPlan, hyper: tuple, grad_ptrs, num_threads: int,
                stochastic: bool = False) -> None:
        """The one kernel call for a plan: table and gradient pointers, element type, master
        weights, the rule's hyperparameters, then rounding and threads."""
        # The seed is drawn only here, and only where it is used: a step that raises, or a
        # group without bfloat16 parameters, leaves torch's generator where it was.
        sr = stochastic and plan.dtype == torch.bfloat16
        seed = int(torch.randint(0, 2**62, ()).item()) if sr else 0
        self._kernel(plan.table.data_ptr(), grad_ptrs.buffer_info()[0], plan.table.shape[0],
                     _DTYPE_CODES[plan.dtype], plan.master, *hyper, sr, seed, num_threads)

    def _stage_row(self, plan: _GroupPlan, r: int, grad: torch.Tensor, grad_ptrs) -> list:
        """Point row r at dense copies of its tensors, for layouts the kernels cannot walk as one
        span (a parameter with gaps or overlaps, or state stored in another memory order).
        Returns the (original, copy) pairs to write back after the kernel."""
        state = self.state.get(plan.key_params[r], {})
        view = plan.views[r]
        dense = view if _is_dense(view) else view.contiguous()
        pairs = [(view, dense)] if dense is not view else []
        plan.table[r, _PARAM] = dense.data_ptr()
        g = grad if _same_layout(grad, dense) else _like(dense, grad)
        grad_ptrs[r] = g.data_ptr()
        pairs.append((None, g))  # keeps the gradient copy alive through the kernel
        for key, column in plan.columns:
            s = _real(_local(state[key]))
            if not _same_layout(s, dense):
                c = _like(dense, s)
                pairs.append((s, c))
                s = c
            plan.table[r, column] = s.data_ptr()
        return pairs


def _master_matches(master: torch.Tensor, p: torch.Tensor) -> bool:
    """Whether the float32 master copy still rounds (nearest or stochastically) to the 16-bit
    parameter, i.e. nothing outside the optimizer has written the parameter since."""
    if master.shape != p.shape:
        return False
    info = torch.finfo(p.dtype)
    return bool(torch.isclose(master, p.float(), rtol=info.eps, atol=info.tiny).all())


def _like(ref: torch.Tensor, src: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A copy of src laid out in ref's memory order (ref must be dense), optionally as dtype."""
    out = torch.empty_like(ref, dtype=dtype, memory_format=torch.preserve_format)
    out.copy_(src)
    return out
