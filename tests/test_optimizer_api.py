"""The torch.optim.Optimizer contract, for every optimcore optimizer: groups, state_dict and
checkpoint interchange, closures, hooks, schedulers, constructor validation."""

import copy
import io
import pickle

import pytest
import torch
from torch.optim import lr_scheduler
from torch.optim.optimizer import register_optimizer_step_post_hook

import optimcore
from optimcore.testing import BY_NAME, COMPILED
from conftest import TOL, assert_same_state

# Every compiled rule in the registry (optimcore.testing), with its typical options; the
# three first rules keep the options these tests were written with.
RULES = {
    "SGD": dict(lr=0.05, momentum=0.9, weight_decay=1e-3),
    "Adam": dict(lr=1e-2, weight_decay=1e-3, amsgrad=True),
    "AdamW": dict(lr=1e-2),
}
RULES.update({r.name: dict(r.kwargs) for r in COMPILED if r.name not in RULES})
# The rules torch.optim has: the tests of torch-only options and signatures run on these.
TORCH_RULES = [name for name in RULES if hasattr(torch.optim, name)]


def pair(name):
    return BY_NAME[name].reference, getattr(optimcore, name)


def model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    ).double()


def batch(step):
    g = torch.Generator().manual_seed(step)
    return torch.randn(32, 6, generator=g, dtype=torch.float64), torch.randn(
        32, 3, generator=g, dtype=torch.float64
    )


def train(net, opt, steps, start=0, scheduler=None, closure=False):
    losses = []
    for step in range(start, start + steps):
        x, y = batch(step)

        def compute():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x), y)
            loss.backward()
            return loss

        if closure:
            loss = opt.step(compute)
        else:
            loss = compute()
            opt.step()
        losses.append(loss.item())
        if scheduler is not None:
            if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
                scheduler.step(loss.item())
            else:
                scheduler.step()
    return losses


def trained(name, steps, lib=optimcore):
    """A model and its optimizer after `steps` training steps."""
    net = model()
    opt = getattr(lib, name)(net.parameters(), **RULES[name])
    train(net, opt, steps)
    return net, opt


def assert_same_params(a, b):
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, **TOL[torch.float64])


@pytest.mark.parametrize("name", RULES)
def test_param_groups_and_add_param_group(name):
    ref_cls, cls = pair(name)
    nets, opts = [], []
    for c in (ref_cls, cls):
        net = model()
        kw = RULES[name]
        opt = c([{"params": net[0].parameters(), "lr": kw["lr"] / 2}], **kw)
        train(net, opt, 3)
        opt.add_param_group({"params": net[2].parameters(), "weight_decay": 0.0})
        train(net, opt, 3, start=3)
        nets.append(net)
        opts.append(opt)
    assert_same_params(nets[1], nets[0])
    assert_same_state(opts[1], opts[0])
    assert opts[1].param_groups[1].keys() == opts[0].param_groups[1].keys()


@pytest.mark.parametrize("name", RULES)
def test_named_parameters_and_closure(name):
    ref_cls, cls = pair(name)
    runs = []
    for c in (ref_cls, cls):
        net = model()
        opt = c(net.named_parameters(), **RULES[name])
        losses = train(net, opt, 4, closure=True)
        runs.append((net, opt, losses))
    assert runs[1][2] == pytest.approx(runs[0][2], rel=1e-12)
    assert_same_params(runs[1][0], runs[0][0])
    sd = runs[1][1].state_dict()
    assert sd["param_groups"][0]["param_names"] == runs[0][1].state_dict()["param_groups"][0]["param_names"]


@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("direction", ["torch_to_optimcore", "optimcore_to_torch"])
def test_checkpoint_interchange(name, direction):
    """Train 4 steps with one library, save, load into the other, train 4 more: the same
    trajectory as 8 steps of torch.optim."""
    ref_cls, cls = pair(name)
    first, second = (ref_cls, cls) if direction == "torch_to_optimcore" else (cls, ref_cls)

    # The reference makes the same round trip within torch.optim: its load_state_dict casts
    # floating 0-d state (NAdam's mu_product, ASGD's eta and mu) to the parameters' dtype.
    net_ref = model()
    opt_ref = ref_cls(net_ref.parameters(), **RULES[name])
    train(net_ref, opt_ref, 4)
    reloaded = ref_cls(net_ref.parameters(), **RULES[name])
    reloaded.load_state_dict(opt_ref.state_dict())
    opt_ref = reloaded
    train(net_ref, opt_ref, 4, start=4)

    net = model()
    opt = first(net.parameters(), **RULES[name])
    train(net, opt, 4)
    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), "optim": opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)  # weights_only: optimcore's state is plain tensors and numbers
    net2 = model(seed=1)
    net2.load_state_dict(ckpt["model"])
    opt2 = second(net2.parameters(), **RULES[name])
    opt2.load_state_dict(ckpt["optim"])
    train(net2, opt2, 4, start=4)
    assert_same_params(net2, net_ref)
    assert_same_state(opt2, opt_ref)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_state_layout_matches_torch(name):
    net, opt = trained(name, 1)
    state = opt.state_dict()["state"]
    assert sorted(state) == list(range(4))
    amsgrad = {"max_exp_avg_sq"} if RULES[name].get("amsgrad") else set()
    for entry in state.values():
        assert set(entry) == {"step", "exp_avg", "exp_avg_sq"} | amsgrad
        assert entry["step"].dtype == torch.float32 and entry["step"].dim() == 0
        assert entry["step"].item() == 1.0
        assert entry["exp_avg"].dtype == torch.float64


def test_sgd_state_layout_matches_torch():
    net = model()
    opt = optimcore.SGD(net.parameters(), lr=0.1, momentum=0.9)
    train(net, opt, 1)
    for entry in opt.state_dict()["state"].values():
        assert set(entry) == {"momentum_buffer"}
    opt = optimcore.SGD(net.parameters(), lr=0.1)
    train(net, opt, 1)
    assert opt.state_dict()["state"] == {}


@pytest.mark.parametrize("name", RULES)
def test_mismatched_checkpoint_raises_and_changes_nothing(name):
    ref_cls = BY_NAME[name].reference
    net, opt = trained(name, 2)
    before = copy.deepcopy(opt.state_dict())
    other = ref_cls(torch.nn.Linear(6, 2).double().parameters(), **RULES[name])
    with pytest.raises(ValueError) as ours:
        opt.load_state_dict(other.state_dict())
    ref_opt = ref_cls(model().parameters(), **RULES[name])
    with pytest.raises(ValueError) as theirs:
        ref_opt.load_state_dict(other.state_dict())
    assert str(ours.value) == str(theirs.value)
    after = opt.state_dict()
    assert_same_state_exact(after, before)


def assert_same_state_exact(a, b):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for k, v in a["state"][i].items():
            assert torch.equal(v, b["state"][i][k]), (i, k)


@pytest.mark.parametrize("name", RULES)
def test_hooks(name):
    _, cls = pair(name)
    net = model()
    opt = cls(net.parameters(), **RULES[name])
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.register_state_dict_pre_hook(lambda o: calls.append("sd_pre"))
    opt.register_state_dict_post_hook(lambda o, sd: calls.append("sd_post"))
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load_pre"))
    opt.register_load_state_dict_post_hook(lambda o: calls.append("load_post"))
    handle = register_optimizer_step_post_hook(
        lambda o, a, k: calls.append("global_post")
    )
    try:
        train(net, opt, 1)
    finally:
        handle.remove()
    opt.load_state_dict(opt.state_dict())
    assert calls == ["pre", "post", "global_post", "sd_pre", "sd_post", "load_pre", "load_post"]


@pytest.mark.parametrize("name", RULES)
def test_zero_grad(name):
    net, opt = trained(name, 1)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    opt.step()  # no gradients: a no-op, as in torch
    assert all(e["step"].item() == 1 for e in opt.state_dict()["state"].values() if "step" in e)


@pytest.mark.parametrize("name", RULES)
def test_pickle_and_deepcopy(name):
    net, opt = trained(name, 2)
    clone = copy.deepcopy(opt)
    assert_same_state_exact(clone.state_dict(), opt.state_dict())
    # The copy's cached tables must not point at the original's memory.
    originals = [p.detach().clone() for p in net.parameters()]
    for q in (q for g in clone.param_groups for q in g["params"]):
        q.grad = torch.ones_like(q)
    clone.step()
    assert all(torch.equal(a, b.detach()) for a, b in zip(originals, net.parameters()))
    restored = pickle.loads(pickle.dumps(opt))
    assert restored.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


SCHEDULERS = {
    "StepLR": lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, 4], gamma=0.3),
    "ExponentialLR": lambda o: lr_scheduler.ExponentialLR(o, gamma=0.8),
    "LambdaLR": lambda o: lr_scheduler.LambdaLR(o, lambda e: 1 / (e + 1)),
    "MultiplicativeLR": lambda o: lr_scheduler.MultiplicativeLR(o, lambda e: 0.9),
    "ConstantLR": lambda o: lr_scheduler.ConstantLR(o, factor=0.5, total_iters=3),
    "LinearLR": lambda o: lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=4),
    "PolynomialLR": lambda o: lr_scheduler.PolynomialLR(o, total_iters=5, power=2.0),
    "CosineAnnealingLR": lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=4),
    "CosineAnnealingWarmRestarts": lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3),
    "OneCycleLR": lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=10),
    "CyclicLR": lambda o: lr_scheduler.CyclicLR(o, base_lr=0.001, max_lr=0.05, step_size_up=3),
    "ReduceLROnPlateau": lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.5),
    "SequentialLR": lambda o: lr_scheduler.SequentialLR(
        o,
        [lr_scheduler.ConstantLR(o, factor=0.3, total_iters=2), lr_scheduler.ExponentialLR(o, 0.9)],
        milestones=[2],
    ),
    "ChainedScheduler": lambda o: lr_scheduler.ChainedScheduler(
        [lr_scheduler.ConstantLR(o, factor=0.3, total_iters=2), lr_scheduler.ExponentialLR(o, 0.9)]
    ),
}


@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("sched", SCHEDULERS)
def test_lr_schedulers(name, sched):
    """Every scheduler drives optimcore exactly as it drives torch.optim (OneCycleLR and CyclicLR
    also cycle SGD's momentum and Adam's beta1)."""
    ref_cls, cls = pair(name)
    results = []
    for c in (ref_cls, cls):
        net = model()
        opt = c(net.parameters(), **RULES[name])
        try:
            scheduler = SCHEDULERS[sched](opt)
        except ValueError as e:  # cycling momentum in a rule that has none: torch says so too
            results.append(str(e))
            continue
        losses = train(net, opt, 8, scheduler=scheduler)
        results.append((net, opt, losses))
    if isinstance(results[0], str):
        assert results[1] == results[0]
        return
    (net_ref, opt_ref, losses_ref), (net, opt, losses) = results
    assert losses == pytest.approx(losses_ref, rel=1e-12)
    assert_same_params(net, net_ref)
    for g, g_ref in zip(opt.param_groups, opt_ref.param_groups):
        assert {k: v for k, v in g.items() if k != "params"} == {
            k: v for k, v in g_ref.items() if k != "params"
        }


BAD_ARGS = {
    "SGD": [
        dict(lr=-1.0), dict(momentum=-0.1), dict(weight_decay=-1.0),
        dict(nesterov=True), dict(nesterov=True, momentum=0.9, dampening=0.1),
        dict(lr=torch.tensor([0.1, 0.2])),
    ],
    "Adam": [
        dict(lr=-1.0), dict(eps=-1.0), dict(betas=(1.0, 0.9)), dict(betas=(0.9, -0.1)),
        dict(weight_decay=-0.1), dict(betas=(0.9, torch.tensor(0.9))),
        dict(lr=torch.tensor(0.1), foreach=True), dict(lr=torch.tensor([0.1, 0.2])),
        dict(betas=(torch.tensor([0.9, 0.8]), torch.tensor(0.9))),
        dict(betas=(torch.tensor(0.9), torch.tensor(0.9)), foreach=True),
        dict(fused=True, foreach=True),
    ],
}
BAD_ARGS["AdamW"] = [
    kw for kw in BAD_ARGS["Adam"] if "foreach" not in kw or kw.get("fused")
] + [dict(lr=torch.tensor(0.1), foreach=True)]


@pytest.mark.parametrize(
    "name,kwargs",
    [(n, kw) for n, kws in BAD_ARGS.items() for kw in kws],
    ids=lambda v: v if isinstance(v, str) else str(v),
)
def test_constructor_errors_match_torch(name, kwargs):
    ref_cls, cls = pair(name)
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(Exception) as theirs:
        ref_cls(params, **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        cls(params, **kwargs)
    assert str(ours.value) == str(theirs.value)


def _outcome(fn):
    try:
        return "ok", fn()
    except Exception as e:  # noqa: BLE001 - the outcome itself is compared
        return type(e), str(e)


@pytest.mark.parametrize("name", TORCH_RULES)
def test_differentiable_runs_torchs_step_and_gradients_flow_through_it(name):
    """differentiable=True: torch's own step runs (the compiled kernels are not differentiable)
    and autograd differentiates through it exactly as through torch.optim's."""
    results = []
    for c in pair(name):
        w = torch.arange(1.0, 5.0, dtype=torch.float64, requires_grad=True)
        p = w.clone()  # not a leaf: the steps become part of the graph
        opt = c([p], differentiable=True, **RULES[name])
        p.grad = w * w  # depends on w: d(step)/dw is not trivial
        opt.step()
        (dw,) = torch.autograd.grad(p.sum(), w)
        results.append((p.detach().clone(), dw))
        if c.__module__.startswith("optimcore"):
            assert opt.last_step_paths == ["torch"]
    (pa, ga), (pb, gb) = results
    torch.testing.assert_close(pb, pa, rtol=0, atol=0)
    torch.testing.assert_close(gb, ga, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_capturable_behaves_as_torch(name):
    outcomes = []
    for c in pair(name):
        p = torch.ones(3, requires_grad=True)
        opt = c([p], capturable=True, **RULES[name])
        p.grad = torch.full((3,), 0.5)
        outcomes.append(_outcome(lambda: (opt.step(), p.detach().clone())[1]))
    assert type(outcomes[0][1]) is type(outcomes[1][1])
    if outcomes[0][0] == "ok":
        torch.testing.assert_close(outcomes[1][1], outcomes[0][1])
    else:
        assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("name", TORCH_RULES)
def test_foreach_and_fused_are_accepted(name):
    import inspect

    ref_cls, cls = pair(name)
    has_fused = "fused" in inspect.signature(ref_cls.__init__).parameters
    for kw in (dict(foreach=True), dict(fused=True), dict(foreach=False, fused=False)):
        if "fused" in kw and not has_fused:
            kw = {k: v for k, v in kw.items() if k != "fused"}
        runs = []
        for c in (ref_cls, cls):
            net = model()
            opt = c(net.parameters(), **RULES[name], **kw)
            assert opt.param_groups[0]["foreach"] == kw.get("foreach")
            if c is ref_cls:  # the compiled path follows torch's default (for-loop) arithmetic
                opt = c(net.parameters(), **RULES[name])
            train(net, opt, 3)
            runs.append(net)
        for pa, pb in zip(runs[0].parameters(), runs[1].parameters()):
            torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", TORCH_RULES)
def test_grad_scaler_and_swalr(name):
    """AMP's GradScaler (unscale, inf checks, skipped steps) and swa_utils.SWALR drive optimcore
    exactly as they drive torch.optim."""
    from torch.optim.swa_utils import SWALR

    results = []
    for lib in (torch.optim, optimcore):
        net = model().float()
        opt = getattr(lib, name)(net.parameters(), **RULES[name])
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
        swa = SWALR(opt, swa_lr=0.005, anneal_epochs=3)
        for step in range(6):
            x, y = batch(step)
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x.float()), y.float())
            if step == 2:
                loss = loss * float("inf")  # an overflow step: the scaler must skip it
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            swa.step()
        results.append(net)
    for a, b in zip(results[0].parameters(), results[1].parameters()):
        torch.testing.assert_close(b, a, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", TORCH_RULES)
def test_constructor_signature_matches_torch(name):
    """Same parameters, order, kinds and defaults as torch.optim; optimcore's own options come
    last, keyword-only, off by default."""
    import inspect

    ref_cls, cls = pair(name)
    ref = list(inspect.signature(ref_cls.__init__).parameters.values())
    ours = list(inspect.signature(cls.__init__).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours[: len(ref)]] == [
        (p.name, p.kind, p.default) for p in ref
    ]
    extras = ours[len(ref):]
    assert [p.name for p in extras] == ["master_weights", "stochastic_rounding"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is False for p in extras)


def test_a_mixin_constructor_is_kept():
    """A subclass whose constructor comes from a mixin keeps it (it was replaced by the rule's
    derived constructor); the mixin reaches the rule's constructor through super()."""

    class Counting:
        def __init__(self, *args, **kwargs):
            self.made = True
            super().__init__(*args, **kwargs)

    class CountingAdam(Counting, optimcore.Adam):
        pass

    p = torch.randn(3, requires_grad=True)
    opt = CountingAdam([p], lr=0.5, master_weights=False)
    assert opt.made and opt.param_groups[0]["lr"] == 0.5
    p.grad = torch.ones(3)
    opt.step()
    assert opt.last_step_paths == ["core"]
