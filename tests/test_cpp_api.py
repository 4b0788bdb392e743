"""The C++ API (optimcore::Optimizer, optimcore::lr_scheduler, checkpoints) against Python: a
C++ program built against the installed package (tests/cpp/trajectory.cpp) runs a fixed problem;
the same problem runs here with optimcore's Python classes (the same kernels: results must be
bit for bit equal) and torch.optim (to rounding). Checkpoints move C++ -> Python -> C++."""

import json
import subprocess
from pathlib import Path

import pytest
import torch

import optimcore
from optimcore import checkpoint
from optimcore.testing import cmake_build, cmake_executable

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(cmake_executable() is None, reason="cmake is not installed")

SIZES = (5, 7, 300)
# One set of options per class, with its non-default branches switched on.
OPTIONS = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adam": dict(lr=0.01, amsgrad=True, weight_decay=0.1),
    "AdamW": dict(lr=0.01, betas=(0.8, 0.99)),
    "Adagrad": dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "Adadelta": dict(lr=1.0, weight_decay=0.01),
    "Adamax": dict(lr=0.01),
    "RMSprop": dict(lr=0.01, momentum=0.9, centered=True),
    "RAdam": dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1),
    "NAdam": dict(lr=0.01),
    "ASGD": dict(lr=0.01, t0=2.0),
    "Rprop": dict(lr=0.01),
    "AdaBound": dict(lr=0.01, amsbound=True),
    "AdaBoundW": dict(lr=0.01),
    "Lion": dict(lr=0.001, weight_decay=0.1, decoupled_weight_decay=True),
    "SWATS": dict(lr=0.01),
    "LAMB": dict(lr=0.01, weight_decay=0.01),
}
TORCH = {name for name in OPTIONS if hasattr(torch.optim, name)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    build = tmp_path_factory.mktemp("cpp_api")
    cmake_build(ROOT / "tests" / "cpp", build, "-DCMAKE_BUILD_TYPE=Release")
    return build / "trajectory"


def _arg(key, value):
    if value is None or isinstance(value, str):
        return f"{key}={value}"
    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    if isinstance(value, tuple):
        return f"{key}={value[0]!r},{value[1]!r}"
    return f"{key}={value!r}"


def run_cpp(program, name, dtype, steps, options, *extra, check=True):
    args = [str(program), name, dtype, str(steps), *(_arg(k, v) for k, v in options.items()),
            "--threads", str(torch.get_num_threads()), *map(str, extra)]
    out = subprocess.run(args, capture_output=True, text=True)
    if check:
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)
    return out


def initial(dtype):
    return [torch.tensor([((j * 31 + i * 7) % 23 - 11) / 8.0 for j in range(n)],
                         dtype=torch.float64).to(dtype) for i, n in enumerate(SIZES)]


def make(cls, params, options):
    second = {"lr": options["lr"] / 2} if "lr" in options else {}
    return cls([{"params": params[:2]}, {"params": [params[2]], **second}], **options)


def run_python(cls, dtype, steps, options, start=0, values=None, state_path=None):
    params = [torch.nn.Parameter(v.clone()) for v in (values or initial(dtype))]
    opt = make(cls, params, options)
    if state_path is not None:
        checkpoint.load(opt, state_path)
    for t in range(start, start + steps):
        for i, p in enumerate(params):
            if i == 1 and t % 2 == 1:
                p.grad = None
                continue
            pattern = torch.tensor([((t * 7 + j * 13 + i * 5) % 17 - 8) / 8.0
                                    for j in range(SIZES[i])], dtype=torch.float64)
            p.grad = (p.detach().double() * 0.5 + pattern).to(dtype)
        opt.step()
    return opt, params


def as_tensors(result, dtype):
    return [torch.tensor(values, dtype=torch.float64).to(dtype) for values in result["params"]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPTIONS)
def test_cpp_optimizer_equals_python(program, name, dtype):
    """Same kernels, same bookkeeping: the C++ run is optimcore's Python run, bit for bit, and
    torch.optim's to rounding."""
    options = OPTIONS[name]
    cpp = run_cpp(program, name, dtype, 6, options)
    opt, params = run_python(getattr(optimcore, name), DTYPES[dtype], 6, options)
    for got, p in zip(as_tensors(cpp, DTYPES[dtype]), params):
        torch.testing.assert_close(got, p.detach(), rtol=0, atol=0)
    if name in TORCH:
        _, reference = run_python(getattr(torch.optim, name), DTYPES[dtype], 6, options)
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
        for got, p in zip(as_tensors(cpp, DTYPES[dtype]), reference):
            torch.testing.assert_close(got, p.detach(), **tol)
    steps = [float(opt.state[p]["step"]) if "step" in opt.state[p] else 0.0 for p in params]
    assert cpp["steps"] == steps


CLOSURE_OPTIONS = {
    "LBFGS": [dict(lr=0.5, history_size=5), dict(line_search_fn="strong_wolfe", max_iter=7)],
    "ConjugateGradient": [dict(), dict(beta="FR", restart_every=10, max_iter=5)],
}


def run_python_closure(cls, dtype, steps, options):
    params = [torch.nn.Parameter(v.clone()) for v in initial(dtype)]
    opt = cls(params, **options)
    c = [torch.tensor([1.0 + j % 5 for j in range(n)], dtype=torch.float64) for n in SIZES]
    target = [torch.tensor([((j * 3 + i) % 7 - 3) / 4.0 for j in range(n)], dtype=torch.float64)
              for i, n in enumerate(SIZES)]

    def closure():
        loss = 0.0
        for p, ci, ti in zip(params, c, target):
            d = p.detach().double() - ti
            loss += float((0.5 * ci * d * d).sum())
            p.grad = (ci * d).to(dtype)
        return loss

    losses = [float(opt.step(closure)) for _ in range(steps)]
    return params, losses


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(name, k) for name, cases in CLOSURE_OPTIONS.items()
                                  for k in range(len(cases))])
def test_cpp_closure_methods_equal_python(program, case, dtype):
    """step(closure) of LBFGS and ConjugateGradient: the iterates of optimcore's Python classes
    and torch.optim.LBFGS (the losses are summed in another order, so to rounding)."""
    name, k = case
    options = CLOSURE_OPTIONS[name][k]
    cpp = run_cpp(program, name, dtype, 3, options)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    refs = [getattr(optimcore, name)] + ([torch.optim.LBFGS] if name == "LBFGS" else [])
    for cls in refs:
        params, losses = run_python_closure(cls, DTYPES[dtype], 3, options)
        for got, p in zip(as_tensors(cpp, DTYPES[dtype]), params):
            torch.testing.assert_close(got, p.detach(), **tol)
        torch.testing.assert_close(torch.tensor(cpp["losses"]), torch.tensor(losses), **tol)


@pytest.mark.parametrize("name", ["AdamW", "SGD", "NAdam", "ASGD", "SWATS", "LAMB", "Adagrad",
                                  "Rprop", "AdaBound", "Lion"])
def test_checkpoint_cpp_to_python_to_cpp(program, name, tmp_path):
    """4 steps in C++, saved; 3 more in Python from the file; saved again; 3 more in C++: the
    trajectory of 10 uninterrupted C++ steps, bit for bit."""
    options, dtype = OPTIONS[name], "float32"
    whole = run_cpp(program, name, dtype, 10, options)
    ckpt, values = tmp_path / "a.safetensors", tmp_path / "a.bin"
    run_cpp(program, name, dtype, 4, options, "--save", ckpt, "--params-out", values)
    raw = torch.frombuffer(bytearray(values.read_bytes()), dtype=torch.float32)
    start = initial(torch.float32)
    resumed = list(torch.split(raw, SIZES))
    assert [v.shape for v in resumed] == [v.shape for v in start]
    opt, params = run_python(getattr(optimcore, name), torch.float32, 3, options, start=4,
                             values=resumed, state_path=ckpt)
    ckpt2, values2 = tmp_path / "b.safetensors", tmp_path / "b.bin"
    checkpoint.save(opt, ckpt2)
    values2.write_bytes(b"".join(p.detach().numpy().tobytes() for p in params))
    final = run_cpp(program, name, dtype, 3, options, "--start", 7, "--load", ckpt2,
                    "--params-in", values2)
    for got, want in zip(final["params"], whole["params"]):
        assert got == want
    assert final["steps"] == whole["steps"]


@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop"])
def test_cpp_checkpoint_resumes_in_torch_optim(program, name, tmp_path):
    """A C++ checkpoint loads into torch.optim itself, which continues on the same trajectory."""
    options = OPTIONS[name]
    whole = run_cpp(program, name, "float64", 8, options)
    ckpt, values = tmp_path / "c.safetensors", tmp_path / "c.bin"
    run_cpp(program, name, "float64", 5, options, "--save", ckpt, "--params-out", values)
    raw = torch.frombuffer(bytearray(values.read_bytes()), dtype=torch.float64)
    _, params = run_python(getattr(torch.optim, name), torch.float64, 3, options, start=5,
                           values=list(torch.split(raw, SIZES)), state_path=ckpt)
    for got, p in zip(as_tensors(whole, torch.float64), params):
        torch.testing.assert_close(p.detach(), got, rtol=1e-12, atol=1e-13)


def test_python_checkpoint_of_torch_optim_resumes_in_cpp(program, tmp_path):
    options = OPTIONS["AdamW"]
    _, want = run_python(torch.optim.AdamW, torch.float64, 7, options)
    opt, params = run_python(torch.optim.AdamW, torch.float64, 4, options)
    checkpoint.save(opt, tmp_path / "t.safetensors")
    (tmp_path / "t.bin").write_bytes(b"".join(p.detach().numpy().tobytes() for p in params))
    got = run_cpp(program, "AdamW", "float64", 3, options, "--start", 4, "--load",
                  tmp_path / "t.safetensors", "--params-in", tmp_path / "t.bin")
    for g, w in zip(as_tensors(got, torch.float64), want):
        torch.testing.assert_close(g, w.detach(), rtol=1e-12, atol=1e-13)


def _rewrite(path, out, edit):
    """Rewrites a checkpoint's header with edit(header) (tensors kept as they were)."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    out.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size:])


def _corruptions(tmp_path, good):
    def drop(key):
        return lambda h: h.pop(key)

    def groups(edit):
        def apply(h):
            g = json.loads(h["__metadata__"]["param_groups"])
            edit(g)
            h["__metadata__"]["param_groups"] = json.dumps(g)
        return apply

    cases = {
        "truncated": lambda: good.read_bytes()[:-100],
        "not a checkpoint": lambda: b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}        ",
        "short": lambda: b"\x01\x02",
    }
    files = {}
    for label, content in cases.items():
        files[label] = tmp_path / f"{label}.safetensors"
        files[label].write_bytes(content())
    def flag_as_text(h):
        g = json.loads(h["__metadata__"]["param_groups"])
        g[0]["amsgrad"] = "yes"
        h["__metadata__"]["param_groups"] = json.dumps(g)

    edits = {
        "partial state": drop("state.0.exp_avg_sq"),
        "a flag as text": flag_as_text,
        "0-d state": lambda h: h["state.2.exp_avg"].update(
            shape=[], data_offsets=[h["state.2.exp_avg"]["data_offsets"][0],
                                    h["state.2.exp_avg"]["data_offsets"][0] + 4]),
        "overflowing shape": lambda h: h["state.2.exp_avg"].update(
            shape=[6, 2**32 + 1, 2**32 - 1, 2**32 + 1, 2**32 - 1]),
        "huge index": lambda h: h.update({"state.99999999999999999999999.x": h.pop("state.2.exp_avg")}),
        "another class": lambda h: h["__metadata__"].update(optimizer="SGD"),
        "group sizes": groups(lambda g: g[0]["params"].pop()),
        "beta of 1": groups(lambda g: g[0].update(betas=[1.0, 0.999])),
        "wrong numel": lambda h: h["state.2.exp_avg"].update(shape=[299]),
    }
    for label, edit in edits.items():
        files[label] = tmp_path / f"{label}.safetensors"
        _rewrite(good, files[label], edit)
    # A bad \\u escape in the header (written by hand: json.dumps would escape it).
    data = good.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = data[8:8 + size].replace(b'"format"', b'"form\\uzzzz"', 1)
    files["bad escape"] = tmp_path / "bad escape.safetensors"
    files["bad escape"].write_bytes(len(header).to_bytes(8, "little") + header + data[8 + size:])
    return files


def test_corrupt_or_mismatched_checkpoints_are_refused(program, tmp_path):
    """By C++ and by Python, with a message, and without changing the optimizer."""
    options = OPTIONS["Adam"]
    good = tmp_path / "good.safetensors"
    run_cpp(program, "Adam", "float32", 3, options, "--save", good)
    for label, bad in _corruptions(tmp_path, good).items():
        out = run_cpp(program, "Adam", "float32", 1, options, "--load", bad, check=False)
        assert out.returncode == 1 and "optimizer checkpoint" in out.stderr, (label, out.stderr)
        opt, params = run_python(optimcore.Adam, torch.float32, 2, options)
        before = {k: {n: v.clone() for n, v in s.items()} for k, s in opt.state_dict()["state"].items()}
        groups_before = [dict(g) for g in opt.state_dict()["param_groups"]]
        values = [p.detach().clone() for p in params]
        if label == "beta of 1":  # loads, as in torch; the next step refuses it, before writing
            checkpoint.load(opt, bad)
            with pytest.raises(ValueError, match=r"betas\[0\]"):
                opt.step()
            assert all(torch.equal(p, v) for p, v in zip(params, values))
            continue
        with pytest.raises((ValueError, KeyError, RuntimeError)):
            checkpoint.load(opt, bad)
        if label in ("partial state", "a flag as text", "0-d state"):
            # torch.optim itself loads such files; checkpoint.load refuses them for it too
            _, tparams = run_python(torch.optim.Adam, torch.float32, 2, options)
            topt = make(torch.optim.Adam, tparams, options)
            with pytest.raises(ValueError):
                checkpoint.load(topt, bad)
        after = opt.state_dict()
        assert after["param_groups"] == groups_before, label
        for k, s in before.items():
            for n, v in s.items():
                assert torch.equal(after["state"][k][n], v), (label, k, n)


SCHEDULES = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5),
    "multistep": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5, 5, 9], 0.3),
    "exponential": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
    "linear": lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, 7),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.001),
    "warmup_cosine": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o, [torch.optim.lr_scheduler.LinearLR(o, 0.01, 1.0, 5),
            torch.optim.lr_scheduler.CosineAnnealingLR(o, 20, 0.0)], [5]),
    "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, total_steps=41),
    "onecycle3": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, total_steps=41,
                                                               three_phase=True),
    "onecycle_adam": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.5, total_steps=41),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_cpp_schedules_equal_torch(program, name):
    """40 steps of each C++ schedule: torch.optim.lr_scheduler's lrs (and OneCycleLR's momentum
    or beta1), bit for bit."""
    out = subprocess.run([str(program), "--schedule", name, "40"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cpp = json.loads(out.stdout)
    p = torch.nn.Parameter(torch.ones(4))
    adam = name == "onecycle_adam"
    opt = (torch.optim.AdamW([p], lr=0.1) if adam
           else torch.optim.SGD([p], lr=0.1, momentum=0.9))
    sched = SCHEDULES[name](opt)
    key = "betas" if adam else "momentum"

    def momentum():
        value = opt.param_groups[0][key]
        return value[0] if adam else value

    lrs, moms = [opt.param_groups[0]["lr"]], [momentum()]
    for _ in range(40):
        p.grad = torch.zeros(4)
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(momentum())
    assert cpp["lr"] == lrs
    assert cpp["momentum"] == moms
