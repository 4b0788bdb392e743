"""Every optimizer optimcore exports is in the registry the generic suites read (tests/rules.py),
and derives from torch's class of the same name where torch has one."""

import torch

import optimcore
from optimcore.testing import BY_NAME


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
            p = torch.zeros(2, 2, requires_grad=True)
            assert isinstance(rule.cls([p]), getattr(torch.optim, name))


def test_hyperparameters_are_passed_by_the_kernels_names():
    """A rule's Python class and its compiled description agree: hyperparameter names (the
    binding also refuses missing and unknown ones), state names and their order."""
    from optimcore import _C

    for rule in BY_NAME.values():
        if not rule.compiled or rule.params != "any":
            continue
        p = torch.zeros(2, requires_grad=True)
        opt = rule.cls([p], **rule.kwargs)
        info = _C.rules[rule.cls._rule]
        assert tuple(opt._hyperparameters(opt.param_groups[0])) == info["options"]
        keys = opt._state_keys(opt.param_groups[0])
        assert len(keys) == len(info["state"])
        assert all(k is None or k == name for k, name in zip(keys, info["state"]))


def test_binding_refuses_missing_and_unknown_hyperparameters():
    import pytest
    from optimcore import _C

    with pytest.raises(TypeError, match="missing hyperparameter 'lr'"):
        _C.sgd_step(0, 0, 0, 0, False, False, 0, 1)
    with pytest.raises(TypeError, match="unknown hyperparameter 'beta3'"):
        _C.sgd_step(0, 0, 0, 0, False, False, 0, 1, lr=0.1, momentum=0.0, dampening=0.0,
                    weight_decay=0.0, nesterov=False, maximize=False, beta3=1.0)
