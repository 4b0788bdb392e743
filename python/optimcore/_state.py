"""Per-parameter state: what a step finds in ``optimizer.state[p]``, checked and completed.

Owns: creating a first step's state (as torch's ``_init_group`` would, with the same keys and
dtypes, ``step`` included), refusing state a kernel cannot use safely (an incomplete checkpoint,
a tensor of another shape, device or dtype), the conversions optimcore makes on purpose (state
widened to float32 for master weights, stored in the parameter's memory order), and keeping
master-weight state float32 across ``load_state_dict``.

Nothing here publishes state: ``plan_state`` returns the state a step *will* have, and the step
publishes it only once every group has been validated (validate before mutate).
"""

from __future__ import annotations

import itertools

import torch
from torch.optim.optimizer import _get_scalar_dtype

# 16-bit parameters that master_weights=True gives float32 state and a float32 master copy.
MASTER_DTYPES = (torch.bfloat16, torch.float16)
MASTER_KEY = "master_param"


class TorchStep(Exception):
    """Raised while planning a group: its step must run torch's own implementation (the state
    or gradients are in a form torch steps and the compiled kernels do not)."""


def to_float(x) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def like(ref: torch.Tensor, src: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A copy of src laid out in ref's memory order (ref must be dense), optionally as dtype."""
    out = torch.empty_like(ref, dtype=dtype, memory_format=torch.preserve_format)
    out.copy_(src)
    return out


def same_layout(t: torch.Tensor, ref: torch.Tensor) -> bool:
    """True when t can be read element-for-element in ref's memory order."""
    return t.stride() == ref.stride() or (t.is_contiguous() and ref.is_contiguous())


def is_dense(t: torch.Tensor) -> bool:
    """True when t's elements fill its memory span exactly once (any dimension order)."""
    if t.is_contiguous():
        return True
    expected = 1
    for stride, size in sorted((st, sz) for st, sz in zip(t.stride(), t.shape) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def new_step(group: dict) -> torch.Tensor:
    """A first step's ``step`` tensor, as torch makes it: float32, or float64 under
    ``torch.set_default_dtype(torch.float64)`` (float32 always with fused=True)."""
    return torch.tensor(0.0, dtype=_get_scalar_dtype(is_fused=group.get("fused")), device="cpu")


def plan_state(opt, where: str, p: torch.Tensor, group: dict, state_keys: tuple, master: bool,
               create: bool = True):
    """The state p will have after this step, checked (nothing is published here).

    Returns (state, keys the kernel must initialise, whether state differs from opt.state[p]).
    With `master`, state is float32 and "master_param" holds the float32 master copy.
    With ``create=False`` (a parameter without a gradient this step, whose row is only kept
    ready in the table) returns None instead of creating or converting anything.
    Raises RuntimeError for state no step can use, TorchStep for state only torch's step takes.
    """
    old = opt.state.get(p)
    state = dict(old) if old else {}
    changed = not old
    rule_keys = [k for k in state_keys if k is not None]
    if old:
        _check_complete(opt, where, old, rule_keys)
    if opt._has_step:
        step = state.get("step")
        if step is None:
            state["step"] = new_step(group)
            changed = True
        elif not isinstance(step, torch.Tensor):
            # torch.optim's __setstate__ turns an old checkpoint's number into a tensor; a number
            # set by hand gets the same treatment here.
            try:
                value = to_float(step)
            except (TypeError, ValueError, RuntimeError):
                raise RuntimeError(f"{where}: state 'step' is not a number: {step!r}") from None
            state["step"] = torch.tensor(value, dtype=_get_scalar_dtype(), device="cpu")
            changed = True
        elif step.numel() != 1 or step.device.type != "cpu" or step.is_complex():
            raise RuntimeError(f"{where}: state 'step' must be a one-element real CPU tensor, "
                               f"got {step.dtype} {tuple(step.shape)} on {step.device}")
    dtype = torch.float32 if master else p.dtype
    was_master = MASTER_KEY in state
    if master and state.get(MASTER_KEY) is None:
        state[MASTER_KEY] = like(p, p, torch.float32)
        changed = True
    elif not master and was_master:
        del state[MASTER_KEY]  # master weights switched off: the parameter is the truth
        changed = True
    flagged = set()
    for key in rule_keys + ([MASTER_KEY] if master else []):
        s = state.get(key)
        if s is None:
            # New state (first step, or amsgrad/momentum switched on mid-training).
            if opt._new_state_is_flagged(key):
                state[key] = torch.empty_like(p, dtype=dtype, memory_format=torch.preserve_format)
                flagged.add(key)
            else:
                state[key] = opt._new_state(group, key, p, dtype)
            changed = True
            continue
        if not isinstance(s, torch.Tensor):
            raise RuntimeError(f"{where}: state '{key}' is a {type(s).__name__}, not a Tensor")
        if s.layout != torch.strided:
            raise RuntimeError(f"{where}: state '{key}' has layout {s.layout}")
        if not is_dense(s) and torch._debug_has_internal_overlap(s) == 1:
            raise RuntimeError(f"{where}: state '{key}' has elements that share memory (e.g. "
                               "from expand()); give it its own storage (clone())")
        if s.is_inference() and not torch.is_inference_mode_enabled():
            raise RuntimeError(f"{where}: state '{key}' is an inference tensor (made under "
                               "torch.inference_mode()); it cannot be updated outside it")
        if s.device != p.device or s.shape != p.shape:
            raise RuntimeError(
                f"{where}: state '{key}' ({s.dtype}, {tuple(s.shape)}, {s.device}) does not "
                f"match its parameter ({p.dtype}, {tuple(p.shape)}, {p.device})"
            )
        if s.dtype != dtype:
            state[key] = s = _state_of_dtype(opt, where, key, s, p, dtype, master, was_master,
                                             group)
            changed = True
        if not same_layout(s, p) and is_dense(p):
            # E.g. a contiguous checkpoint tensor for a channels_last parameter: store it
            # once in the parameter's memory order so every step walks one span.
            state[key] = like(p, s, dtype)
            changed = True
    for key in opt._scalar_names:
        s = state.get(key)
        if s is None:
            state[key] = s = opt._new_scalar_state(group, key, p)
            if group.get("master_weights") or group.get("stochastic_rounding"):
                # Options only the kernels take: no torch step to follow (its float64 scalars
                # under a float64 default dtype), so the kernels' dtype.
                state[key] = s = s.to(opt._scalar_dtype(key))
            changed = True
        if not (isinstance(s, torch.Tensor) and s.numel() == 1 and s.device.type == "cpu"
                and s.is_floating_point()):
            raise RuntimeError(f"{where}: state '{key}' must be a one-element real CPU tensor, "
                               f"got {s!r}")
        if s.dtype != opt._scalar_dtype(key) or not s.is_contiguous():
            # The kernels keep per-tensor scalars in float32 (torch's default scalar dtype), or
            # in the dtype the rule asks for.
            raise TorchStep(f"state '{key}' is {s.dtype}")
    if not create and changed:
        return None
    return state, flagged, changed


def check_loaded_state(opt, loaded: dict) -> None:
    """Refuse, at load_state_dict (after torch's pre-hooks, before anything is replaced), a
    checkpoint whose state for a parameter is truncated (see _check_complete). `loaded` is what
    torch's load_state_dict passes to __setstate__: state keyed by parameter."""
    name = type(opt).__name__
    states = loaded.get("state", {})
    for gi, group in enumerate(loaded.get("param_groups", [])):
        try:
            keys = [k for k in opt._state_keys({**opt.defaults, **group}) if k is not None]
        except KeyError:
            continue  # a group layout this rule does not know: torch's code will say so
        for pi, p in enumerate(group.get("params", [])):
            entry = states.get(p)
            if entry:
                _check_complete(opt, f"optimcore.{name}.load_state_dict: param group {gi}, "
                                     f"parameter {pi}", entry, keys)


def _check_complete(opt, where: str, old: dict, rule_keys: list) -> None:
    """State that has some of the rule's tensors must have all of them: a missing one is a
    truncated checkpoint, and restarting that moment from zero would silently change the
    trajectory (torch.optim raises KeyError). Keys in ``_optional_state`` are made lazily when
    an option is switched on mid-training (Adam's amsgrad, SGD's momentum), so they may be
    absent: optimcore zero-initialises them then, as it does on a first step."""
    expected = (["step"] if opt._has_step else []) + rule_keys + list(opt._scalar_names)
    present = [k for k in expected if k in old]
    if not present:
        return
    missing = [k for k in expected if k not in old and k not in opt._optional_state]
    if missing:
        raise RuntimeError(
            f"{where}: state has {', '.join(map(repr, present))} but no {missing[0]!r}: the "
            "state (or the checkpoint it was loaded from) is incomplete; restore the whole "
            "state, or delete this parameter's state to restart it"
        )


def _state_of_dtype(opt, where, key, s, p, dtype, master, was_master, group) -> torch.Tensor:
    """State s of another dtype than the kernel works in: converted where optimcore changed the
    layout on purpose (master weights switched on or off), TorchStep where torch's own step
    steps with it, else a clear error."""
    if p.dtype in MASTER_DTYPES and (
        (master and s.dtype == p.dtype) or (not master and was_master and s.dtype == torch.float32)
    ):
        # master_weights switched on (widen to float32) or off (round to the parameter's
        # dtype), once.
        return like(p, s, dtype)
    name = type(opt).__name__
    if opt._torch_steps_mixed(group) and s.is_floating_point() and p.is_floating_point():
        raise TorchStep(f"state '{key}' is {s.dtype} for a {p.dtype} parameter")
    raise RuntimeError(
        f"{where}: state '{key}' is {s.dtype} but the parameter is {p.dtype} (its dtype changed "
        f"after the state was made, e.g. by model.double()); torch.optim.{name} cannot step "
        "this either. Cast the state to the parameters' dtypes with "
        "optimizer.load_state_dict(optimizer.state_dict())"
    )


def keep_master_state(state_dict: dict) -> dict:
    """Float32 state of 16-bit parameters trained with master_weights=True, by (param id, key):
    torch's load_state_dict casts floating state to the parameter's dtype, and
    ``restore_master_state`` puts these back afterwards."""
    keep = {}
    for saved in state_dict["param_groups"]:
        if not saved.get("master_weights"):
            continue
        for pid in saved["params"]:
            for key, value in state_dict["state"].get(pid, {}).items():
                if key != "step" and isinstance(value, torch.Tensor) and value.dtype == torch.float32:
                    keep[pid, key] = value
    return keep


def restore_master_state(opt, state_dict: dict, keep: dict) -> None:
    if not keep:
        return
    ids = itertools.chain.from_iterable(g["params"] for g in state_dict["param_groups"])
    params = itertools.chain.from_iterable(g["params"] for g in opt.param_groups)
    by_id = dict(zip(ids, params))
    for (pid, key), value in keep.items():
        p = by_id[pid]
        if p.dtype in MASTER_DTYPES:
            opt.state[p][key] = value.to(device=p.device, dtype=torch.float32, copy=True)
