"""LBFGS on the compiled core against torch.optim.LBFGS: the same iterates, evaluation counts and
state (key for key); checkpoints in both directions; schedulers; a failing closure restores the
parameters and the state; clear errors; torch's own step where the core cannot take it."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import optimcore

F64 = torch.float64


def rosenbrock(x):
    return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2


def run_rosenbrock(cls, steps, dtype=F64, **kw):
    x = torch.tensor([-1.2, 1.0], dtype=dtype, requires_grad=True)
    opt = cls([x], **kw)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    trajectory = []
    for _ in range(steps):
        opt.step(closure)
        trajectory.append(x.detach().clone())
    return trajectory, opt


def mlp_problem(dtype=F64, hidden=16, samples=32, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Tanh(),
                              torch.nn.Linear(hidden, 1)).to(dtype)
    X = torch.randn(samples, 4, dtype=dtype)
    Y = torch.sin(X.sum(1, keepdim=True))
    return net, X, Y


def run_mlp(cls, steps, dtype=F64, state=None, **kw):
    net, X, Y = mlp_problem(dtype)
    opt = cls(net.parameters(), **kw)
    if state is not None:
        opt.load_state_dict(state)

    def closure():
        opt.zero_grad()
        loss = ((net(X) - Y) ** 2).mean()
        loss.backward()
        return loss

    trajectory = []
    for _ in range(steps):
        opt.step(closure)
        trajectory.append(torch.cat([p.detach().reshape(-1) for p in net.parameters()]))
    return trajectory, opt


def rel(a, b) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def same_state(a: dict, b: dict) -> None:
    """optimcore's and torch's state entries: the same keys, types and values."""
    assert sorted(a) == sorted(b)
    for key in b:
        x, y = a[key], b[key]
        if isinstance(y, list):
            assert isinstance(x, list) and len(x) == len(y), key
            for u, v in zip(x, y):
                assert (u is None) == (v is None), key
                if v is not None:
                    assert u.dtype == v.dtype and u.shape == v.shape, key
                    torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-12)
        elif isinstance(y, torch.Tensor):
            assert isinstance(x, torch.Tensor) and x.dtype == y.dtype and x.shape == y.shape, key
            torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)
        else:
            assert not isinstance(x, torch.Tensor) and x == y, key


LINE_SEARCHES = [None, "strong_wolfe"]
OPTION_SETS = [dict(history_size=100), dict(history_size=3, max_iter=5),
               dict(history_size=10, lr=0.5)]


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "wolfe"])
@pytest.mark.parametrize("kw", OPTION_SETS, ids=["h100", "h3-it5", "h10-lr0.5"])
def test_rosenbrock_iterates_equal_torch(line_search_fn, kw):
    """float64, 20 outer steps: the same iterates (bit for bit here: 2-element dot products
    round the same) and the same evaluation counts and state."""
    ref, ref_opt = run_rosenbrock(torch.optim.LBFGS, 20, line_search_fn=line_search_fn, **kw)
    ours, opt = run_rosenbrock(optimcore.LBFGS, 20, line_search_fn=line_search_fn, **kw)
    assert opt.last_step_paths == ["core"]
    for a, b in zip(ours, ref):
        assert rel(a, b) <= 1e-10
    same_state(opt.state_dict()["state"][0], ref_opt.state_dict()["state"][0])


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "wolfe"])
def test_mlp_iterates_equal_torch(line_search_fn):
    """float64, a small MLP (4 parameter tensors of mixed shapes): 5 outer steps (100
    iterations) to 1e-8 relative, the same evaluation counts. Over longer runs the iterates of
    any two correct implementations drift apart: a dot product's rounding (MKL's summation order
    in torch) is amplified by the problem, exactly as in torch.optim.LBFGS with only its dot
    products' summation order changed (bench/bench_closure.py --sensitivity)."""
    ref, ref_opt = run_mlp(torch.optim.LBFGS, 5, line_search_fn=line_search_fn)
    ours, opt = run_mlp(optimcore.LBFGS, 5, line_search_fn=line_search_fn)
    for a, b in zip(ours, ref):
        assert rel(a, b) <= 1e-8
    sa, sb = opt.state_dict()["state"][0], ref_opt.state_dict()["state"][0]
    assert (sa["func_evals"], sa["n_iter"]) == (sb["func_evals"], sb["n_iter"])


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "wolfe"])
def test_float32_one_step_within_ulps(line_search_fn):
    """float32: from the same point and state, one iteration agrees to a few ulps (torch's
    float32 dot products are MKL's; the core's accumulate in double)."""
    _, ref_opt = run_mlp(torch.optim.LBFGS, 3, dtype=torch.float32, max_iter=4,
                         line_search_fn=line_search_fn)
    net, X, Y = mlp_problem(torch.float32)
    with torch.no_grad():
        for p, q in zip(net.parameters(), ref_opt.param_groups[0]["params"]):
            p.copy_(q)
    results = []
    for cls in (torch.optim.LBFGS, optimcore.LBFGS):
        model = copy.deepcopy(net)
        opt = cls(model.parameters(), max_iter=1, line_search_fn=line_search_fn)
        state = copy.deepcopy(ref_opt.state_dict())
        state["param_groups"][0]["max_iter"] = 1
        state["param_groups"][0]["max_eval"] = 1 * 5 // 4
        opt.load_state_dict(state)

        def closure():
            opt.zero_grad()
            loss = ((model(X) - Y) ** 2).mean()
            loss.backward()
            return loss

        opt.step(closure)
        results.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    ulp = torch.finfo(torch.float32).eps
    assert rel(results[1], results[0]) <= 8 * ulp


def make_mixed_params(dtype=F64):
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 4, generator=g, dtype=dtype)
    b = torch.randn(5, 3, generator=g, dtype=dtype).t()  # non-contiguous
    c = torch.randn((), generator=g, dtype=dtype)
    d = torch.randn(6, generator=g, dtype=dtype)[::2]  # gapped
    e = torch.randn(2, generator=g, dtype=torch.complex128 if dtype == F64 else torch.complex64)
    return [t.clone().requires_grad_() if t.is_contiguous() else t.requires_grad_()
            for t in (a, b, c, d, e)]


def mixed_loss(params):
    a, b, c, d, e = params
    return ((a - 0.3) ** 4).sum() + (a[:, :3] @ b - 1).pow(2).sum() + (c - 2) ** 2 \
        + (d.cumsum(0) - 1).pow(2).sum() + (e.abs() ** 2 - 1).pow(2).sum()


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "wolfe"])
def test_mixed_shapes_noncontiguous_complex(line_search_fn):
    """Parameters of mixed shapes, a transposed and a gapped one, a complex one: bit for bit
    the iterates of the same values in contiguous parameters, and torch's after the first
    step. (torch's LBFGS.step cannot step the transposed one: its gradient fails `.view(-1)`;
    the reference runs on contiguous copies. This quartic amplifies a dot product's last bit
    100-fold per step, so later steps are compared with ourselves.)"""
    runs = {}
    for name, cls, contiguous in (("torch", torch.optim.LBFGS, True),
                                  ("contiguous", optimcore.LBFGS, True),
                                  ("strided", optimcore.LBFGS, False)):
        params = make_mixed_params()
        if contiguous:
            params = [p.detach().contiguous().requires_grad_() for p in params]
        opt = cls(params, lr=0.5, history_size=5, line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            loss = mixed_loss(params)
            loss.backward()
            return loss

        trajectory = []
        for _ in range(4):
            opt.step(closure)
            trajectory.append(torch.cat([(torch.view_as_real(p) if p.is_complex() else p)
                                         .detach().reshape(-1) for p in params]))
        runs[name] = (trajectory, opt, params)
    assert not runs["strided"][2][1].is_contiguous()
    assert runs["strided"][1].last_step_paths == ["core"]
    for a, b in zip(runs["strided"][0], runs["contiguous"][0]):
        assert torch.equal(a, b)
    assert rel(runs["contiguous"][0][0], runs["torch"][0][0]) <= 1e-12
    sa = runs["strided"][1].state_dict()["state"][0]
    sb = runs["torch"][1].state_dict()["state"][0]
    assert (sa["func_evals"], sa["n_iter"]) == (sb["func_evals"], sb["n_iter"])


@pytest.mark.parametrize("direction", ["torch_to_optimcore", "optimcore_to_torch"])
@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "wolfe"])
def test_checkpoint_continues_the_run(direction, line_search_fn):
    """A run checkpointed in one implementation continues in the other on the same iterates
    (through torch.save/torch.load, as a real checkpoint)."""
    import io

    kw = dict(history_size=4, max_iter=6, line_search_fn=line_search_fn)
    whole, _ = run_rosenbrock(torch.optim.LBFGS, 6, **kw)
    first, second = ((torch.optim.LBFGS, optimcore.LBFGS) if direction == "torch_to_optimcore"
                     else (optimcore.LBFGS, torch.optim.LBFGS))
    _, opt = run_rosenbrock(first, 3, **kw)
    buf = io.BytesIO()
    torch.save({"x": opt.param_groups[0]["params"][0].detach(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    x = ckpt["x"].clone().requires_grad_()
    opt2 = second([x], **kw)
    opt2.load_state_dict(ckpt["opt"])

    def closure():
        opt2.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    for k in range(3):
        opt2.step(closure)
        assert rel(x.detach(), whole[3 + k]) <= 1e-10


def test_lr_scheduler():
    runs = []
    for cls in (torch.optim.LBFGS, optimcore.LBFGS):
        x = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
        opt = cls([x], lr=1, max_iter=3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

        def closure():
            opt.zero_grad()
            loss = rosenbrock(x)
            loss.backward()
            return loss

        for _ in range(6):
            opt.step(closure)
            sched.step()
        runs.append(x.detach())
    assert rel(runs[1], runs[0]) <= 1e-12


def test_closure_runs_with_grad_enabled_and_step_returns_first_loss():
    x = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    opt = optimcore.LBFGS([x], max_iter=3)
    losses = []

    def closure():
        assert torch.is_grad_enabled()
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        losses.append(loss)
        return loss

    with torch.no_grad():
        out = opt.step(closure)
    assert out is losses[0]
    assert opt.last_step_result["evaluations"] == len(losses)


# A failing closure loses nothing ------------------------------------------------------------

def _mid_run(line_search_fn):
    net, X, Y = mlp_problem(F64)
    opt = optimcore.LBFGS(net.parameters(), history_size=3, max_iter=4,
                          line_search_fn=line_search_fn)

    def closure():
        opt.zero_grad()
        loss = ((net(X) - Y) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(3):  # a full history, so the failing step would have dropped pairs
        opt.step(closure)
    return net, X, Y, opt, closure


FAILURES = {
    "raises": (lambda loss: (_ for _ in ()).throw(KeyError("boom")), KeyError),
    "nan": (lambda loss: loss * float("nan"), FloatingPointError),
    "inf": (lambda loss: loss + float("inf"), FloatingPointError),
    "none": (lambda loss: None, TypeError),
    "non_scalar": (lambda loss: loss.expand(3), ValueError),
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("at_call", [1, 2, 4])
@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "wolfe"])
def test_failing_closure_restores_parameters_and_state(failure, at_call, line_search_fn):
    net, X, Y, opt, closure = _mid_run(line_search_fn)
    make, error = FAILURES[failure]
    params_before = [p.detach().clone() for p in net.parameters()]
    state_before = copy.deepcopy(opt.state_dict())
    calls = [0]

    def failing():
        calls[0] += 1
        loss = closure()
        return make(loss) if calls[0] == at_call else loss

    with pytest.raises(error):
        opt.step(failing)
    assert calls[0] == at_call
    for p, q in zip(net.parameters(), params_before):
        assert torch.equal(p, q)
    after = opt.state_dict()["state"][0]
    for key, value in state_before["state"][0].items():
        if isinstance(value, list):
            assert len(after[key]) == len(value)
            for u, v in zip(after[key], value):
                assert (u is None and v is None) or torch.equal(u, v), key
        elif isinstance(value, torch.Tensor):
            assert torch.equal(after[key], value), key
        else:
            assert after[key] == value, key
    # ...and the run continues as if the failed step had not happened
    reference = copy.deepcopy(opt.state_dict())
    opt.step(closure)
    net2, *_ = mlp_problem(F64)
    with torch.no_grad():
        for p, q in zip(net2.parameters(), params_before):
            p.copy_(q)
    opt2 = optimcore.LBFGS(net2.parameters(), history_size=3, max_iter=4,
                           line_search_fn=line_search_fn)
    opt2.load_state_dict(reference)

    def closure2():
        opt2.zero_grad()
        loss = ((net2(X) - Y) ** 2).mean()
        loss.backward()
        return loss

    opt2.step(closure2)
    for p, q in zip(net.parameters(), net2.parameters()):
        assert torch.equal(p, q)


def test_parameter_without_gradient_and_sparse_gradient_are_named():
    a = torch.zeros(3, dtype=F64, requires_grad=True)
    b = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = optimcore.LBFGS([a, b])

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = ((a - 1) ** 2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="parameter 1 has no gradient"):
        opt.step(closure)
    assert torch.equal(a, torch.zeros(3, dtype=F64))

    def sparse_closure():
        loss = closure()
        b.grad = torch.zeros(2, dtype=F64).to_sparse()
        return loss

    with pytest.raises(RuntimeError, match="parameter 1 has a torch.sparse_coo gradient"):
        opt.step(sparse_closure)


def test_errors_one_group_unknown_line_search_missing_closure():
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        optimcore.LBFGS([{"params": [x]}, {"params": [torch.zeros(1, requires_grad=True)]}])
    opt = optimcore.LBFGS([x], line_search_fn="backtracking")
    calls = []

    def closure():
        calls.append(1)
        return torch.zeros(())

    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(closure)
    assert not calls  # refused before the first evaluation
    with pytest.raises(TypeError):
        opt.step()
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optimcore.LBFGS([x], lr=-1)
    opt = optimcore.LBFGS([x])
    opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)]})
    with pytest.raises(ValueError, match="2 groups"):
        opt.step(closure)


@pytest.mark.parametrize("case", ["float16", "bfloat16", "mixed_dtypes", "shared_memory"])
def test_torch_step_where_the_core_cannot(case):
    """torch's own LBFGS.step, with torch's results."""
    def params():
        if case in ("float16", "bfloat16"):
            return [torch.full((4,), 0.5, dtype=getattr(torch, case), requires_grad=True)]
        if case == "mixed_dtypes":
            return [torch.full((4,), 0.5, requires_grad=True),
                    torch.full((3,), 0.5, dtype=F64, requires_grad=True)]
        base = torch.full((6,), 0.5)
        return [torch.nn.Parameter(base[:4]), torch.nn.Parameter(base[2:])]

    runs = []
    for cls in (torch.optim.LBFGS, optimcore.LBFGS):
        ps = params()
        opt = cls(ps, lr=0.1, max_iter=3)

        def closure():
            opt.zero_grad()
            loss = sum(((p.float() - 1) ** 2).sum() for p in ps)
            loss.backward()
            return loss

        opt.step(closure)
        runs.append((ps, opt))
    (ref, _), (ours, opt) = runs
    assert opt.last_step_paths == ["torch"]
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


def test_tolerance_stops_match_torch():
    """max_eval and the tolerances stop the step where torch's does."""
    for kw in (dict(max_eval=7, line_search_fn="strong_wolfe"), dict(tolerance_grad=1e-2),
               dict(tolerance_change=1e-3), dict(max_iter=1)):
        ref, ref_opt = run_rosenbrock(torch.optim.LBFGS, 3, **kw)
        ours, opt = run_rosenbrock(optimcore.LBFGS, 3, **kw)
        assert all(rel(a, b) <= 1e-12 for a, b in zip(ours, ref)), kw
        sa, sb = opt.state_dict()["state"][0], ref_opt.state_dict()["state"][0]
        assert (sa["func_evals"], sa["n_iter"]) == (sb["func_evals"], sb["n_iter"]), kw


def test_stop_reason_reported():
    _, opt = run_rosenbrock(optimcore.LBFGS, 1, tolerance_grad=1e3)
    assert opt.last_step_result["reason"] == "gradient_tolerance"
    assert opt.last_step_result["iterations"] == 0
    _, opt = run_rosenbrock(optimcore.LBFGS, 1, max_iter=2, max_eval=10)
    assert opt.last_step_result["reason"] == "max_iter"
    assert math.isfinite(opt.last_step_result["loss"])


# Found by trying to break it ---------------------------------------------------------------

def test_history_size_below_one_is_refused_before_any_evaluation():
    x = torch.zeros(3, dtype=F64, requires_grad=True)
    calls = []

    def closure():
        calls.append(1)
        return (x ** 2).sum()

    for bad in (0, -1):
        with pytest.raises(ValueError, match="history_size"):
            optimcore.LBFGS([x], history_size=bad).step(closure)
    with pytest.raises(TypeError, match="max_iter must be an integer"):
        optimcore.LBFGS([x], max_iter=2.7).step(closure)
    assert not calls


def test_negative_max_eval_as_torch():
    runs = []
    for cls in (torch.optim.LBFGS, optimcore.LBFGS):
        _, opt = run_rosenbrock(cls, 1, max_eval=-1)
        s = opt.state_dict()["state"][0]
        runs.append((s["func_evals"], s["n_iter"], opt.param_groups[0]["params"][0].tolist()))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "wolfe"])
def test_closure_that_rebinds_parameter_data(line_search_fn):
    """A projection written as `p.data = p.data.clamp(...)` inside the closure: torch steps
    the new tensor; so does optimcore (the old memory stays alive as the step's shadow)."""
    runs = []
    for cls in (torch.optim.LBFGS, optimcore.LBFGS):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(1000, dtype=F64))
        opt = cls([p], max_iter=5, line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            p.data = p.data.clamp(-2, 2)
            loss = ((p - 3) ** 2).sum()
            loss.backward()
            return loss

        for _ in range(3):
            opt.step(closure)
        runs.append(p.detach().clone())
    assert rel(runs[1], runs[0]) <= 1e-12


def test_closure_that_clamps_a_noncontiguous_parameter_in_place():
    """What the closure writes into a parameter stepped through a shadow is kept, as for a
    parameter stepped in place."""
    results = []
    for transposed in (False, True):
        torch.manual_seed(0)
        x = torch.randn(4, 6, dtype=F64)
        p = torch.nn.Parameter(x.t().contiguous().t() if transposed else x.clone())
        opt = optimcore.LBFGS([p], max_iter=10)

        def closure():
            opt.zero_grad()
            with torch.no_grad():
                p.clamp_(-0.5, 0.5)
            loss = ((p - 3) ** 2).sum()
            loss.backward()
            return loss

        for _ in range(2):
            opt.step(closure)
        assert p.is_contiguous() != transposed
        results.append(p.detach().clone())
    assert torch.equal(results[0], results[1])


def test_closure_that_rebinds_to_another_dtype_is_refused_and_restored():
    p = torch.nn.Parameter(torch.randn(10, dtype=F64))
    before = p.detach().clone()
    opt = optimcore.LBFGS([p])

    def closure():
        opt.zero_grad()
        p.data = p.data.float()
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="replaced parameter 0"):
        opt.step(closure)
    assert p.dtype == F64 and torch.equal(p, before)


@pytest.mark.parametrize("cls", [optimcore.LBFGS, optimcore.ConjugateGradient],
                         ids=["LBFGS", "ConjugateGradient"])
def test_model_dtype_change_between_steps(cls):
    """model.double() after float32 steps: the float32 history is converted, not misread."""
    torch.manual_seed(0)
    m = torch.nn.Linear(50, 1)
    X, y = torch.randn(200, 50), torch.randn(200, 1)
    opt = cls(m.parameters(), max_iter=5)

    def closure():
        opt.zero_grad()
        loss = ((m(X.to(m.weight.dtype)) - y.to(m.weight.dtype)) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    m.double()
    for _ in range(2):
        opt.step(closure)
    assert all(p.dtype == F64 for p in m.parameters())
    assert math.isfinite(opt.last_step_result["loss"])
    state = opt.state_dict()["state"][0]
    assert state["d"].dtype == F64 and state["prev_flat_grad"].dtype == F64


def test_torch_state_after_max_iter_0_loads():
    p = torch.nn.Parameter(torch.randn(5, dtype=F64))
    t_opt = torch.optim.LBFGS([p], max_iter=0)

    def closure():
        t_opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    t_opt.step(closure)
    assert t_opt.state_dict()["state"][0]["H_diag"] is None
    opt = optimcore.LBFGS([p])
    opt.load_state_dict(t_opt.state_dict())

    def closure2():
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure2)
    assert opt.last_step_paths == ["core"]


def test_state_vectors_someone_holds_are_never_reused():
    """Vectors of the state a step started from are recycled only if nothing else can see
    them: a held tensor, a view, or a held storage keeps them intact."""
    x = torch.full((64,), 0.5, dtype=F64, requires_grad=True)
    opt = optimcore.LBFGS([x], history_size=2, max_iter=3)

    def closure():
        opt.zero_grad()
        loss = ((x - torch.arange(64, dtype=F64)) ** 4).sum()
        loss.backward()
        return loss

    opt.step(closure)
    state = opt.state[x]
    held = state["old_dirs"][0]
    view = state["old_stps"][0][:4]
    storage = state["d"].untyped_storage()
    copies = held.clone(), view.clone(), torch.tensor(storage.tolist()[:8])
    for _ in range(4):
        opt.step(closure)
    assert torch.equal(held, copies[0]) and torch.equal(view, copies[1])
    assert torch.equal(torch.tensor(storage.tolist()[:8]), copies[2])


def test_complex_loss_is_refused():
    x = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = optimcore.LBFGS([x])
    with pytest.raises(TypeError, match="complex loss"):
        opt.step(lambda: torch.tensor(1 + 2j))
