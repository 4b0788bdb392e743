"""Step safety, for every rule in the registry: shared and duplicate memory, autograd version
counters, hyperparameters edited between steps, incomplete checkpoints, dtype changes, state
layout, memory the tables keep, changing sets of gradients, tensor hyperparameters, and steps
torch takes with unusual gradients. Each step either equals torch.optim's or raises before any
write (issue 10)."""

from __future__ import annotations

import copy
import gc
import warnings

import pytest
import torch

import optimcore
from optimcore.testing import COMPILED as RULES

RULE_IDS = [r.name for r in RULES]
DUPLICATE_WARNING = "optimizer contains a parameter group with duplicate parameters"


def snapshot(opt):
    params = [p.detach().clone() for g in opt.param_groups for p in g["params"]]
    return params, copy.deepcopy(opt.state_dict())


def assert_unchanged(opt, before):
    params, state = before
    now = [p.detach() for g in opt.param_groups for p in g["params"]]
    for a, b in zip(now, params):
        assert a.dtype == b.dtype and torch.equal(a, b)
    after = opt.state_dict()
    assert after["state"].keys() == state["state"].keys()
    for i, entry in state["state"].items():
        assert after["state"][i].keys() == entry.keys()
        for k, v in entry.items():
            assert after["state"][i][k].dtype == v.dtype and torch.equal(after["state"][i][k], v)


def both(rule, make, steps=3, kwargs=None, grads=None, expect_warning=None):
    """Run torch's rule and optimcore's on identical fresh inputs from `make()` (a list of
    parameters, or of param groups); return both parameter lists and optimizers."""
    out = []
    for cls in (rule.reference, rule.cls):
        torch.manual_seed(0)
        groups = make()
        params = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
        with warnings.catch_warnings():
            if expect_warning:
                warnings.filterwarnings("ignore", message=expect_warning)
            opt = cls(groups, **(kwargs if kwargs is not None else rule.kwargs))
        for k in range(steps):
            gen = torch.Generator().manual_seed(k)
            for p in params:
                p.grad = (grads(p, k) if grads else
                          torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype))
            opt.step()
        out.append((params, opt))
    return out


def assert_close_runs(runs, rtol=1e-12, atol=1e-14):
    (ref, ref_opt), (ours, opt) = runs
    for i, (a, b) in enumerate(zip(ours, ref)):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=rtol, atol=atol,
                                   msg=lambda m: f"param {i}: {m}")
    a, b = opt.state_dict(), ref_opt.state_dict()
    assert a["state"].keys() == b["state"].keys()
    for idx in b["state"]:
        assert a["state"][idx].keys() == b["state"][idx].keys()
        for key, vb in b["state"][idx].items():
            va = a["state"][idx][key]
            assert va.dtype == vb.dtype, (idx, key)
            torch.testing.assert_close(va, vb, rtol=rtol, atol=atol)


# 1. The same parameter twice in one group -------------------------------------------------
@pytest.mark.parametrize("numel", [10, 300_000])
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_duplicate_parameter_is_updated_once_per_occurrence_as_torch(rule, numel):
    def make():
        p = torch.randn(numel, dtype=torch.float64, requires_grad=True)
        q = torch.randn(7, dtype=torch.float64, requires_grad=True)
        return [p, q, p]

    runs = both(rule, make, expect_warning=DUPLICATE_WARNING)
    assert_close_runs(runs)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_tied_weight_in_decay_and_no_decay_groups(rule):
    """Groups built by walking named_modules() over a model with a tied embedding: the tied
    weight lands in a group twice."""
    def make():
        emb = torch.nn.Embedding(50, 8).double()
        head = torch.nn.Linear(8, 50).double()
        head.weight = emb.weight
        modules = [emb, head]
        decay = [m.weight for m in modules]
        no_decay = [head.bias]
        return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]

    assert_close_runs(both(rule, make, expect_warning=DUPLICATE_WARNING))


# 2. Parameters that share memory ----------------------------------------------------------
def test_whole_tensor_and_gapped_view_sgd_example():
    flat = torch.arange(8.0)
    a = torch.nn.Parameter(flat.view(4, 2))
    b = torch.nn.Parameter(flat.view(4, 2)[:, :1])
    opt = optimcore.SGD([a, b], lr=1.0)
    a.grad, b.grad = torch.ones(4, 2), torch.ones(4, 1)
    opt.step()
    assert flat.tolist() == [-2, 0, 0, 2, 2, 4, 4, 6]
    assert opt.last_step_paths == ["core"]


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_overlapping_views_follow_torchs_sequential_result(rule):
    def make():
        flat = torch.randn(40, dtype=torch.float64)
        return [torch.nn.Parameter(flat[:24].view(4, 6)),
                torch.nn.Parameter(flat[10:40:3]),
                torch.nn.Parameter(flat.view(8, 5).t()[1:3]),
                torch.nn.Parameter(torch.randn(5, dtype=torch.float64))]

    assert_close_runs(both(rule, make))


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_large_overlap_is_deterministic_with_threads(rule):
    """2M elements, overlapping halves: without ordering the rows, two threads race."""
    n = 2_000_000
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        def make():
            flat = torch.randn(n, dtype=torch.float64)
            return [torch.nn.Parameter(flat[: n * 3 // 4]), torch.nn.Parameter(flat[n // 4:])]

        assert_close_runs(both(rule, make, steps=2))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_state_sharing_memory_with_its_parameter_is_refused(rule):
    p = torch.randn(6, requires_grad=True)
    opt = rule.cls([p], **rule.kwargs)
    p.grad = torch.randn(6)
    opt.step()
    key = next(k for k, v in opt.state[p].items() if v.shape == p.shape)
    opt.state[p][key] = p.detach()  # a state tensor that is the parameter
    p.grad = torch.randn(6)
    before = snapshot(opt)
    with pytest.raises(RuntimeError, match=f"param group 0, parameter 0: .*'{key}'.* share "
                                           "memory|the parameter and state .* share memory"):
        opt.step()
    assert_unchanged(opt, before)


# 3. Autograd version counters -------------------------------------------------------------
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_step_bumps_version_counters(rule):
    for cls in (rule.reference, rule.cls):
        p = torch.randn(5, requires_grad=True)
        loss = (p * p).sum()
        opt = cls([p], **rule.kwargs)
        loss.backward(retain_graph=True)
        version = p._version
        opt.step()
        assert p._version > version
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            loss.backward()
        state_versions = {k: s._version for k, s in opt.state[p].items()}
        before = {k: s.clone() for k, s in opt.state[p].items()}
        opt.step()  # state autograd could have saved looks written too (if the step wrote it:
        # SWATS's torch-ops step leaves its SGD momentum alone in the Adam phase)
        assert all(opt.state[p][k]._version > v or torch.equal(opt.state[p][k], before[k])
                   for k, v in state_versions.items())


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_state_saved_by_autograd_looks_written(rule):
    """A graph that saved a state tensor (or a view or detached alias of it) fails in backward
    after a step that wrote it, as with torch.optim, whichever tensor of a packed state it is."""
    for cls in (rule.reference, rule.cls):
        p = torch.randn(6, requires_grad=True)
        opt = cls([p], **rule.kwargs)
        p.grad = torch.randn(6)
        opt.step()
        for key, s in list(opt.state[p].items()):
            if not (isinstance(s, torch.Tensor) and s.is_floating_point()):
                continue
            for alias in (s, s.detach(), s.view(s.shape)):
                q = torch.ones(s.shape, requires_grad=True)
                loss = (q * alias).sum()  # mul saves alias for q's gradient
                before = s.clone()
                p.grad = torch.randn(6)
                opt.step()
                if torch.equal(opt.state[p][key], before):
                    continue  # this step did not write it (SWATS's SGD momentum in Adam phase)
                with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                    loss.backward()


def _two_steps_in_child(model, opt):
    for _ in range(2):
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        opt.step()


@pytest.mark.parametrize("name", ["Adam", "Adagrad"])
def test_state_shared_with_a_spawned_process_is_stepped_in_place(name):
    """Hogwild-style training: a spawned process steps the optimizer it was given; its writes
    reach the parent's (shared-memory) state, as with torch.optim. Unpickling and torch's
    constructor (Adagrad's state) leave the layout they are given alone."""
    import torch.multiprocessing as mp

    results = []
    for cls in (getattr(torch.optim, name), getattr(optimcore, name)):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        model.share_memory()
        opt = cls(model.parameters(), lr=0.1)
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        opt.step()
        process = mp.get_context("spawn").Process(target=_two_steps_in_child, args=(model, opt))
        process.start()
        process.join(timeout=120)
        assert process.exitcode == 0
        results.append((model.weight.detach().clone(),
                        {k: v.clone() for k, v in opt.state[model.weight].items()}))
    (w_torch, s_torch), (w_core, s_core) = results
    torch.testing.assert_close(w_core, w_torch)
    for key, value in s_torch.items():
        torch.testing.assert_close(s_core[key], value)


# 4. Hyperparameters edited after construction ---------------------------------------------
@pytest.mark.parametrize(
    "rule,edit", [(r, e) for r in RULES for e in r.bad_edits],
    ids=[f"{r.name}-{e[3]}={e[2]!r}" for r in RULES for e in r.bad_edits])
def test_bad_hyperparameter_edit_is_refused_before_any_write(rule, edit):
    key, index, value, words = edit
    good, later = torch.randn(4, requires_grad=True), torch.randn(3, requires_grad=True)
    opt = rule.cls([{"params": [good]}, {"params": [later]}], **rule.kwargs)
    for p in (good, later):
        p.grad = torch.randn_like(p)
    opt.step()
    group = opt.param_groups[1]
    if index is None:
        group[key] = value
    else:
        group[key] = tuple(value if i == index else v for i, v in enumerate(group[key]))
    before = snapshot(opt)
    with pytest.raises(ValueError, match=rf"param group 1: invalid hyperparameter: "
                                         rf"{words.replace('[', '.').replace(']', '.')}"):
        opt.step()
    assert_unchanged(opt, before)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_values_torch_accepts_keep_working(rule):
    """Edits inside torch's accepted ranges (lr = 0, zero weight decay) step as torch."""
    def make():
        return [torch.randn(5, dtype=torch.float64, requires_grad=True)]

    runs = both(rule, make, steps=1)
    for _, opt in runs:
        opt.param_groups[0]["lr"] = 0.0
        opt.param_groups[0]["weight_decay"] = 0.0
        for p in opt.param_groups[0]["params"]:
            p.grad = torch.ones_like(p)
        opt.step()
    assert_close_runs(runs)


# 5. Truncated checkpoints -----------------------------------------------------------------
@pytest.mark.parametrize("rule", [r for r in RULES if r.required_state], ids=lambda r: r.name)
def test_truncated_checkpoint_is_refused(rule):
    ref_p = torch.randn(5, requires_grad=True)
    ref = rule.reference([ref_p], **rule.kwargs)
    ref_p.grad = torch.randn(5)
    ref.step()
    for missing in rule.required_state:
        sd = copy.deepcopy(ref.state_dict())
        del sd["state"][0][missing]
        p = ref_p.detach().clone().requires_grad_()
        opt = rule.cls([p], **rule.kwargs)
        with pytest.raises(RuntimeError, match=f"parameter 0: state has .* but no '{missing}'"):
            opt.load_state_dict(sd)
        # The same state made by hand (or by an older load) is refused at the step.
        opt.state[p] = {k: v.clone() for k, v in ref.state[ref_p].items() if k != missing}
        p.grad = torch.randn(5)
        before = snapshot(opt)
        with pytest.raises(RuntimeError, match=f"parameter 0: state has .* but no '{missing}'"):
            opt.step()
        assert_unchanged(opt, before)


def test_amsgrad_switched_on_mid_training_zero_initialises():
    p = torch.randn(5, requires_grad=True)
    opt = optimcore.Adam([p], lr=0.1)
    p.grad = torch.randn(5)
    opt.step()
    opt.param_groups[0]["amsgrad"] = True
    opt.step()
    assert "max_exp_avg_sq" in opt.state[p]


# 6. Changing a model's dtype mid-training -------------------------------------------------
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
@pytest.mark.parametrize("to", [torch.float64, torch.float16, torch.bfloat16])
def test_parameter_dtype_changed_mid_training(rule, to):
    """Where torch's step continues (SGD: momentum buffer kept float32), the result is torch's;
    where it raises (Adam: lerp of mismatched dtypes), optimcore raises before any write and
    says how to proceed, every time."""
    outcomes = []
    for cls in (rule.reference, rule.cls):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        opt = cls(model.parameters(), **rule.kwargs)
        model(torch.randn(2, 4)).sum().backward()
        opt.step()
        model.to(to)
        opt.zero_grad()
        model(torch.randn(2, 4, dtype=to)).sum().backward()
        before = snapshot(opt)
        try:
            opt.step()
            outcomes.append(("ok", [p.detach().clone() for p in model.parameters()],
                             opt.state_dict()))
        except RuntimeError as e:
            outcomes.append(("raised", str(e), opt, before))
    (kind_ref, *ref), (kind, *ours) = outcomes
    assert kind == kind_ref
    if kind == "ok":  # the first step ran in float32: a few ulps apart, then torch's step
        tol = dict(rtol=1e-5, atol=1e-6)
        for a, b in zip(ours[0], ref[0]):
            assert a.dtype == b.dtype
            torch.testing.assert_close(a, b, **tol)
        for idx, entry in ref[1]["state"].items():
            for key, v in entry.items():
                assert ours[1]["state"][idx][key].dtype == v.dtype
                torch.testing.assert_close(ours[1]["state"][idx][key], v, **tol)
    else:
        message, opt, before = ours
        assert "load_state_dict(optimizer.state_dict())" in message
        assert_unchanged(opt, before)
        with pytest.raises(RuntimeError, match="load_state_dict"):  # the same answer again
            opt.step()
        opt.load_state_dict(opt.state_dict())  # the advice works
        opt.step()


# 7. State layout ------------------------------------------------------------------------
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_default_dtype_float64_state_layout_is_torchs(rule):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        runs = both(rule, lambda: [torch.randn(6, requires_grad=True)])
    finally:
        torch.set_default_dtype(previous)
    assert_close_runs(runs)


@pytest.mark.parametrize("rule", [r for r in RULES if "step" in r.required_state],
                         ids=lambda r: r.name)
@pytest.mark.parametrize("step_dtype", [torch.float64, torch.int64])
def test_checkpoint_step_dtype_is_kept(rule, step_dtype):
    def make():
        return [torch.randn(6, dtype=torch.float64, requires_grad=True)]

    runs = both(rule, make, steps=1)
    for _, opt in runs:
        sd = opt.state_dict()
        sd["state"][0]["step"] = sd["state"][0]["step"].to(step_dtype)
        opt.load_state_dict(sd)
        for p in opt.param_groups[0]["params"]:
            p.grad = torch.ones_like(p)
        opt.step()
        opt.step()
    assert runs[1][1].state_dict()["state"][0]["step"].dtype == step_dtype
    assert_close_runs(runs)


# 8. Memory held after p.data = ... ----------------------------------------------------------
def _storage_refs(t: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
@pytest.mark.parametrize("layout", ["contiguous", "gapped"])
def test_replaced_storage_is_not_kept_alive(rule, layout):
    base = torch.randn(64, 32)
    p = torch.nn.Parameter(base if layout == "contiguous" else base[:, ::2])
    del base
    opt = rule.cls([p], **rule.kwargs)
    p.grad = torch.randn_like(p)
    opt.step()
    old = p.detach()  # our own handle on the old storage
    p.data = p.data.half()
    gc.collect()
    assert _storage_refs(old) == _storage_refs(old.clone())  # nobody else holds it


# 9. A changing set of gradients keeps the table --------------------------------------------
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_changing_gradient_subset_keeps_the_table_and_matches_torch(rule):
    n = 30

    def make():
        return [torch.randn(8, 8, dtype=torch.float64, requires_grad=True) for _ in range(n)]

    tables = []
    runs = []
    for cls in (rule.reference, rule.cls):
        torch.manual_seed(0)
        params = make()
        opt = cls(params, **rule.kwargs)
        for k in range(8):
            gen = torch.Generator().manual_seed(k)
            for i, p in enumerate(params):
                # every parameter has a gradient on the first step; then a rotating 20% none
                p.grad = None if k and (i + k) % 5 == 0 else torch.randn(
                    8, 8, generator=gen, dtype=torch.float64)
            opt.step()
            if cls is rule.cls:
                tables.append(opt._tables[0])
        runs.append((params, opt))
    assert all(t is tables[0] for t in tables), "the table was rebuilt for a changing subset"
    assert_close_runs(runs)


# 10. Tensor hyperparameters of another dtype ------------------------------------------------
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_float32_tensor_lr_on_float64_parameters_is_torchs(rule):
    kwargs = dict(rule.kwargs, lr=torch.tensor(0.01))
    if "Adam" in rule.name:
        kwargs["betas"] = (torch.tensor(0.9), torch.tensor(0.99))

    def make():
        return [torch.randn(50, dtype=torch.float64, requires_grad=True)]

    runs = both(rule, make, steps=10, kwargs=kwargs)
    assert_close_runs(runs, rtol=1e-15, atol=0)


# 11. Steps torch takes with unusual gradients ------------------------------------------------
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_gradient_of_another_dtype(rule):
    """torch.optim.SGD steps with a float64 gradient on a float32 parameter, Adam raises:
    optimcore gives torch's result, or raises before any write."""
    outcomes = []
    for cls in (rule.reference, rule.cls):
        p = torch.ones(4, requires_grad=True)
        p.grad_dtype = None  # allow a gradient of another dtype
        opt = cls([p], **rule.kwargs)
        p.grad = torch.full((4,), 0.25, dtype=torch.float64)
        try:
            opt.step()
            outcomes.append(("ok", p.detach().clone()))
        except RuntimeError:
            outcomes.append(("raised", opt))
    assert outcomes[0][0] == outcomes[1][0]
    if outcomes[0][0] == "ok":
        torch.testing.assert_close(outcomes[1][1], outcomes[0][1], rtol=0, atol=0)
    else:
        assert outcomes[1][1].state == {}  # nothing was written, not even a first state


@pytest.mark.parametrize("stateless", [False, True])
@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_reshaped_parameter_with_non_contiguous_gradient(rule, stateless):
    """p.data = p.data.view(4, 9): torch steps where the rule keeps no state (plain SGD) and
    raises on state of the old shape; optimcore does the same, before any write."""
    if stateless and rule.name != "SGD":
        pytest.skip("every other rule keeps state")
    kwargs = dict(lr=0.1) if stateless else rule.kwargs

    def make():
        return [torch.randn(36, dtype=torch.float64, requires_grad=True)]

    runs = both(rule, make, steps=1, kwargs=kwargs)
    outcomes = []
    for _, opt in runs:
        p = opt.param_groups[0]["params"][0]
        p.data = p.data.view(4, 9)
        gen = torch.Generator().manual_seed(3)
        p.grad = torch.randn(9, 4, dtype=torch.float64, generator=gen).t()
        before = snapshot(opt)
        try:
            opt.step()
            outcomes.append("ok")
        except RuntimeError:
            outcomes.append("raised")
            if opt is runs[1][1]:
                assert_unchanged(opt, before)
    assert outcomes[0] == outcomes[1]
    if outcomes[0] == "ok":
        assert_close_runs(runs)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_gradient_aliasing_its_parameter(rule):
    def make():
        return [torch.randn(10, dtype=torch.float64, requires_grad=True)]

    runs = both(rule, make, steps=3, grads=lambda p, k: p.detach())
    assert_close_runs(runs, rtol=0, atol=0)
    assert runs[1][1].last_step_paths == ["torch"]


# Randomized: groups from random views of shared storages ------------------------------------
def _random_params(seed: int):
    """2-6 parameters over 1-2 float64 storages: whole, sliced, gapped, transposed, 0-d, empty,
    expanded views, and duplicates of one Parameter. Deterministic in `seed`."""
    gen = torch.Generator().manual_seed(seed)

    def rint(lo, hi):
        return int(torch.randint(lo, hi, (), generator=gen))

    storages = [torch.randn(48, dtype=torch.float64, generator=gen) for _ in range(rint(1, 3))]
    params = []
    for _ in range(rint(2, 7)):
        if params and rint(0, 6) == 0:
            params.append(params[rint(0, len(params))])  # the same Parameter again
            continue
        base = storages[rint(0, len(storages))]
        kind = rint(0, 7)
        start = rint(0, 24)
        if kind == 0:
            view = base
        elif kind == 1:
            view = base[start:start + rint(1, 24)]
        elif kind == 2:
            view = base[start::rint(2, 4)]
        elif kind == 3:
            view = base[start:start + 24].view(4, 6).t()
        elif kind == 4:
            view = base[start]
        elif kind == 5:
            view = base[start:start]
        else:
            view = base[start:start + 1].expand(3)
        params.append(torch.nn.Parameter(view))
    return params


def _grads(params, step):
    gen = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(p.shape, dtype=p.dtype, generator=gen) for p in params]


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_random_shared_views_equal_torch_or_raise_before_writing(rule):
    for seed in range(120):
        outcomes = []
        for cls in (rule.reference, rule.cls):
            params = _random_params(seed)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=DUPLICATE_WARNING)
                opt = cls(params, **rule.kwargs)
            result = "ok"
            for step in range(2):
                for p, g in zip(params, _grads(params, step)):
                    p.grad = g
                before = snapshot(opt)
                try:
                    opt.step()
                except RuntimeError:
                    result = "raised"
                    if cls is rule.cls:
                        assert_unchanged(opt, before)
                    break
            outcomes.append((result, params, opt))
        (ref_result, ref_params, ref_opt), (result, params, opt) = outcomes
        if result == "ok":
            assert ref_result == "ok", f"seed {seed}: torch raises, optimcore steps"
            assert_close_runs(((ref_params, ref_opt), (params, opt)))


# Found by a review as a demanding user -------------------------------------------------------
@pytest.mark.parametrize("rule", [r for r in RULES if "step" in r.required_state],
                         ids=lambda r: r.name)
@pytest.mark.parametrize("step_dtype", [torch.float64, torch.int64])
def test_duplicate_parameter_with_a_non_float32_step(rule, step_dtype):
    """One step tensor, two rows: it counts once per occurrence, in its own dtype."""
    def make():
        p = torch.randn(6, dtype=torch.float64, requires_grad=True)
        return [p, p]

    runs = both(rule, make, steps=1, expect_warning=DUPLICATE_WARNING)
    for _, opt in runs:
        sd = opt.state_dict()
        (entry,) = sd["state"].values()
        entry["step"] = entry["step"].to(step_dtype)
        opt.load_state_dict(sd)
        for _ in range(3):
            for p in opt.param_groups[0]["params"]:
                p.grad = torch.full_like(p, 0.5)
            opt.step()
    (entry,) = runs[1][1].state_dict()["state"].values()
    assert entry["step"].dtype == step_dtype and entry["step"].item() == 8
    assert_close_runs(runs)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_dtype_parts_of_a_group_sharing_memory_follow_torch(rule):
    """A group mixing dtypes runs one kernel call per dtype; a complex parameter and a real view
    of its memory in one group must still give torch's in-order result."""
    def make():
        z = torch.randn(4, dtype=torch.complex128)
        return [torch.nn.Parameter(torch.randn(3, dtype=torch.complex128)),
                torch.nn.Parameter(torch.view_as_real(z)), torch.nn.Parameter(z)]

    def grads(p, k):
        return torch.full_like(p, 0.25 + k)

    outcomes = []
    for cls in (rule.reference, rule.cls):
        try:
            outcomes.append(("ok", both(rule, make, grads=grads)))
            break
        except RuntimeError as e:  # both raise (e.g. a rule without complex support)
            outcomes.append(("raised", e))
    if outcomes[0][0] == "ok":
        assert_close_runs(outcomes[0][1])


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_lazily_negated_real_gradient(rule):
    def make():
        return [torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)]

    runs = both(rule, make, grads=lambda p, k: torch._neg_view(torch.full_like(p, 0.5 + k)))
    assert_close_runs(runs)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_master_copy_follows_writes_through_p_data(rule):
    """WGAN-style clipping through p.data (no version bump) is not undone by the master copy."""
    p = torch.nn.Parameter(torch.full((64,), 0.5, dtype=torch.bfloat16))
    opt = rule.cls([p], **dict(rule.kwargs, lr=1e-3), master_weights=True)
    for _ in range(2):
        p.grad = torch.full_like(p, 0.01)
        opt.step()
        p.data.clamp_(-0.01, 0.01)
    p.grad = torch.full_like(p, 0.01)
    opt.step()
    assert p.detach().abs().max().item() < 0.05


def test_master_weights_over_views_in_two_groups_follow_torch():
    base = torch.zeros(8, dtype=torch.bfloat16)
    a, b = torch.nn.Parameter(base[:6]), torch.nn.Parameter(base[2:])
    opt = optimcore.SGD([{"params": [a]}, {"params": [b]}], lr=1.0, master_weights=True)
    a.grad, b.grad = torch.ones(6, dtype=torch.bfloat16), torch.zeros(6, dtype=torch.bfloat16)
    opt.step()
    assert base.tolist() == [-1.0] * 6 + [0.0, 0.0]


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_one_element_1d_step_of_another_dtype(rule):
    if "step" not in rule.required_state:
        pytest.skip("the rule keeps no step")

    def make():
        return [torch.randn(5, dtype=torch.float64, requires_grad=True)]

    runs = both(rule, make, steps=1)
    for _, opt in runs:
        p = opt.param_groups[0]["params"][0]
        opt.state[p]["step"] = opt.state[p]["step"].to(torch.float64).reshape(1)
        p.grad = torch.ones_like(p)
        opt.step()
    assert_close_runs(runs)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_expanded_state_is_refused_before_writing(rule):
    p = torch.nn.Parameter(torch.randn(6, 4, dtype=torch.float64)[:, ::2])  # gapped: staged
    opt = rule.cls([p], **rule.kwargs)
    p.grad = torch.randn(6, 2, dtype=torch.float64)
    opt.step()
    key = next(k for k, v in opt.state[p].items() if v.shape == p.shape)
    opt.state[p][key] = torch.zeros(1, dtype=torch.float64).expand(6, 2)
    before = snapshot(opt)
    with pytest.raises(RuntimeError, match=f"state '{key}' has elements that share memory"):
        opt.step()
    assert_unchanged(opt, before)


@pytest.mark.parametrize("rule", [r for r in RULES if r.required_state], ids=lambda r: r.name)
def test_load_state_dict_pre_hook_repairs_before_the_checks(rule):
    p = torch.randn(5, requires_grad=True)
    ref = rule.reference([p], **rule.kwargs)
    p.grad = torch.randn(5)
    ref.step()
    sd = copy.deepcopy(ref.state_dict())
    missing = rule.required_state[-1]
    kept = sd["state"][0].pop(missing)
    opt = rule.cls([p.detach().clone().requires_grad_()], **rule.kwargs)

    def repair(optimizer, state_dict):
        state_dict["state"][0][missing] = kept
        return state_dict

    opt.register_load_state_dict_pre_hook(repair)
    opt.load_state_dict(sd)
    assert missing in opt.state[opt.param_groups[0]["params"][0]]


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_inference_tensor_parameter_is_refused_as_torch_refuses(rule):
    with torch.inference_mode():
        q = torch.randn(4)
    w = torch.nn.Parameter(torch.randn(4))
    opt = rule.cls([w, q], **rule.kwargs)
    w.grad = torch.ones(4)
    q.grad = torch.ones(4)
    before = snapshot(opt)
    with pytest.raises(RuntimeError, match="parameter 1: parameter is an inference tensor"):
        opt.step()
    assert_unchanged(opt, before)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_numeric_string_hyperparameter_is_refused(rule):
    p = torch.randn(3, requires_grad=True)
    opt = rule.cls([p], **rule.kwargs)
    if "lr" not in opt._hyperparameters(opt.param_groups[0]):
        pytest.skip("the rule's step does not read lr (Rprop: only its first state does)")
    p.grad = torch.ones(3)
    opt.param_groups[0]["lr"] = "0.01"
    with pytest.raises(ValueError, match="invalid hyperparameter: lr='0.01' is not a number"):
        opt.step()


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_step_under_another_default_device(rule):
    """Steps under ``with torch.device(...)`` (or set_default_device) with CPU parameters make
    their tables and first state on the CPU (it crashed on 'meta'), and give the steps' result
    without that context (as torch's Adam does; some of torch's rules fail there)."""
    runs = []
    for device in ("cpu", "meta"):
        torch.manual_seed(0)
        p = torch.randn(4, requires_grad=True)
        opt = rule.cls([p], **rule.kwargs)
        for _ in range(2):
            p.grad = torch.randn(4)
            with torch.device(device):
                opt.step()
        runs.append((p.detach(), opt.state[p]))
    (p_cpu, s_cpu), (p_meta, s_meta) = runs
    assert torch.equal(p_meta, p_cpu)
    for key, value in s_cpu.items():
        if isinstance(value, torch.Tensor):
            assert s_meta[key].device.type == "cpu" and torch.equal(s_meta[key], value)


def test_one_state_tensor_under_two_keys_is_refused():
    p = torch.randn(5, requires_grad=True)
    opt = optimcore.Adam([p], lr=0.1)
    p.grad = torch.randn(5)
    opt.step()
    opt.state[p]["exp_avg"] = opt.state[p]["exp_avg_sq"]
    before = snapshot(opt)
    with pytest.raises(RuntimeError, match="state 'exp_avg' and state 'exp_avg_sq' share memory"):
        opt.step()
    assert_unchanged(opt, before)


def test_stochastic_rounding_step_under_another_default_device():
    """The rounding seed comes from the CPU generator: under ``torch.device('meta')`` the step
    is the same as without it (it raised from .item() after the float32 part was written)."""
    runs = []
    for device in ("cpu", "meta"):
        torch.manual_seed(0)
        w = torch.randn(4, requires_grad=True)
        v = torch.randn(4).bfloat16().requires_grad_()
        opt = optimcore.AdamW([w, v], lr=0.1, stochastic_rounding=True)
        for _ in range(2):
            w.grad, v.grad = torch.ones(4), torch.ones(4, dtype=torch.bfloat16)
            with torch.device(device):
                opt.step()
        runs.append((w.detach().clone(), v.detach().clone()))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("rule", [r for r in RULES if r.cls._rule in optimcore._C.rules],
                         ids=lambda r: r.name)
def test_master_weights_under_a_float64_default_dtype(rule):
    """master_weights=True has no torch step to follow: the first step's per-tensor scalars
    (NAdam's mu_product, ASGD's eta and mu) are made in the kernels' dtype rather than the
    float64 torch would pick, so the step runs (it was refused)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        p = torch.randn(6).bfloat16().requires_grad_()
        opt = rule.cls([p], **rule.kwargs, master_weights=True)
        for _ in range(2):
            p.grad = torch.randn(6).bfloat16()
            opt.step()
        assert opt.last_step_paths == ["core"]
    finally:
        torch.set_default_dtype(previous)


def test_checkpoint_load_checks_complete_state_under_another_default_device(tmp_path):
    from optimcore.checkpoint import CheckpointError, load, save

    p = torch.randn(3, requires_grad=True)
    opt = optimcore.Adagrad([p])
    p.grad = torch.randn(3)
    opt.step()
    sd = opt.state_dict()
    del sd["state"][0]["sum"]
    save(sd, tmp_path / "truncated.safetensors")
    before = snapshot(opt)
    with torch.device("meta"), pytest.raises(CheckpointError, match="sum"):
        load(opt, tmp_path / "truncated.safetensors")
    assert_unchanged(opt, before)
