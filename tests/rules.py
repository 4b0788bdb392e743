"""The registry of optimcore's rules, read by the generic tests (like torch's ``optim_db``).

One entry per optimizer class optimcore exports: its reference (torch's class), a typical option
set, and what the generic step-safety tests need to know about it. test_registry.py fails when
an exported optimizer is missing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

import optimcore


@dataclass(frozen=True)
class Rule:
    name: str
    cls: type
    reference: type  # the implementation results are compared with
    kwargs: dict  # a typical option set, exercising state
    # Hyperparameter edits in param_groups that a step must refuse before any write:
    # (key, index into a tuple value or None, value, words the error names).
    bad_edits: list = field(default_factory=list)
    # State keys a checkpoint must have together (dropping one of them is a truncation).
    required_state: tuple = ()


RULES = [
    Rule(
        "SGD", optimcore.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=1e-2),
        bad_edits=[("lr", None, -0.1, "lr"), ("momentum", None, -0.5, "momentum"),
                   ("lr", None, "fast", "lr"), ("weight_decay", None, -1.0, "weight_decay")],
    ),
    Rule(
        "Adam", optimcore.Adam, torch.optim.Adam, dict(lr=0.1, weight_decay=1e-2, amsgrad=True),
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("betas", 1, 1.0, "betas[1]"),
                   ("lr", None, -1e-3, "lr"), ("eps", None, -1e-8, "eps"),
                   ("lr", None, None, "lr")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
    ),
    Rule(
        "AdamW", optimcore.AdamW, torch.optim.AdamW, dict(lr=0.1, weight_decay=0.1),
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("betas", 1, 1.5, "betas[1]"),
                   ("eps", None, -1.0, "eps")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
    ),
]

BY_NAME = {rule.name: rule for rule in RULES}
