"""master_weights=True: 16-bit parameters train on a float32 master copy with float32 state, so
their trajectory is float32 training's, rounded once per step into the parameter."""

import io

import pytest
import torch

import optimcore
from optimcore.testing import BY_NAME, COMPILED
from conftest import TOL, make_params, set_grads

# Every compiled rule in the registry (optimcore.testing), with its typical options; the
# three first rules keep the options these tests were written with.
RULES = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adam": dict(lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "AdamW": dict(lr=1e-2),
}
RULES.update({r.name: dict(r.kwargs) for r in COMPILED if r.name not in RULES})


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", RULES)
def test_follows_float32_training(name, dtype, simd_level):
    low = make_params(dtype, big=5000)
    # float32 reference from the same (16-bit) starting values and gradients
    ref = [p.detach().float().requires_grad_() for p in low]
    opt = getattr(optimcore, name)(low, master_weights=True, **RULES[name])
    ref_opt = BY_NAME[name].reference(ref, **RULES[name])
    for step in range(5):
        set_grads(low, step)
        for p, r in zip(low, ref):
            r.grad = p.grad.float()
        opt.step()
        ref_opt.step()
    for p, r in zip(low, ref):
        master = opt.state[p]["master_param"]
        assert master.dtype == torch.float32
        torch.testing.assert_close(master, r.detach(), **TOL[torch.float32])
        torch.testing.assert_close(p.detach(), master.to(dtype), rtol=0, atol=0)
        for key, value in opt.state[p].items():
            if key != "step":  # per-tensor scalars in the dtype the rule keeps them in
                expected = (opt._scalar_dtype(key) if key in opt._scalar_names
                            else torch.float32)
                assert value.dtype == expected, key


def test_keeps_small_updates_that_bfloat16_loses():
    p = torch.ones(1000, dtype=torch.bfloat16, requires_grad=True)
    q = torch.ones(1000, dtype=torch.bfloat16, requires_grad=True)
    plain, master = optimcore.SGD([p], lr=1e-4), optimcore.SGD([q], lr=1e-4, master_weights=True)
    for _ in range(100):
        p.grad = torch.ones_like(p)
        q.grad = torch.ones_like(q)
        plain.step()
        master.step()
    assert torch.all(p == 1)  # each 1e-4 step is below half a bfloat16 ulp at 1.0
    torch.testing.assert_close(master.state[q]["master_param"], torch.full((1000,), 0.99),
                               rtol=1e-5, atol=1e-5)
    assert torch.all(q < 1)


@pytest.mark.parametrize("name", RULES)
def test_checkpoint_keeps_float32_state(name):
    p = torch.randn(64, dtype=torch.bfloat16, requires_grad=True)
    opt = getattr(optimcore, name)([p], master_weights=True, **RULES[name])
    for _ in range(2):
        p.grad = torch.randn_like(p)
        opt.step()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    q = p.detach().clone().requires_grad_()
    opt2 = getattr(optimcore, name)([q], master_weights=True, **RULES[name])
    opt2.load_state_dict(torch.load(buf))
    for key, value in opt.state[p].items():
        assert opt2.state[q][key].dtype == value.dtype
        assert torch.equal(opt2.state[q][key], value)


def test_float32_params_ignore_master_weights():
    p = torch.randn(10, requires_grad=True)
    opt = optimcore.Adam([p], master_weights=True)
    p.grad = torch.randn(10)
    opt.step()
    assert set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"}


def test_switching_master_weights_on_widens_existing_state():
    p = torch.randn(10, dtype=torch.bfloat16, requires_grad=True)
    opt = optimcore.Adam([p], lr=1e-2)
    p.grad = torch.randn_like(p)
    opt.step()
    exp_avg = opt.state[p]["exp_avg"].clone()
    assert exp_avg.dtype == torch.bfloat16
    opt.param_groups[0]["master_weights"] = True
    p.grad = torch.randn_like(p)
    opt.step()
    assert opt.state[p]["exp_avg"].dtype == torch.float32
    assert opt.state[p]["master_param"].dtype == torch.float32
    opt.param_groups[0]["master_weights"] = False
    opt.step()
    assert "master_param" not in opt.state[p]


def test_default_param_groups_match_torch():
    p = [torch.zeros(2, requires_grad=True)]
    assert "master_weights" not in optimcore.AdamW(p).param_groups[0]
    assert optimcore.AdamW(p, master_weights=True).param_groups[0]["master_weights"] is True


@pytest.mark.parametrize("master", [False, True])
@pytest.mark.parametrize("name", ["SGD", "AdamW"])
def test_stochastic_rounding_is_unbiased_and_reproducible(name, master):
    """Updates far below a bfloat16 ulp are lost with round-to-nearest; stochastic rounding keeps
    them on average, and torch.manual_seed makes it reproducible."""

    def run(seed):
        torch.manual_seed(seed)
        p = torch.ones(20000, dtype=torch.bfloat16, requires_grad=True)
        kw = dict(lr=1e-3) if name == "SGD" else dict(lr=1e-4, weight_decay=0.0)
        opt = getattr(optimcore, name)([p], stochastic_rounding=True, master_weights=master, **kw)
        for _ in range(50):
            p.grad = torch.ones_like(p)
            opt.step()
        return p.detach()

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    expected = 1 - 50 * (1e-3 if name == "SGD" else 1e-4)  # Adam's steps are ~lr each
    assert abs(a.float().mean().item() - expected) < 2e-4
    assert a.unique().numel() > 1  # rounded up or down per element


def test_stochastic_rounding_refuses_float16():
    p = torch.ones(4, dtype=torch.float16, requires_grad=True)
    opt = optimcore.SGD([p], lr=0.1, stochastic_rounding=True)
    p.grad = torch.ones_like(p)
    with pytest.raises(ValueError, match="stochastic_rounding supports bfloat16"):
        opt.step()
    assert torch.all(p == 1)


@pytest.mark.parametrize("name", RULES)
def test_outside_writes_to_the_parameter_win_over_the_master_copy(name):
    """model.load_state_dict, clamp_ or re-initialisation write the parameter: the master copy
    follows them instead of undoing them on the next step."""
    p = torch.randn(4, 4, dtype=torch.bfloat16, requires_grad=True)
    opt = getattr(optimcore, name)([p], master_weights=True, **RULES[name])
    for _ in range(2):
        p.grad = torch.randn_like(p)
        opt.step()
    with torch.no_grad():
        p.fill_(5.0)
    p.grad = torch.zeros_like(p)
    opt.step()
    expected = 5.0 * (1 - RULES[name]["lr"] * RULES[name].get("weight_decay", 0.0))
    if name != "AdamW":  # zero gradient: SGD/Adam only apply momentum, which is small here
        assert torch.allclose(p.float(), torch.full((4, 4), 5.0), atol=0.3)
    else:
        assert torch.allclose(p.float(), torch.full((4, 4), expected), atol=0.3)
    assert torch.allclose(opt.state[p]["master_param"], p.float(), atol=0.05)


def test_master_copy_refreshed_after_torch_trained_the_checkpoint():
    p = torch.randn(64, dtype=torch.bfloat16, requires_grad=True)
    opt = optimcore.AdamW([p], master_weights=True, lr=1e-2)
    p.grad = torch.randn_like(p)
    opt.step()
    ref = torch.optim.AdamW([p], lr=1e-2)
    ref.load_state_dict(opt.state_dict())
    for _ in range(20):
        p.grad = torch.randn_like(p)
        ref.step()
    trained = p.detach().clone()
    back = optimcore.AdamW([p], master_weights=True, lr=1e-2)
    back.load_state_dict(ref.state_dict())
    p.grad = torch.zeros_like(p)
    back.step()
    assert (p.float() - trained.float()).abs().max() < 0.1  # no jump back to the stale copy


def test_stochastic_rounding_float16_checked_every_step_and_rng_untouched_on_failure():
    p = torch.ones(4, dtype=torch.float16, requires_grad=True)
    opt = optimcore.SGD([p], lr=0.1)
    p.grad = torch.ones_like(p)
    opt.step()
    opt.param_groups[0]["stochastic_rounding"] = True
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="stochastic_rounding supports bfloat16"):
        opt.step()
    after_failure = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after_failure, torch.rand(1))
