"""Every optimizer optimcore exports is in the registry the generic suites read (tests/rules.py),
and derives from torch's class of the same name where torch has one."""

import torch

import optimcore
from rules import BY_NAME


def test_every_exported_optimizer_is_registered():
    exported = {name for name in optimcore.__all__
                if isinstance(getattr(optimcore, name), type)
                and issubclass(getattr(optimcore, name), torch.optim.Optimizer)}
    assert exported == set(BY_NAME)


def test_rules_derive_from_torchs_classes():
    for name, rule in BY_NAME.items():
        if hasattr(torch.optim, name):
            assert issubclass(rule.cls, getattr(torch.optim, name))
            assert rule.reference is getattr(torch.optim, name)
            p = torch.zeros(2, requires_grad=True)
            assert isinstance(rule.cls([p]), getattr(torch.optim, name))
