"""Optimizer checkpoints shared with C++: an optimizer's ``state_dict`` as a safetensors file.

The C++ API writes and reads the same files (``optimcore::Optimizer::save`` / ``load``,
csrc/lib/checkpoint.cpp), so a run started in C++ resumes in Python and the reverse::

    optimcore.checkpoint.save(optimizer, "opt.safetensors")   # any optimcore or torch.optim optimizer
    optimcore.checkpoint.load(optimizer, "opt.safetensors")   # checks, then load_state_dict

The layout mirrors torch's ``state_dict``: one tensor per state entry, named
``state.<index>.<key>`` (0-d state such as ``step`` has shape ``[]``; C++ writes per-element state
flat, and loading gives it the parameter's shape), and in the header's ``__metadata__`` (string
values, as the format requires): ``format`` = ``"optimcore.optimizer"``, ``optimizer`` (the class
name), ``version``, ``param_groups`` (torch's param groups as JSON, ``"params"`` as indices) and,
when the state has non-tensor values, ``extra_state`` (JSON). The format: an 8-byte
little-endian header length, the JSON header, then the tensors' bytes back to back.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import struct

import torch

__all__ = ["save", "load", "load_state_dict", "FORMAT"]

FORMAT = "optimcore.optimizer"

_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16",
           torch.float16: "F16", torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL",
           torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16", torch.complex64: "C64"}
_FROM_CODE = {code: dtype for dtype, code in _DTYPES.items()}


class CheckpointError(ValueError):
    """A file that is not an optimizer checkpoint, is corrupt, or does not fit the optimizer."""


def _json_value(value, where: str):
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{where}: only 0-d tensors can be stored in param_groups")
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_json_value(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a checkpoint")


def save(optimizer_or_state_dict, path: str | os.PathLike) -> None:
    """Writes an optimizer's ``state_dict`` (or a ``state_dict``) to ``path`` as safetensors.
    The file is written aside and renamed into place, so an interrupted save leaves the old file.
    """
    if isinstance(optimizer_or_state_dict, torch.optim.Optimizer):
        sd = optimizer_or_state_dict.state_dict()
        name = type(optimizer_or_state_dict).__name__
    else:
        sd, name = optimizer_or_state_dict, ""
    groups = [{k: _json_value(v, f"param group {g}: {k!r}") for k, v in group.items()}
              for g, group in enumerate(sd["param_groups"])]
    tensors, extra = [], {}
    for index, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                if value.dtype not in _DTYPES:
                    raise TypeError(f"state {index} {key!r}: dtype {value.dtype} is not supported")
                tensors.append((f"state.{index}.{key}", value.detach().cpu().contiguous()))
            else:
                extra.setdefault(str(index), {})[key] = _json_value(value, f"state {index} {key!r}")
    from . import __version__

    metadata = {"format": FORMAT, "optimizer": name, "version": __version__,
                "param_groups": json.dumps(groups)}
    if extra:
        metadata["extra_state"] = json.dumps(extra)
    header, offset = {"__metadata__": metadata}, 0
    for name_, t in tensors:
        nbytes = t.numel() * t.element_size()
        header[name_] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                         "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, t in tensors:
            if t.numel():
                f.write(ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()))
    os.replace(tmp, path)


def _read(path) -> tuple[dict, list, dict, dict]:
    """(metadata, param_groups, {name: tensor}, extra_state) of a checkpoint file, every part
    checked."""
    where = f"optimizer checkpoint {os.fspath(path)!r}"
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise CheckpointError(f"{where}: shorter than a safetensors header")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise CheckpointError(f"{where}: truncated (header runs past the end)")
    try:
        header = json.loads(data[8:8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{where}: the header is not JSON ({e})") from None
    meta = header.pop("__metadata__", None) if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where}: metadata 'format' is not {FORMAT!r}: not an optimizer "
                              "checkpoint")
    try:
        groups = json.loads(meta["param_groups"])
        extra = json.loads(meta.get("extra_state", "{}"))
    except (KeyError, TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{where}: no valid param_groups in the metadata") from None
    body = memoryview(data)[8 + size:]
    tensors, extents = {}, []
    for name, entry in header.items():
        try:
            dtype = _FROM_CODE[entry["dtype"]]
            shape = [int(n) for n in entry["shape"]]
            begin, end = (int(x) for x in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{where}: tensor {name!r} needs dtype, shape and "
                                  "data_offsets") from None
        numel = math.prod(shape)
        if not (0 <= begin <= end <= len(body)):
            raise CheckpointError(f"{where}: tensor {name!r}: data_offsets outside the file "
                                  "(truncated?)")
        if end - begin != numel * torch.empty((), dtype=dtype).element_size():
            raise CheckpointError(f"{where}: tensor {name!r}: data_offsets do not match its shape")
        extents.append((begin, end))
        raw = bytearray(body[begin:end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype, device="cpu")
        tensors[name] = t.reshape(shape)
    extents.sort()
    if any(b < e for (_, e), (b, _) in zip(extents, extents[1:])):
        raise CheckpointError(f"{where}: tensors overlap in the file")
    return meta, groups, tensors, extra


def _pairs(value):
    return tuple(value) if isinstance(value, list) else value


def load_state_dict(path: str | os.PathLike) -> dict:
    """The ``state_dict`` in a checkpoint file: ``{"state": {index: {key: tensor}},
    "param_groups": [...]}`` (per-element state as saved: flat if C++ wrote it)."""
    return _state_dict(path)[1]


def _state_dict(path) -> tuple[dict, dict]:
    meta, groups, tensors, extra = _read(path)
    where = f"optimizer checkpoint {os.fspath(path)!r}"
    state: dict = {}
    for name, t in tensors.items():
        parts = name.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise CheckpointError(f"{where}: tensor {name!r} is not state.<index>.<key>")
        state.setdefault(int(parts[1]), {})[parts[2]] = t
    for index, values in extra.items():
        state.setdefault(int(index), {}).update(values)
    param_groups = [{k: (v if k == "params" else _pairs(v)) for k, v in g.items()} for g in groups]
    return meta, {"state": state, "param_groups": param_groups}


# 0-d state of torch.optim's and optimcore's rules; every other tensor state has one element per
# parameter element.
_SCALAR_STATE = frozenset({"step", "mu_product", "eta", "mu", "exp_avg2", "sgd_lr", "switch_lr",
                           "switched_at", "weight_norm", "adam_norm", "trust_ratio", "H_diag",
                           "t", "prev_loss"})


def _same_kind(current, saved) -> bool:
    """Whether a saved param_groups value may replace the optimizer's: a flag for a flag, a
    number for a number, a pair for a pair, text or None where the optimizer has text or None."""
    if current is None or saved is None:
        return True
    if isinstance(current, bool) or isinstance(saved, bool):
        return isinstance(current, bool) and isinstance(saved, bool)
    if isinstance(current, (int, float, torch.Tensor)):
        return isinstance(saved, (int, float))
    if isinstance(current, (tuple, list)):
        return isinstance(saved, (tuple, list)) and len(saved) == len(current)
    if isinstance(current, str):
        return isinstance(saved, str)
    return True


def _expected_state(optimizer, group: dict):
    """The state keys one step of `optimizer`'s class gives a parameter under `group`'s options
    (a one-element probe); None when the class cannot be probed (a closure, other arguments)."""
    import inspect

    cls = type(optimizer)
    try:
        names = inspect.signature(cls).parameters
        kwargs = {k: v for k, v in group.items() if k in names and k != "params"}
        with torch.device("cpu"):  # whatever the caller's default device (torch's constructors
            # make some state on it)
            p = torch.nn.Parameter(torch.zeros(1, dtype=group["params"][0].dtype))
            probe = cls([p], **kwargs)
            p.grad = torch.zeros_like(p)
            probe.step()
        return set(probe.state[p])
    except Exception:  # noqa: BLE001 (a probe that cannot run checks nothing)
        return None


def load(optimizer: torch.optim.Optimizer, path: str | os.PathLike) -> None:
    """Loads a checkpoint into ``optimizer`` (optimcore or torch.optim) with its
    ``load_state_dict``, after checking that the file fits: the class (when the file names one),
    the number and sizes of the groups, and each state tensor's element count. Per-element state
    takes its parameter's shape; group keys the file lacks (C++ writes none of torch's
    ``foreach``, ``fused``, ...) keep the optimizer's values. Raises ``CheckpointError`` (a
    ``ValueError``) and changes nothing when the file does not fit."""
    where = f"optimizer checkpoint {os.fspath(path)!r}"
    meta, sd = _state_dict(path)
    saved_name = meta.get("optimizer") or ""
    if saved_name and saved_name != type(optimizer).__name__:
        raise CheckpointError(f"{where}: saved from {saved_name}, not {type(optimizer).__name__}")
    groups = optimizer.param_groups
    if len(sd["param_groups"]) != len(groups):
        raise CheckpointError(f"{where}: loaded state dict has a different number of parameter "
                              f"groups ({len(sd['param_groups'])}, this optimizer has "
                              f"{len(groups)})")
    params, index_of = [], {}
    for g, (saved, group) in enumerate(zip(sd["param_groups"], groups)):
        ids = saved.get("params")
        if not isinstance(ids, list) or len(ids) != len(group["params"]):
            raise CheckpointError(f"{where}: loaded state dict contains a parameter group that "
                                  f"doesn't match the size of optimizer's group (group {g})")
        for i, p in zip(ids, group["params"]):
            index_of[i] = len(params)
            params.append(p)
        for key, value in group.items():
            if key == "params":
                continue
            if key in saved and not _same_kind(value, saved[key]):
                raise CheckpointError(f"{where}: param group {g}: {key!r} is {saved[key]!r}, "
                                      f"which cannot replace {value!r}")
            saved.setdefault(key, value)
    group_of = {i: g for g, saved in enumerate(sd["param_groups"]) for i in saved["params"]}
    expected = {}
    state = {}
    for index, entries in sd["state"].items():
        if index not in index_of:
            raise CheckpointError(f"{where}: state for parameter {index}, which no group has")
        p = params[index_of[index]]
        fixed = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor) and key not in _SCALAR_STATE:
                if value.numel() != p.numel() or (value.dim() == 0 and p.dim() > 0):
                    raise CheckpointError(f"{where}: parameter {index}: {key!r} has shape "
                                          f"{list(value.shape)}, the parameter {list(p.shape)}")
                value = value.reshape(p.shape)
            fixed[key] = value
        # Partial state: against what one step of this class makes under the group's options
        # (optimcore's classes start keys an option switched on later, as on a first step).
        g = group_of[index]
        if g not in expected:
            merged = dict(sd["param_groups"][g], params=groups[g]["params"])
            expected[g] = _expected_state(optimizer, merged)
        if expected[g] is not None and fixed:
            optional = getattr(optimizer, "_optional_state", frozenset())
            missing = sorted(expected[g] - set(fixed) - optional)
            if missing:
                raise CheckpointError(f"{where}: parameter {index} has state but no "
                                      f"{missing[0]!r}: the checkpoint is incomplete")
        state[index] = fixed
    optimizer.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
