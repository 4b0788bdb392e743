"""Bad input gets a clear error naming the group and parameter, and a step that raises changes
nothing: every parameter and every state tensor is exactly as it was."""

import copy
import re

import pytest
import torch

import optimcore
from optimcore.testing import BY_NAME, COMPILED

# Every compiled rule in the registry (optimcore.testing), with its typical options; the
# three first rules keep the options these tests were written with.
RULES = {
    "SGD": dict(lr=0.1, momentum=0.9),
    "Adam": dict(lr=0.1, amsgrad=True),
    "AdamW": dict(lr=0.1),
}
RULES.update({r.name: dict(r.kwargs) for r in COMPILED if r.name not in RULES})


def snapshot(opt):
    params = [p.detach().clone() for g in opt.param_groups for p in g["params"]]
    state = copy.deepcopy(opt.state_dict())
    return params, state


def assert_unchanged(opt, before):
    params, state = before
    now = [p.detach() for g in opt.param_groups for p in g["params"]]
    for a, b in zip(now, params):
        assert a.dtype == b.dtype and a.device == b.device
        if a.device.type == "cpu":
            assert torch.equal(a, b)
    after = opt.state_dict()
    assert after["state"].keys() == state["state"].keys()
    for i, entry in state["state"].items():
        assert after["state"][i].keys() == entry.keys()
        for k, v in entry.items():
            assert torch.equal(after["state"][i][k], v), (i, k)


def two_groups(cls, kwargs, bad, give_grad):
    """Group 0: two good parameters that already have state; group 1: a good one and `bad`,
    whose gradient `give_grad(bad)` sets after the first step."""
    good = [torch.randn(5, requires_grad=True), torch.randn(3, 2, requires_grad=True)]
    other = torch.randn(4, requires_grad=True)
    opt = cls([{"params": good}, {"params": [other, bad]}], **kwargs)
    for p in good + [other]:
        p.grad = torch.randn_like(p)
    opt.step()  # creates state, so the failed step below has state to preserve
    give_grad(bad)
    for p in good + [other]:
        p.grad = torch.randn_like(p)
    return opt


def check_refused(cls, kwargs, bad, give_grad, match):
    opt = two_groups(cls, kwargs, bad, give_grad)
    before = snapshot(opt)
    with pytest.raises(RuntimeError, match=match) as err:
        opt.step()
    assert "param group 1, parameter 1" in str(err.value)
    assert_unchanged(opt, before)
    return err


@pytest.mark.parametrize("name", RULES)
def test_parameter_not_on_cpu_runs_torchs_step(name):
    """A group with a tensor off the CPU is not refused: torch's own step of the rule runs it,
    and the other groups stay on the compiled core."""
    bad = torch.empty(3, device="meta", requires_grad=True)

    def give_grad(p):
        p.grad = torch.empty(3, device="meta")

    ref = two_groups(BY_NAME[name].reference, RULES[name],
                     torch.empty(3, device="meta", requires_grad=True), give_grad)
    try:
        ref.step()
    except RuntimeError as e:  # torch's own step cannot take meta tensors (ASGD's .item())
        opt = two_groups(getattr(optimcore, name), RULES[name], bad, give_grad)
        with pytest.raises(type(e), match=re.escape(str(e))):
            opt.step()
        return
    opt = two_groups(getattr(optimcore, name), RULES[name], bad, give_grad)
    opt.step()
    assert opt.last_step_paths == ["core", "torch"]
    assert "meta" in opt.last_fallback_reasons[1]
    per_element = [v for v in opt.state[bad].values() if v.shape == bad.shape]
    assert per_element and all(v.device.type == "meta" for v in per_element)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_sparse_gradient_where_unsupported(name):
    bad = torch.randn(4, 2, requires_grad=True)

    def give_grad(p):
        p.grad = torch.sparse_coo_tensor([[0, 2]], torch.ones(2, 2), (4, 2), check_invariants=True)

    check_refused(getattr(optimcore, name), RULES[name], bad, give_grad, "sparse.*SparseAdam")


@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("dtype", [torch.int32, torch.float8_e4m3fn])
def test_unsupported_dtype(name, dtype):
    bad = torch.zeros(3, dtype=dtype)

    def give_grad(p):
        p.grad = torch.zeros(3, dtype=dtype)

    check_refused(getattr(optimcore, name), RULES[name], bad, give_grad, "dtype.*not supported")


@pytest.mark.parametrize("name", RULES)
def test_gradient_shape_mismatch(name):
    bad = torch.randn(6, requires_grad=True)

    def give_grad(p):
        p.grad = torch.zeros(6)
        p.grad.data = torch.zeros(2, 3)  # .data bypasses autograd's own check

    match = r"gradient .*\(2, 3\).* does not match"
    check_refused(getattr(optimcore, name), RULES[name], bad, give_grad, match)


@pytest.mark.parametrize("name", RULES)
def test_bad_hyperparameter_in_a_later_group(name):
    """A hyperparameter that cannot be used (here a 2-element lr set after construction) raises
    before group 0 is touched."""
    opt = two_groups(getattr(optimcore, name), RULES[name], torch.randn(3, requires_grad=True),
                     lambda p: setattr(p, "grad", torch.randn(3)))
    if "lr" not in opt._hyperparameters(opt.param_groups[1]):
        pytest.skip("the rule's step does not read lr (Rprop: only its first state does)")
    opt.param_groups[1]["lr"] = torch.tensor([0.1, 0.2])
    before = snapshot(opt)
    with pytest.raises(ValueError, match="param group 1: invalid hyperparameter"):
        opt.step()
    assert_unchanged(opt, before)


@pytest.mark.parametrize("name", RULES)
def test_overlapping_parameter(name):
    bad = torch.zeros(1).expand(4).detach().requires_grad_()

    def give_grad(p):
        p.grad = torch.ones(4)

    check_refused(getattr(optimcore, name), RULES[name], bad, give_grad, "share memory")


def test_sparse_gradient_with_weight_decay():
    bad = torch.randn(4, 2, requires_grad=True)

    def give_grad(p):
        p.grad = torch.sparse_coo_tensor([[0, 2]], torch.ones(2, 2), (4, 2), check_invariants=True)

    kwargs = dict(lr=0.1, momentum=0.9, weight_decay=0.1)
    check_refused(optimcore.SGD, kwargs, bad, give_grad, "weight_decay is not supported")


@pytest.mark.parametrize("name", RULES)
def test_corrupt_state_tensor(name):
    cls = getattr(optimcore, name)
    p = torch.randn(4, requires_grad=True)
    opt = cls([p], **RULES[name])
    p.grad = torch.randn(4)
    opt.step()
    key = next(k for k, v in opt.state[p].items() if v.shape == p.shape)
    opt.state[p][key] = torch.zeros(5)
    p.grad = torch.randn(4)
    before = [p.detach().clone()]
    with pytest.raises(RuntimeError, match=f"param group 0, parameter 0: state '{key}'"):
        opt.step()
    assert torch.equal(p.detach(), before[0])


@pytest.mark.parametrize("name", RULES)
def test_params_without_grad_are_skipped(name):
    cls = getattr(optimcore, name)
    a, b = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    opt = cls([a, b], **RULES[name])
    a.grad = torch.randn(3)
    b_before = b.detach().clone()
    state_before = {k: v.clone() for k, v in opt.state.get(b, {}).items()}
    opt.step()
    assert torch.equal(b.detach(), b_before)
    # as torch: no state is made for b (Adagrad's constructor made it already: left untouched)
    assert {k: v for k, v in opt.state.get(b, {}).items()}.keys() == state_before.keys()
    for k, v in state_before.items():
        assert torch.equal(opt.state[b][k], v)
