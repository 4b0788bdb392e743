"""A group's table: the int64 rows of data pointers that one kernel call reads.

Owns: building a table for a param group (one row per parameter of the group, or of one dtype
of it, whether or not the parameter has a gradient this step), every check that makes writing
through those pointers safe, and the per-step checks that a cached table still describes the
parameters, their state and this step's gradients:

- each parameter: CPU (else torch's step runs), strided, a supported dtype, no lazy conj/neg
  bits, no internal overlap (``expand``);
- memory shared between rows (the same parameter twice, views of one storage): the rows run one
  after another, in group order, which is torch's sequential result; memory shared *within* a
  row (a state tensor that is a view of its parameter) is refused;
- gradients: dtype, shape, device, layout; a gradient that shares memory with anything the step
  writes sends the group to torch's step (the result would depend on torch's op order);
- layouts the kernels cannot walk as one span (gapped views, state in another memory order) are
  staged in dense copies and written back (``Table.stage_row``).

The row layout is ``csrc/lib/include/optimcore/dispatch.hpp``'s; the table never keeps a parameter's storage
alive (``p.data = ...`` frees the old storage as with torch), it only remembers pointers,
shapes and strides, and is rebuilt when they change.
"""

from __future__ import annotations

import operator
import sys
from array import array
from itertools import compress

import torch

from . import _C
from ._state import MASTER_DTYPES, MASTER_KEY, TorchStep, is_dense, like
from ._state import plan_state, same_layout

_COL = _C.TABLE_COLUMNS
PARAM, STEP, NUMEL, MASTER, FLAGS, STATE0 = (
    _COL[k] for k in ("param", "step", "numel", "master", "flags", "state0")
)
NO_GRAD = _C.NO_GRAD

# Element type codes of csrc/lib/include/optimcore/dispatch.hpp (enum DType).
DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.bfloat16: 2, torch.float16: 3}
# Complex parameters are updated as their real view, exactly as torch.optim does.
_REAL_OF_COMPLEX = {torch.complex64: torch.float32, torch.complex128: torch.float64}

# Per-step checks run as C-level map() passes over a group's tensors: the gradient checks cost
# ~0.7 us per tensor this way, ~2 us as attribute reads from Python bytecode.
grad_of = operator.attrgetter("grad")
dtype_of = operator.attrgetter("dtype")
_is_cpu = operator.attrgetter("is_cpu")
_is_contiguous = torch.Tensor.is_contiguous
_shape_of = operator.attrgetter("shape")
_placements_of = operator.attrgetter("placements")
_stride = torch.Tensor.stride
_is_conj = torch.Tensor.is_conj
_is_neg = torch.Tensor.is_neg
_data_ptr = torch.Tensor.data_ptr
_numel = torch.Tensor.numel
_local_of = operator.attrgetter("_local_tensor")


def is_dtensor(t) -> bool:
    # No DTensor can exist before torch.distributed.tensor is imported: do not import it here.
    module = sys.modules.get("torch.distributed.tensor")
    cls = getattr(module, "DTensor", None)
    return cls is not None and isinstance(t, cls)


def local(t: torch.Tensor) -> torch.Tensor:
    """The tensor holding t's elements in this process: a DTensor's local shard (FSDP2), else t.
    Every rule here is elementwise, so updating the shard is updating the DTensor."""
    return t._local_tensor if is_dtensor(t) else t


def real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def kernel_view(p: torch.Tensor) -> torch.Tensor:
    """The memory the kernel walks for p: its local shard, as real numbers, without autograd."""
    return real(local(p).detach())


def span(t: torch.Tensor):
    """(first byte, one past the last byte) of t's memory, or None if t is empty."""
    if t.numel() == 0:
        return None
    extent = 1 + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()))
    begin = t.data_ptr()
    return begin, begin + extent * t.element_size()


def check_param(where: str, p: torch.Tensor) -> None:
    """Raise unless the kernels can update p in place; TorchStep for a device they do not run on."""
    if p.device.type != "cpu":
        raise TorchStep(f"{where.rsplit(', ', 1)[-1]} is on {p.device}")
    if p.layout != torch.strided:
        raise RuntimeError(f"{where}: parameter has layout {p.layout}; expected torch.strided")
    t = local(p)
    if t.numel() and not t.data_ptr():
        raise RuntimeError(
            f"{where}: parameter ({type(p).__name__}) has no data pointer; optimcore reads "
            "plain CPU tensors and DTensor shards"
        )
    if t.is_conj() or t.is_neg():
        raise RuntimeError(f"{where}: parameter is a lazily conjugated/negated view; "
                           "call resolve_conj()/resolve_neg() on it first")
    if t.is_inference() and not torch.is_inference_mode_enabled():
        raise RuntimeError(f"{where}: parameter is an inference tensor (made under "
                           "torch.inference_mode()); it cannot be updated in place outside it")
    if not is_dense(t) and torch._debug_has_internal_overlap(t) == 1:
        raise RuntimeError(f"{where}: parameter has elements that share memory (e.g. from "
                           "expand()); an in-place update of it is undefined")
    dtype = _REAL_OF_COMPLEX.get(p.dtype, p.dtype)
    if dtype not in DTYPE_CODES:
        kind = "floating-point " if p.is_floating_point() else "non-floating "
        raise RuntimeError(
            f"{where}: {kind}parameter dtype {p.dtype} is not supported "
            f"(supported: float32, float64, bfloat16, float16, complex64, complex128)"
        )


class Table:
    """A group's (or a group dtype's) cached table and what it was built from."""

    def __init__(self, params: list, indices: list, state_keys: tuple, master: bool, width: int):
        self.params = params  # every parameter of the part, in group order (duplicates kept)
        self.indices = indices  # their indices in the group, for error messages
        self.state_keys = state_keys
        self.scalar_keys: tuple = ()  # per-tensor scalar state (0-d float32), after the state
        self.master = master  # float32 state and master weights for 16-bit parameters
        self.width = width
        self.dtype = real(params[0]).dtype  # the kernel's element type
        self.dtensor = is_dtensor(params[0])  # rows point at the local shards
        self.complex = params[0].is_complex()  # gradients may carry conj/neg bits
        self.rows: list[list[int]] = []
        self.table: torch.Tensor | None = None
        # Rows whose parameter has no usable state yet (never had a gradient): a gradient
        # there means a rebuild. Every other row is ready, with or without a gradient.
        self.unready: list[int] = []
        self.staged: list[int] = []  # rows whose param/state memory is not one dense span
        self.sequential = False  # rows share memory: run them one at a time, in order
        self.new_state: list[tuple[torch.Tensor, dict]] = []  # (param, state) to publish
        self.new_rows: list[int] = []  # rows with new-state flags until their first step
        # Steps of another dtype than float32 (torch's under default dtype float64, or a
        # checkpoint's int64): the kernel counts in a float32 copy, one per step tensor (rows of
        # a duplicated parameter share it), filled before the kernel; afterwards each step
        # tensor is incremented in its own dtype once per row that stepped, so it counts past
        # 2**24 as torch's does.
        self.shadows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id -> (step, copy)
        self.shadow_rows: list[tuple[int, torch.Tensor]] = []  # (row, step)
        # What each row's kernel call writes, as (tensor, name): parameter, step, state. Their
        # autograd version counters are bumped at the step, as torch's in-place ops do.
        self.written: list[list[tuple[torch.Tensor, str]]] = []
        # The same tensors by kind (every parameter, then every step, ...; `written_rows` gives
        # each one's row), the order every per-step pass over tensors takes: tensors of one kind
        # were mostly made one after another, so their metadata lies at a near-constant stride
        # that the CPU's prefetchers follow. In row order each cold version counter is a
        # separate cache miss (bench/bench_versions.py, Adam, 2000 x 256: 1.13-1.23x the step
        # time of the build before the bumps (574e5d6) in row order, 0.86-0.96x by kind).
        self.written_all: list[torch.Tensor] = []
        self.written_rows: list[int] = []
        # Written memory as sorted, merged byte ranges: a gradient inside it aliases the step.
        self.write_begin = array("q")
        self.write_end = array("q")
        self.nbytes = array("q")  # bytes of each row's gradient in the fast path
        # The state tensors the table points at (step included), checked each step by identity
        # and data pointer: code that replaces one (opt.state[p]["exp_avg"] = t) or its storage
        # (.data =, set_) gets a new table. (Metadata surgery in place at the same address,
        # such as resize_, is not looked for: the writes then stay inside that live storage.) Replacing a whole state dict is caught
        # optimizer-wide (CoreOptimizer._state_unchanged).
        self.state_tensors: tuple = ([], [], [])  # parallel lists: state dict, key, tensor
        self.state_ptrs: list[int] = []
        self.tracked_keys: list[str] = []
        # Parameter (local) pointers, shapes and strides when the table was built: they catch
        # `p.data = ...`; also what the fast gradient checks compare against.
        self.param_ptrs: list[int] = []
        self.shapes: list = []
        self.strides: list = []
        self.numels: list[int] = []
        self.dtype_set = {params[0].dtype}
        self.contiguous = False  # every parameter contiguous: then ptr + numel fix its span
        self.simple = False  # gradients of the common form can skip the per-tensor checks
        self.placements: list = []  # DTensor placements of the parameters
        # (state key, table column) of every tensor a row points at besides param and step.
        self.columns = [(k, STATE0 + i) for i, k in enumerate(state_keys) if k is not None]
        if master:
            self.columns.append((MASTER_KEY, MASTER))

    # Per-step checks -------------------------------------------------------------------------
    def ptrs(self, tensors) -> list[int]:
        return [local(t).data_ptr() for t in tensors] if self.dtensor else list(
            map(_data_ptr, tensors))

    def locals(self, tensors) -> list:
        return list(map(_local_of, tensors)) if self.dtensor else tensors

    def still_valid(self, params) -> bool:
        """Whether the table still describes these parameters and their state."""
        if not (
            len(self.params) == len(params)
            and all(map(operator.is_, self.params, params))
            and self.param_ptrs == self.ptrs(params)
        ):
            return False
        t = self.locals(params)
        # An elementwise kernel needs each parameter's memory span and order: for contiguous
        # parameters the data pointer, numel and contiguity fix them (cheaper than shape and
        # strides, which are tuples built per call).
        if list(map(_numel, t)) != self.numels or set(map(dtype_of, t)) != self.dtype_set:
            return False
        if self.contiguous:
            if not all(map(_is_contiguous, t)):
                return False
        elif list(map(_stride, t)) != self.strides or list(map(_shape_of, t)) != self.shapes:
            return False
        # Each state entry is still the tensor the table points at, and at the same address:
        # code that replaces an entry or a tensor's storage (.data =, set_) gets a new table.
        dicts, keys, tensors = self.state_tensors
        return (
            all(map(operator.is_, map(dict.get, dicts, keys), tensors))
            and self.ptrs(tensors) == self.state_ptrs
        )

    def needs_rebuild_for(self, grads) -> bool:
        """A row without state got a gradient."""
        return any(grads[r] is not None for r in self.unready)

    def reshaped(self, params) -> bool:
        """A parameter was reshaped in place (``p.data = p.data.view(...)``): same span, so
        still_valid holds, but its state must be checked against the new shape."""
        return list(map(_shape_of, self.locals(params))) != self.shapes

    def record_state(self, states) -> None:
        unready = set(self.unready)
        dicts = [states.get(p) for r, p in enumerate(self.params) if r not in unready]
        # By key, then row: the order of `written_all` (see there).
        triples = [(d, k, d[k]) for k in self.tracked_keys for d in dicts if d and k in d]
        self.state_tensors = tuple(map(list, zip(*triples))) if triples else ([], [], [])
        self.state_ptrs = self.ptrs(self.state_tensors[2])

    def fast_grad_ptrs(self, grads, missing: bool):
        """Pointers of this step's gradients (NO_GRAD for a row without one: `missing` says
        whether there are such rows) if every present gradient has the common, simple form
        (CPU, strided, contiguous, the parameter's dtype and shape); None means: check one by
        one."""
        if not self.simple:
            return None
        mask = None
        if missing:
            mask = [g is not None for g in grads]
            grads = list(compress(grads, mask))
            shapes = list(compress(self.shapes, mask))
        else:
            shapes = self.shapes
        if self.dtensor:
            # Same placements as the parameter (so never Partial): the shards line up.
            placements = self.placements if mask is None else list(compress(self.placements,
                                                                           mask))
            if not (all(map(is_dtensor, grads))
                    and list(map(_placements_of, grads)) == placements):
                return None
            grads = list(map(_local_of, grads))
        if not (
            set(map(dtype_of, grads)) <= self.dtype_set
            and all(map(_is_cpu, grads))
            and all(map(_is_contiguous, grads))
            and list(map(_shape_of, grads)) == shapes
        ):
            return None
        # A lazily negated view (torch._neg_view, z.conj().imag) reads as its memory's negation.
        if any(map(_is_neg, grads)) or (self.complex and any(map(_is_conj, grads))):
            return None
        present = array("q", map(_data_ptr, grads))
        if 0 in present:  # a tensor subclass without plain storage: check one by one
            return None
        if mask is None:
            return present
        out = array("q", [NO_GRAD]) * len(mask)
        values = iter(present)
        for r in compress(range(len(mask)), mask):
            out[r] = next(values)
        return out

    def grads_alias_writes(self, grad_ptrs, grad_bytes) -> bool:
        """Whether a gradient lies (partly) in memory this step writes."""
        return _C.first_overlap(
            self.write_begin.buffer_info()[0], self.write_end.buffer_info()[0],
            len(self.write_begin), grad_ptrs.buffer_info()[0], grad_bytes.buffer_info()[0],
            len(grad_ptrs),
        ) >= 0

    def stage_row(self, opt, r: int, grad: torch.Tensor, grad_ptrs) -> list:
        """Point row r at dense copies of its tensors, for layouts the kernels cannot walk as one
        span (a parameter with gaps, or state stored in another memory order). Returns the
        (original, copy) pairs to write back after the kernel."""
        state = opt.state.get(self.params[r], {})
        view = kernel_view(self.params[r])
        dense = view if is_dense(view) else view.contiguous()
        pairs = [(view, dense)] if dense is not view else []
        self.table[r, PARAM] = dense.data_ptr()
        g = grad if same_layout(grad, dense) else like(dense, grad)
        grad_ptrs[r] = g.data_ptr()
        pairs.append((None, g))  # keeps the gradient copy alive through the kernel
        for key, column in self.columns:
            s = real(local(state[key]))
            if not same_layout(s, dense):
                c = like(dense, s)
                pairs.append((s, c))
                s = c
            self.table[r, column] = s.data_ptr()
        return pairs


def build(opt, gi: int, group: dict, indices: list, params: list, grads: list) -> Table:
    """Check and tabulate the parameters `params` (at `indices` of group gi) with this step's
    gradients `grads` (None: no gradient). Rows with a gradient are checked strictly (any
    problem raises); rows without one are made ready when their existing state allows, else
    left out until they get a gradient."""
    state_keys = opt._state_keys(group)
    master = bool(group.get("master_weights")) and params[0].dtype in MASTER_DTYPES
    scalar_keys = opt._scalar_names
    t = Table(list(params), list(indices), state_keys, master,
              STATE0 + len(state_keys) + len(opt._scalar_names))
    t.scalar_keys = scalar_keys
    if any(is_dtensor(p) != t.dtensor for p in params):
        raise RuntimeError(
            f"optimcore.{type(opt).__name__}: param group {gi} mixes DTensor and plain "
            "parameters; put them in separate param groups"
        )
    # id(param) -> (state, flagged keys): a duplicate shares the first occurrence's state, and
    # like torch (which reads every state before updating any), sees it as at the step's start.
    planned: dict[int, tuple] = {}
    for r, (pi, p, g) in enumerate(zip(indices, params, grads)):
        where = opt._where(gi, pi)
        row = [0] * t.width
        t.rows.append(row)
        t.written.append([])
        if g is not None and not g.is_sparse:
            check_param(where, p)
            if id(p) in planned:
                state, flagged = planned[id(p)]
            else:
                state, flagged, changed = plan_state(opt, where, p, group, state_keys, master)
                planned[id(p)] = state, flagged
                if changed:
                    t.new_state.append((p, state))
        else:
            state, flagged = _ready_state(opt, where, p, group, state_keys, master, planned)
            if state is None:
                t.unready.append(r)
                continue
        _fill_row(t, r, row, p, state, flagged)
    _check_memory(opt, gi, t, grads)
    locals_ = [local(p) for p in params]
    t.param_ptrs = [x.data_ptr() for x in locals_]
    t.shapes = list(map(_shape_of, locals_))
    t.strides = list(map(_stride, locals_))
    t.numels = list(map(_numel, locals_))
    t.nbytes = array("q", [x.numel() * x.element_size() for x in locals_])
    t.contiguous = all(x.is_contiguous() for x in locals_)
    t.placements = [p.placements for p in params] if t.dtensor else []
    t.tracked_keys = ([k for k, _ in t.columns] + (["step"] if opt._has_step else [])
                      + list(t.scalar_keys))
    t.simple = not t.staged and all(x.is_contiguous() and x.numel() for x in locals_)
    by_kind = [(r, row[k][0]) for k in range(max(map(len, t.written), default=0))
               for r, row in enumerate(t.written) if k < len(row)]
    t.written_rows = [r for r, _ in by_kind]
    t.written_all = [x for _, x in by_kind]
    if not t.new_state:
        t.record_state(opt.state)
    t.table = torch.tensor(t.rows, dtype=torch.int64, device="cpu").reshape(len(t.rows), t.width)
    return t


def _ready_state(opt, where, p, group, state_keys, master, planned):
    """(state, no flags) of a parameter without a gradient this step, if its existing state can
    stay in the table as it is; (None, None) otherwise. Never raises: torch's step would not
    look at this parameter either."""
    if id(p) in planned:
        return planned[id(p)]
    try:
        check_param(where, p)
        planned_state = plan_state(opt, where, p, group, state_keys, master, create=False)
    except (RuntimeError, TorchStep):
        return None, None
    if planned_state is None:
        return None, None
    planned[id(p)] = planned_state[0], set()
    return planned[id(p)]


def _fill_row(t: Table, r: int, row: list, p, state: dict, flagged: set) -> None:
    view = kernel_view(p)
    row[PARAM] = view.data_ptr()
    row[NUMEL] = view.numel()
    written = [(p, "the parameter")]
    if "step" in state and state["step"] is not None:
        step = state["step"]
        if step.dtype == torch.float32 and step.is_contiguous():
            row[STEP] = step.data_ptr()
        else:
            if id(step) not in t.shadows:
                t.shadows[id(step)] = step, torch.empty(step.shape, dtype=torch.float32,
                                                       device="cpu")
            t.shadow_rows.append((r, step))
            row[STEP] = t.shadows[id(step)][1].data_ptr()
        written.append((step, "state 'step'"))
    dense = is_dense(view)
    flags = 0  # bit k: state column k is new, the kernel fills it (ParamState::new_state)
    for key, column in t.columns:
        s = real(local(state[key]))
        row[column] = s.data_ptr()
        dense = dense and same_layout(s, view)
        written.append((state[key], f"state '{key}'"))
        if key in flagged and column >= STATE0:
            flags |= 1 << (column - STATE0)
    for k, key in enumerate(t.scalar_keys):  # per-tensor scalars: after the state columns
        row[STATE0 + len(t.state_keys) + k] = state[key].data_ptr()
        written.append((state[key], f"state '{key}'"))
    row[FLAGS] = flags
    if flags:
        t.new_rows.append(r)
    if not dense:
        t.staged.append(r)
    t.written[r] = written


def _check_memory(opt, gi: int, t: Table, grads: list) -> None:
    """Find memory shared between the tensors the step writes. Between rows (the same parameter
    twice, or two views of one storage): the rows run one at a time, in group order, as torch
    does; within a row (state that is a view of its parameter, two state tensors over one
    buffer): refused, no order of writes makes that well defined. Rows without a gradient
    that would need refusing are dropped from the table instead (torch would not touch them)."""
    while True:
        spans = []  # (begin, end, row, what)
        for r, written in enumerate(t.written):
            for k, (x, name) in enumerate(written):
                s = span(kernel_view(x)) if k == 0 else span(real(local(x)))
                if s is not None:
                    spans.append((s[0], s[1], r, name))
        spans.sort()
        bad = None
        sequential = False
        open_spans: list = []
        for s in spans:
            open_spans = [o for o in open_spans if o[1] > s[0]]
            for o in open_spans:
                if o[2] == s[2]:
                    bad = (s[2], o[3], s[3])
                elif t.master and t.params[o[2]] is not t.params[s[2]]:
                    bad = (max(o[2], s[2]), "the parameter (master_weights=True)",
                           f"parameter {t.indices[min(o[2], s[2])]}")
                else:
                    sequential = True
                if bad:
                    break
            if bad:
                break
            open_spans.append(s)
        if bad is None:
            break
        r, a, b = bad
        if grads[r] is None:  # not stepped now: leave the row out of the table
            t.unready.append(r)
            t.written[r] = []
            t.rows[r][:] = [0] * t.width
            continue
        raise RuntimeError(
            f"{opt._where(gi, t.indices[r])}: {a} and {b} share memory; the step writes both, "
            "so the result would depend on the order of writes. Give each its own storage "
            "(clone())"
        )
    t.unready.sort()
    t.staged = [r for r in t.staged if r not in t.unready]
    t.new_rows = [r for r in t.new_rows if r not in t.unready]
    t.shadow_rows = [(r, step) for r, step in t.shadow_rows if r not in t.unready]
    t.sequential = sequential
    # The written memory, merged into disjoint sorted ranges, for the per-step gradient check.
    merged: list[list[int]] = []
    for begin, end, _, _ in spans:
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    t.write_begin = array("q", [m[0] for m in merged])
    t.write_end = array("q", [m[1] for m in merged])


def check_grads(opt, gi: int, t: Table, grads: list):
    """Validate this step's gradients one by one; return them (as real views, in the parameter's
    memory order; None where a row has none), their data pointers (NO_GRAD where none) and the
    byte ranges of the gradients as given (for the aliasing check)."""
    out = []
    ptrs = array("q")
    begins = array("q")
    lengths = array("q")
    for r, g in enumerate(grads):
        if g is None or g.is_sparse:
            out.append(None)
            ptrs.append(NO_GRAD)
            begins.append(NO_GRAD)
            lengths.append(0)
            continue
        p = t.params[r]
        where = opt._where(gi, t.indices[r])
        if t.dtensor and (not is_dtensor(g) or g.placements != t.placements[r]):
            raise RuntimeError(
                f"{where}: gradient placements {getattr(g, 'placements', None)} differ from the "
                f"parameter's {t.placements[r]}; optimcore updates matching local shards only"
            )
        g = local(g)
        if g.is_complex():
            g = torch.view_as_real(g.resolve_conj().resolve_neg())
        elif g.is_neg():
            g = g.resolve_neg()  # a lazily negated view: a copy holding its values
        view = kernel_view(p)  # the parameter as it is now (p.data may have been reshaped)
        if g.layout != torch.strided:
            raise RuntimeError(f"{where}: gradient has layout {g.layout}")
        if g.device.type != "cpu":
            raise TorchStep(f"gradient of parameter {t.indices[r]} is on {g.device}")
        if g.shape != view.shape:
            raise RuntimeError(
                f"{where}: gradient ({g.dtype}, {tuple(g.shape)}, {g.device}) does not match "
                f"its parameter ({p.dtype}, {tuple(p.shape)}, {p.device})"
            )
        if g.dtype != t.dtype:
            if opt._torch_steps_mixed(opt.param_groups[gi]) and g.is_floating_point():
                raise TorchStep(f"gradient of parameter {t.indices[r]} is {g.dtype}")
            raise RuntimeError(
                f"{where}: gradient ({g.dtype}) does not match its parameter ({p.dtype}); "
                "give the gradient the parameter's dtype"
            )
        if g.numel() and not g.data_ptr():
            raise RuntimeError(
                f"{where}: gradient ({type(grads[r]).__name__}) has no data pointer; optimcore "
                "reads plain CPU tensors and DTensor shards"
            )
        s = span(g)
        begins.append(s[0] if s else NO_GRAD)
        lengths.append(s[1] - s[0] if s else 0)
        if not same_layout(g, view) and is_dense(view):
            g = like(view, g)  # e.g. a transposed gradient: read it in the param's order
        out.append(g)
        ptrs.append(g.data_ptr() if g.numel() else 0)
    return out, ptrs, begins, lengths


def ranges_overlap(begin_a: array, end_a: array, begin_b: array, end_b: array) -> bool:
    """Whether any of the byte ranges a overlaps any of the sorted, disjoint ranges b."""
    if not begin_a or not begin_b:
        return False
    sizes = array("q", [e - b for b, e in zip(begin_a, end_a)])
    return _C.first_overlap(begin_b.buffer_info()[0], end_b.buffer_info()[0], len(begin_b),
                            begin_a.buffer_info()[0], sizes.buffer_info()[0], len(begin_a)) >= 0


def check_apart(written: list, read: list) -> None:
    """For rules that plan their own step (SparseAdam, Adafactor, Muon): raise TorchStep if the
    tensors the step writes share memory with each other, or the tensors it reads (gradients)
    share memory with them. torch's step, tensor by tensor, then gives its own result."""
    spans = sorted(s for s in map(span, written) if s)
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise TorchStep("parameters or state share memory")
    reads = [s for s in map(span, read) if s]
    if ranges_overlap(array("q", [b for b, _ in reads]), array("q", [e for _, e in reads]),
                      array("q", [b for b, _ in spans]), array("q", [e for _, e in spans])):
        raise TorchStep("a gradient shares memory with a parameter or state")
