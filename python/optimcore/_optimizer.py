"""The step every optimcore optimizer shares, and the class a rule derives from.

A rule (sgd.py, adam.py, ...) is a subclass of ``CoreOptimizer`` and of torch's class of the same
name: torch's constructor, validation, defaults and ``__setstate__`` run unchanged, and the rule
declares only its state, its hyperparameters and its kernel. This module owns:

- the step: every group is planned (hyperparameters, parameters, gradients and state checked,
  a first step's state made but not published) before any group is written, so a step that
  raises changes nothing; then one kernel call per group (per dtype of a group) runs;
- the choice of path per group: the compiled core, or torch's own step of the rule where the
  core cannot serve it (``differentiable``, ``capturable``, tensors off the CPU, tensor
  hyperparameters of a lower precision, gradients that alias what the step writes, state or
  gradients of another dtype that torch's rule accepts). ``last_step_paths`` tells which ran;
- the torch.optim.Optimizer methods optimcore adjusts (``load_state_dict``, ``add_param_group``).

Group tables (pointer rows, memory checks, per-step gradient checks): ``_table.py``. State and
checkpoints: ``_state.py``. bench/profile_step.py measures each part of a step.
"""

from __future__ import annotations

import inspect
import operator
from array import array
from itertools import compress, repeat
from typing import Any, Callable

import torch
from torch.autograd.graph import increment_version
from torch.optim import Optimizer

from . import _C, _table
from ._state import (MASTER_KEY, TorchStep, check_loaded_state, keep_master_state, new_step,
                     to_float)
from ._state import restore_master_state
from ._table import DTYPE_CODES, FLAGS, NO_GRAD, Table, check_grads, dtype_of
from ._table import grad_of

# optimcore's own options, taken off before torch's constructor runs; absent from param groups
# unless switched on, so the groups of a default optimizer equal torch's.
CORE_OPTIONS = ("master_weights", "stochastic_rounding")
_layout_of = operator.attrgetter("layout")
_STRIDED = {torch.strided}


def hyperparameter(group: dict, key: str, index: int | None = None, *, low: float = 0.0,
                   high: float | None = None, inclusive: bool = False) -> float:
    """group[key] (or group[key][index]) as a float, checked to lie in [low, high) ([low, high]
    with `inclusive`): values a scheduler or a user writes into param_groups between steps are
    checked at every step, before anything is written, against the range torch's constructor
    accepts."""
    name = key if index is None else f"{key}[{index}]"
    try:
        value = group[key] if index is None else group[key][index]
    except (IndexError, TypeError):
        raise ValueError(f"{name}: {key}={group[key]!r} has no element {index}") from None
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name}={value!r} is not a number")
    try:
        x = to_float(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name}={value!r} is not a number ({e})") from None
    if not (x >= low and (high is None or x < high or (inclusive and x == high))):
        where = f"[{low}, {high}{']' if inclusive else ')'}" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value!r} must be {where}")
    return x


def check_adam_arguments(lr, eps, betas, weight_decay, *, lr_positive: bool = False) -> None:
    """The constructor checks the Adam-like rules torch.optim does not have (AdaBound, SWATS,
    LAMB) share, with torch.optim.Adam's messages; `lr_positive`: lr = 0 is refused too."""
    if not (lr > 0.0 if lr_positive else lr >= 0.0):
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    for i in (0, 1):
        if not 0.0 <= betas[i] < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _tensor_hyperparameters(group: dict):
    """(key, tensor) for every tensor among the group's hyperparameters (betas included)."""
    for key, value in group.items():
        if key != "params":
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(v, torch.Tensor):
                    yield key, v


def _torch_only(group: dict, tensors_on_core: bool = True) -> str | None:
    """Why this group's step must be torch's own, whatever its tensors (None: it need not).
    `tensors_on_core`: whether the rule's kernel computes what torch does with float64 tensor
    hyperparameters (NAdam does not: torch then multiplies mu_product in float64)."""
    for flag in ("differentiable", "capturable"):
        if group.get(flag):
            return f"{flag}=True"
    for key, v in _tensor_hyperparameters(group):
        if v.device.type != "cpu":
            return f"{key} is a tensor on {v.device}"
        if not tensors_on_core:
            return f"{key} is a tensor"
        if v.dtype != torch.float64:
            # torch computes step sizes, bias corrections and decay factors in the tensor's
            # dtype; the kernels compute them in double.
            return f"{key} is a {v.dtype} tensor"
    return None


def _unhooked(step):
    """torch's step function without the hook wrapper Optimizer puts around it (the hooks run
    once, around optimcore's step)."""
    return step.__wrapped__ if getattr(step, "hooked", False) else step


def _derived_init(base_init):
    """The constructor of an optimcore rule from `base_init`, torch's constructor of the rule
    (or, for a rule torch.optim does not have, the class's own `_init` written in torch's
    style), plus optimcore's keyword-only options (see CORE_OPTIONS), with its signature and
    defaults."""

    def __init__(self, params, *args, master_weights: bool = False,
                 stochastic_rounding: bool = False, **kwargs):
        self._core_options = {
            k: True for k, on in zip(CORE_OPTIONS, (master_weights, stochastic_rounding)) if on
        }
        if self._core_options and self._rule not in _C.rules:
            raise ValueError(f"optimcore.{type(self).__name__} has no compiled elementwise "
                             f"kernel: {', '.join(self._core_options)} need one")
        self._reset_tables()
        base_init(self, params, *args, **kwargs)
        self.defaults.update(self._core_options)
        if master_weights:
            self._widen_constructed_state()
        # The compiled step applies no gradient scale: GradScaler unscales the gradients itself
        # (torch sets this for fused=True, whose kernels read grad_scale).
        self._step_supports_amp_scaling = False

    signature = inspect.signature(base_init)
    extras = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=False)
              for k in CORE_OPTIONS]
    __init__.__signature__ = signature.replace(
        parameters=[*signature.parameters.values(), *extras])
    __init__.__doc__ = base_init.__doc__
    return __init__


class CoreOptimizer(Optimizer):
    """Base class of optimcore's optimizers (a ``torch.optim.Optimizer``).

    A rule class derives from this and from torch's class (``class Adam(CoreOptimizer,
    torch.optim.Adam)``) and gets torch's constructor with optimcore's options added. It
    declares the attributes and methods below; docs/kernels.md is the recipe.
    """

    # Rule interface -------------------------------------------------------------------------
    #: The rule's prefix in the compiled core (OPTIMCORE_RULES in optimcore.hpp): its kernel
    #: is ``_C.<rule>_step`` and its description ``_C.rules[<rule>]`` (state names in table
    #: order, the state it fills itself on a first step, whether it counts steps, hyperparameter
    #: names). Set on the class; everything below derives from it. None: the rule has no
    #: compiled kernel yet, and every step is torch's own.
    _rule: str | None
    #: Sparse gradients: False raises ``_sparse_message``; True sends those parameters to
    #: ``_sparse_step`` if the rule defines it (SGD: the rest of the group stays on the core),
    #: else the group to torch's own step.
    _supports_sparse = False
    _sparse_message = "{name} does not support sparse gradients"
    #: State keys torch creates lazily when an option is switched on mid-training (so they may
    #: be missing beside the others); any other missing key is a truncated checkpoint.
    _optional_state: frozenset = frozenset()
    #: Whether torch's step of this rule steps with state or gradients of another floating
    #: dtype than the parameter (SGD does: its in-place ops cast; Adam raises: lerp_ needs one
    #: dtype). Such a step then runs torch's code; otherwise it is refused before any write,
    #: with a message saying how to proceed. A rule whose answer depends on its options
    #: overrides ``_torch_steps_mixed(group)``.
    _torch_steps_mixed_dtypes = False

    def _torch_steps_mixed(self, group: dict) -> bool:
        return self._torch_steps_mixed_dtypes

    #: Whether float64 tensor hyperparameters (lr=torch.tensor(...)) can stay on the kernel
    #: (torch computes the same with them as with floats); lower-precision ones never can.
    _tensor_hyperparameters_on_core = True

    def _uses_state(self, group: dict, key: str) -> bool:
        """Whether the group's options use this state tensor (Adam's max_exp_avg_sq: amsgrad)."""
        return True

    def _hyperparameters(self, group: dict) -> dict:
        """The group's hyperparameters by the kernel's names (``_C.rules[rule]["options"]``),
        each read with ``hyperparameter`` so that a value out of torch's range raises while
        planning, before anything is written."""
        raise NotImplementedError

    #: Per-tensor scalar state kept exactly across load_state_dict (torch casts floating state
    #: to the parameter's dtype, which would round a float64 scalar of a float32 or bfloat16
    #: parameter): taken from the checkpoint as saved, in ``_scalar_dtype``.
    _exact_scalar_load = False
    #: Group keys a checkpoint may lack (one saved by the rule's published implementation, which
    #: keeps them on the optimizer object): load_state_dict keeps this optimizer's values.
    _group_keys_kept_on_load: tuple = ()

    def _scalar_dtype(self, key: str) -> torch.dtype:
        """The dtype of a per-tensor scalar state (float32, torch's scalar dtype, unless the rule
        needs more)."""
        return torch.float32

    def _new_scalar_state(self, group: dict, key: str, p: torch.Tensor) -> torch.Tensor:
        """A per-tensor scalar state (a 0-d tensor, like NAdam's mu_product) as torch's first
        step makes it."""
        raise NotImplementedError

    # Derived from the compiled rule's description.
    _kernel: Callable[..., None]
    _has_step: bool
    _state_names: tuple
    _filled_state: frozenset
    _scalar_names: tuple = ()

    def _state_keys(self, group: dict) -> tuple:
        """Names of the per-element state tensors in table order; None marks a column the
        group's options leave unused (the length is the kernel's row width)."""
        return tuple(k if self._uses_state(group, k) else None for k in self._state_names)

    def _new_state(self, group: dict, key: str, p: torch.Tensor, dtype: torch.dtype):
        """A state tensor the rule's first step starts from (zeros, in p's memory order)."""
        return torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)

    def _new_state_is_flagged(self, key: str) -> bool:
        """True if the kernel fills this state on its first step (no zero-initialisation)."""
        return key in self._filled_state

    def _sparse_step(self, group: dict, params: list, grads: list) -> None:
        raise NotImplementedError

    # Construction ---------------------------------------------------------------------------
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_rule") in _C.rules:  # an elementwise rule (OPTIMCORE_RULES)
            info = _C.rules[cls._rule]
            cls._kernel = staticmethod(getattr(_C, f"{cls._rule}_step"))
            cls._has_step = info["counts_steps"]
            cls._state_names = info["state"]
            cls._filled_state = frozenset(info["fills_new_state"])
            cls._scalar_names = info["scalar_state"]
            unknown = set(cls._optional_state) - set(cls._state_names) - set(cls._scalar_names)
            if unknown:
                raise TypeError(f"{cls.__name__}._optional_state names state the compiled rule "
                                f"'{cls._rule}' does not have: {sorted(unknown)}")
        torch_cls = cls._torch_class()
        if "__init__" not in cls.__dict__ and not cls._mixin_init():
            if torch_cls is not None:
                cls.__init__ = _derived_init(torch_cls.__init__)
            elif "_init" in cls.__dict__:  # a rule torch.optim does not have
                cls.__init__ = _derived_init(cls.__dict__["_init"])

    @classmethod
    def _mixin_init(cls) -> bool:
        """Whether the constructor this class inherits comes from a mixin (a class before any
        optimcore or torch.optim class in the MRO): it stays, and reaches the rule's own
        constructor through super()."""
        for c in cls.__mro__[1:]:
            if "__init__" in c.__dict__:
                return not (issubclass(c, CoreOptimizer) or c is object
                            or c.__module__.startswith("torch.optim"))
        return False

    @classmethod
    def _torch_class(cls) -> type | None:
        """torch's class of this rule (the first torch.optim class in the MRO), if any."""
        for c in cls.__mro__:
            if c is not Optimizer and c.__module__.startswith("torch.optim"):
                return c
        return None

    def _widen_constructed_state(self) -> None:
        """State torch's constructor made (Adagrad's sum) for 16-bit parameters, made again in
        float32 for master weights: widening the 16-bit tensor would keep its rounding."""
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if not state or p.dtype not in _table.MASTER_DTYPES:
                    continue
                for key, value in list(state.items()):
                    if (key != "step" and isinstance(value, torch.Tensor)
                            and value.dtype == p.dtype and value.shape == p.shape):
                        state[key] = self._new_state(group, key, p, torch.float32)

    def _reset_tables(self) -> None:
        self._tables: dict[Any, Table] = {}
        self._state_seen: tuple = (None, [])
        #: Per param group, the path its last step took: "core" (the compiled kernels),
        #: "torch" (torch's own step of the rule) or None (no gradients).
        self.last_step_paths: list[str | None] = []
        #: Why a group took torch's path at the last step, by group index.
        self.last_fallback_reasons: dict[int, str] = {}

    # torch.optim.Optimizer interface --------------------------------------------------------
    def __setstate__(self, state: dict) -> None:
        if hasattr(self, "_tables"):  # load_state_dict (after torch's pre-hooks), not unpickling
            check_loaded_state(self, state)
        super().__setstate__(state)
        self._core_options = {k: True for k in CORE_OPTIONS if self.defaults.get(k)}
        for group in self.param_groups:  # a torch checkpoint lacks these
            for key, value in self._core_options.items():
                group.setdefault(key, value)
        self._reset_tables()  # load_state_dict replaced state tensors: rebuild every table

    def load_state_dict(self, state_dict: dict) -> None:
        """As torch's, except that float32 state of 16-bit parameters trained with
        master_weights=True stays float32 (torch casts floating state to the parameter dtype)."""
        keep = keep_master_state(state_dict)
        kept = [{k: g[k] for k in self._group_keys_kept_on_load if k in g}
                for g in self.param_groups]
        super().load_state_dict(state_dict)
        restore_master_state(self, state_dict, keep)
        for group, saved, mine in zip(self.param_groups, state_dict["param_groups"], kept):
            for key, value in mine.items():
                if key not in saved:
                    group[key] = value
        if self._exact_scalar_load:
            saved = state_dict["state"]
            ids = [i for g in state_dict["param_groups"] for i in g["params"]]
            params = [p for g in self.param_groups for p in g["params"]]
            for i, p in zip(ids, params):
                if i not in saved or p not in self.state:
                    continue
                for key in self._scalar_names:
                    value = saved[i].get(key)
                    if isinstance(value, torch.Tensor) and value.numel() == 1:
                        self.state[p][key] = value.detach().reshape(()).to(
                            "cpu", self._scalar_dtype(key)).clone()

    def add_param_group(self, param_group: dict) -> None:
        for key, value in getattr(self, "_core_options", {}).items():
            param_group.setdefault(key, value)
        super().add_param_group(param_group)
        if hasattr(self, "_tables"):
            self._tables = {}

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): A closure that reevaluates the model
                and returns the loss.
        """
        if self._rule is None:  # no compiled kernel: torch's step, closure and all (LBFGS)
            self.last_step_paths = ["torch"] * len(self.param_groups)
            self.last_fallback_reasons = dict.fromkeys(range(len(self.param_groups)),
                                                       "no compiled kernel for this rule yet")
            return _unhooked(self._torch_class().step)(self, closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self._state_unchanged():
            self._tables = {}
        # Validate every group before the first write: a step that raises changes nothing.
        self.last_fallback_reasons = {}
        try:
            plans = [self._plan_group(gi, g) for gi, g in enumerate(self.param_groups)]
        except BaseException:
            # Tables holding unpublished state would publish it on a later step, over whatever
            # the caller changes in between: drop them.
            self._tables = {k: t for k, t in self._tables.items() if not t.new_state}
            raise
        self.last_step_paths = [path for path, _ in plans]
        num_threads = torch.get_num_threads()
        for _, run in plans:
            if run is not None:
                run(num_threads)
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

    def _plan_group(self, gi: int, group: dict):
        """Validate group gi for this step; return (path, callable that performs it or None)."""
        name = type(self).__name__
        reason = _torch_only(group, self._tensor_hyperparameters_on_core)
        hyper = None
        if all(v.device.type == "cpu" for _, v in _tensor_hyperparameters(group)):
            try:
                hyper = self._hyperparameters(group)
            except TorchStep as e:  # values torch's step takes and the kernel does not
                reason = reason or str(e)
            except (TypeError, ValueError, RuntimeError, KeyError, IndexError) as e:
                raise ValueError(f"optimcore.{name}: param group {gi}: invalid "
                                 f"hyperparameter: {e}") from e
        if reason is None:
            try:
                run = self._plan_core(gi, group, hyper)
                return ("core" if run else None), run
            except TorchStep as e:
                reason = str(e)
                for key in [k for k in self._tables if k == gi or (type(k) is tuple and k[0] == gi)]:
                    del self._tables[key]
        if any(group.get(k) for k in CORE_OPTIONS):
            raise RuntimeError(
                f"optimcore.{name}: param group {gi}: {reason}: only torch.optim.{name}'s own "
                f"step can take this, and {'/'.join(CORE_OPTIONS)} need the compiled core"
            )
        self.last_fallback_reasons[gi] = reason
        return "torch", lambda num_threads: self._torch_step(group)

    def _plan_core(self, gi: int, group: dict, hyper: tuple):
        params = group["params"]
        if not params:
            return None
        grads = list(map(grad_of, params))
        stochastic = bool(group.get("stochastic_rounding"))
        # The common step: the group's known table, every parameter with a gradient of the usual
        # form. Anything else (no gradient, sparse, another layout) makes fast_grad_ptrs give
        # up or raise, and the general path below sorts it out.
        table = self._tables.get(gi)
        if table is not None and not table.unready and self._table_matches(table, group, params):
            try:
                grad_ptrs = table.fast_grad_ptrs(grads, False)
            except (AttributeError, RuntimeError, TypeError):
                grad_ptrs = None
            if grad_ptrs is not None:
                work = [self._prepare(gi, table, params, grads, grad_ptrs, False, stochastic)]
                return lambda num_threads: self._run_all(None, work, hyper, num_threads,
                                                         stochastic)
        try:
            layouts = set(map(_layout_of, grads))
            missing = False
        except AttributeError:  # some parameters have no gradient (None)
            missing = True
            layouts = {g.layout for g in grads if g is not None}
            if not layouts:
                return None
        sparse = None
        if layouts != _STRIDED:
            indices = [i for i, g in enumerate(grads) if g is not None and g.is_sparse]
            if indices and not self._supports_sparse:
                raise RuntimeError(
                    f"{self._where(gi, indices[0])}: gradient is sparse; "
                    + self._sparse_message.format(name=type(self).__name__)
                )
            if indices and type(self)._sparse_step is CoreOptimizer._sparse_step:
                raise TorchStep("sparse gradients")
            for i in indices:
                self._check_sparse(gi, i, params[i], grads[i], group)
            sparse = [params[i] for i in indices], [grads[i] for i in indices]
            grads = [None if g is not None and g.is_sparse else g for g in grads]
            missing = missing or bool(indices)

        work = []  # one kernel call each
        for key, indices, known_valid in self._parts(gi, group, params):
            part_params = params if indices is None else [params[i] for i in indices]
            part_grads = grads if indices is None else [grads[i] for i in indices]
            if missing and all(map(operator.is_, part_grads, repeat(None))):
                continue
            table = self._table(key, gi, group, indices, part_params, part_grads, known_valid)
            grad_ptrs = table.fast_grad_ptrs(part_grads, missing)
            if grad_ptrs is None and table.reshaped(part_params):
                table = self._table(key, gi, group, indices, part_params, part_grads, rebuild=True)
            work.append(self._prepare(gi, table, part_params, part_grads, grad_ptrs, missing,
                                      stochastic))
        if len(work) > 1 or sparse:
            self._check_parts_apart(work, sparse)
        return lambda num_threads: self._run_all(group, work, hyper, num_threads, stochastic,
                                                 sparse)

    def _prepare(self, gi, table: Table, params, grads, grad_ptrs, missing, stochastic):
        """The remaining checks of one table's step (gradients one by one unless the fast
        checks passed, aliasing, rounding options); returns what ``_run`` needs."""
        if stochastic and table.dtype == torch.float16:
            raise ValueError(
                f"optimcore.{type(self).__name__}: param group {gi}: stochastic_rounding "
                "supports bfloat16 parameters (float16 ones round to nearest: leave it off)"
            )
        if grad_ptrs is not None:
            begins, lengths = grad_ptrs, table.nbytes
        else:
            grads, grad_ptrs, begins, lengths = check_grads(self, gi, table, grads)
        if table.grads_alias_writes(begins, lengths):
            raise TorchStep("a gradient shares memory with a parameter or state the step "
                            "writes (torch's result depends on the order of its ops)")
        return table, grads, grad_ptrs, missing, (begins, lengths)

    @staticmethod
    def _check_parts_apart(work, sparse) -> None:
        """A group that runs in parts (one kernel call per dtype; sparse gradients through torch's
        code first) must not share memory between them: torch steps the parameters in group
        order, the parts do not. Such a group runs torch's step."""
        written = [(t.write_begin, t.write_end) for t, *_ in work]
        if sparse:
            spans = sorted(s for s in (_table.span(_table.kernel_view(p)) for p in sparse[0]) if s)
            written.append((array("q", [b for b, _ in spans]), array("q", [e for _, e in spans])))
        for i, (begin_a, end_a) in enumerate(written):
            for j, (begin_b, end_b) in enumerate(written):
                if i != j and _table.ranges_overlap(begin_a, end_a, begin_b, end_b):
                    raise TorchStep("parameters of different dtypes (or with sparse gradients) "
                                    "share memory")
        for k, (*_, (begins, lengths)) in enumerate(work):
            ends = array("q", [b + n for b, n in zip(begins, lengths)])
            for i, (begin_b, end_b) in enumerate(written):
                if i != k and _table.ranges_overlap(begins, ends, begin_b, end_b):
                    raise TorchStep("a gradient shares memory with a parameter of another part "
                                    "of its group")

    def _run_all(self, group, work, hyper, num_threads, stochastic, sparse=None) -> None:
        if sparse:
            self._sparse_step(group, *sparse)
            for p in sparse[0]:  # torch updated the parameter: refresh its master copy
                master = self.state.get(p, {}).get(MASTER_KEY)
                if master is not None:
                    master.copy_(p)
        for table, grads, grad_ptrs, missing, _ in work:
            self._run(table, hyper, grads, grad_ptrs, num_threads, stochastic, missing)

    def _parts(self, gi: int, group: dict, params: list):
        """[(cache key, indices in the group or None for all, cached table known valid)]: the
        group as is (key gi), or one part per parameter dtype (key (gi, dtype)): torch allows a
        group to mix dtypes, a kernel call takes one."""
        table = self._tables.get(gi)
        if table is not None and self._table_matches(table, group, params):
            return [(gi, None, True)]  # the common case: a known table
        dtypes = list(map(dtype_of, params))
        if len(set(dtypes)) <= 1:
            return [(gi, None, False)]
        parts: dict = {}
        for i, dt in enumerate(dtypes):
            parts.setdefault(dt, []).append(i)
        return [((gi, dt), indices, False) for dt, indices in parts.items()]

    def _table_matches(self, table: Table, group: dict, params) -> bool:
        return (
            table.state_keys == self._state_keys(group)
            and table.master == (bool(group.get("master_weights"))
                                 and table.dtype in _table.MASTER_DTYPES)
            and table.still_valid(params)
        )

    def _table(self, key, gi, group, indices, params, grads, known_valid=False,
               rebuild=False) -> Table:
        table = self._tables.get(key)
        if (
            not rebuild
            and table is not None
            and (known_valid or self._table_matches(table, group, params))
            and not table.needs_rebuild_for(grads)
        ):
            return table
        if indices is None:
            indices = range(len(params))
        table = _table.build(self, gi, group, indices, params, grads)
        self._tables[key] = table
        return table

    def _check_sparse(self, gi: int, pi: int, p: torch.Tensor, g: torch.Tensor, group) -> None:
        _table.check_param(self._where(gi, pi), p)
        if group.get("weight_decay"):
            # torch.optim.SGD fails here too, but only midway through its step.
            raise RuntimeError(f"{self._where(gi, pi)}: weight_decay is not supported with a "
                               "sparse gradient")
        if g.device != p.device or g.dtype != p.dtype or g.shape != p.shape:
            raise RuntimeError(
                f"{self._where(gi, pi)}: sparse gradient ({g.dtype}, {tuple(g.shape)}, {g.device}) "
                f"does not match its parameter ({p.dtype}, {tuple(p.shape)}, {p.device})"
            )

    # Running --------------------------------------------------------------------------------
    def _run(self, table: Table, hyper: tuple, grads, grad_ptrs, num_threads,
             stochastic: bool, missing: bool) -> None:
        """Publish new state, then the kernel call(s); `missing`: some rows have no gradient
        (NO_GRAD) and are skipped."""
        for p, state in table.new_state:
            if state:  # like torch, a rule without state (SGD, momentum=0) leaves none
                self.state[p] = state
        if table.new_state:
            table.new_state = []
            table.record_state(self.state)
        if missing:
            stepped = [ptr != NO_GRAD for ptr in grad_ptrs]
            active = list(compress(range(len(stepped)), stepped))
            written = list(compress(table.written_all, map(stepped.__getitem__,
                                                           table.written_rows)))
        else:
            active = range(len(grad_ptrs))
            written = table.written_all
        # The kernels write through pointers: make the writes visible to autograd, as torch's
        # in-place ops do (a graph that saved a parameter then fails in backward). Bumped just
        # before the writes, while the checks above still have these tensors in cache (after
        # the kernel has streamed the data through, each bump is a cache miss).
        increment_version(written)
        for step, shadow in table.shadows.values():
            shadow.copy_(step)
        staged = set(table.staged)
        if table.sequential:  # rows share memory: one at a time, in group order, as torch
            for r in active:
                write_back = self._stage(table, r, grads, grad_ptrs) if r in staged else []
                self._launch(table, hyper, grad_ptrs, num_threads, stochastic, first=r, count=1)
                self._write_back(write_back)
        else:
            write_back = []
            for r in table.staged:
                if grad_ptrs[r] != NO_GRAD:
                    write_back += self._stage(table, r, grads, grad_ptrs)
            self._launch(table, hyper, grad_ptrs, num_threads, stochastic)
            self._write_back(write_back)
        for r, step in table.shadow_rows:
            if grad_ptrs[r] != NO_GRAD:
                step.add_(1)
        if table.new_rows:
            table.table[table.new_rows, FLAGS] = 0
            table.new_rows = []

    def _stage(self, table: Table, r: int, grads, grad_ptrs) -> list:
        return table.stage_row(self, r, grads[r], grad_ptrs)

    @staticmethod
    def _write_back(pairs) -> None:
        for original, copy in pairs:
            if original is not None:
                original.copy_(copy)

    def _launch(self, table: Table, hyper: tuple, grad_ptrs, num_threads: int,
                stochastic: bool = False, first: int = 0, count: int | None = None) -> None:
        """The one kernel call for a table (or for `count` rows of it from row `first`): table
        and gradient pointers, element type, master weights, the rule's hyperparameters, then
        rounding and threads."""
        # The seed is drawn only here, and only where it is used: a step that raises, or a
        # group without bfloat16 parameters, leaves torch's generator where it was.
        sr = stochastic and table.dtype == torch.bfloat16
        seed = int(torch.randint(0, 2**62, (), device="cpu").item()) if sr else 0
        if count is None:
            count = table.table.shape[0]
        self._kernel(table.table.data_ptr() + first * table.width * 8,
                     grad_ptrs.buffer_info()[0] + first * 8, count,
                     DTYPE_CODES[table.dtype], table.master, sr, seed, num_threads, **hyper)

    def _reference_state(self, group: dict, p: torch.Tensor) -> dict:
        """p's state for ``_reference_step``, created as the compiled path creates it: step, the
        per-element state the group's options use (zeros in p's layout), the scalars."""
        state = self.state[p]
        if self._has_step and "step" not in state:
            state["step"] = new_step(group)
        for key in self._state_keys(group):
            if key is not None and key not in state:
                state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
        for key in self._scalar_names:
            if key not in state:
                state[key] = self._new_scalar_state(group, key, p)
        return state

    def _reference_step(self) -> None:
        """A rule torch.optim does not have: its step in torch ops over ``self.param_groups``
        (the path taken where the compiled core cannot serve a group, as torch's own step is
        for the others)."""
        raise NotImplementedError

    def _torch_step(self, group: dict) -> None:
        """torch's own step of this rule (its reference step, for a rule torch.optim does not
        have), for one param group, on the same state."""
        torch_cls = self._torch_class()
        step = _unhooked(torch_cls.step) if torch_cls is not None else type(self)._reference_step
        groups = self.param_groups
        self.param_groups = [group]
        try:
            step(self)
        finally:
            self.param_groups = groups
