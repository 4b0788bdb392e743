"""optimcore.testing: the registry of optimcore's rules (like torch's ``optim_db``).

One entry per optimizer class optimcore exports: its reference implementation (torch's class),
a typical option set, and what the generic tests need to know about it. The test suite
(tests/test_parity.py, test_step_safety.py, ...), the benchmarks (bench/) and the parity report
read it; people checking numerics can too:

    from optimcore.testing import RULES
    for rule in RULES:
        ours, ref = rule.cls(params_a, **rule.kwargs), rule.reference(params_b, **rule.kwargs)

tests/test_registry.py fails when an exported optimizer is missing here. Adding a rule adds one
entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

import optimcore


@dataclass(frozen=True)
class Rule:
    name: str
    cls: type
    # The implementation results are compared with (None: no Python class; the rule's test
    # file names its reference, such as SciPy for ConjugateGradient).
    reference: type | None
    kwargs: dict  # a typical option set, exercising state
    # Hyperparameter edits in param_groups that a step must refuse before any write:
    # (key, index into a tuple value or None, value, words the error names).
    bad_edits: list = field(default_factory=list)
    # State keys a checkpoint must have together (dropping one of them is a truncation).
    required_state: tuple = ()
    # Option sets the parity tests run besides those torch's own optim_db lists for the rule.
    extra_inputs: list = field(default_factory=list)
    # False: no compiled kernel yet, every step is torch's (test_torch_path.py checks it); the
    # generic suites for the compiled path skip the rule.
    compiled: bool = True
    # Options with the least state, for tests bound by memory (a 2**31-element tensor); None:
    # `kwargs` without amsgrad.
    lean_kwargs: dict | None = None
    # Parameters (and gradients) the rule takes, for rules that need a particular kind:
    # "any" (every layout), "matrix" (2-D only), "sparse" (sparse gradients only), "closure"
    # (the step re-evaluates a closure: one param group), "reduction" (per-tensor reductions:
    # non-empty parameters; tests/test_adafactor.py).
    params: str = "any"
    # The step of a tensor depends on reductions over the whole tensor (LAMB's trust ratio,
    # SWATS's projection): a slice does not step like the same elements inside the tensor.
    per_tensor_reductions: bool = False


def reference_class(cls: type) -> type:
    """`cls` with every step on its pure-torch reference path (``_reference_step``), for a rule
    torch.optim does not have: the generic suites compare the compiled path with it, and
    tests/test_<rule>.py compare it (and the compiled path) with the published reference."""

    class Reference(cls):
        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            self._reference_step()
            return loss

    Reference.__name__ = Reference.__qualname__ = f"{cls.__name__}Reference"
    return Reference


def torch_inputs(rule: Rule) -> list:
    """The kwargs torch's own tests run this rule with on the CPU (common_optimizers.optim_db),
    plus the registry's extras."""
    from torch.testing._internal.common_optimizers import optim_db

    inputs = []
    for info in optim_db:
        if info.optim_cls is rule.reference:
            inputs = [dict(i.kwargs) for i in info.optim_inputs_func(device="cpu")]
    return inputs + [dict(k) for k in rule.extra_inputs]


RULES = [
    Rule(
        "SGD", optimcore.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=1e-2),
        bad_edits=[("lr", None, -0.1, "lr"), ("momentum", None, -0.5, "momentum"),
                   ("lr", None, "fast", "lr"), ("weight_decay", None, -1.0, "weight_decay")],
        extra_inputs=[dict(momentum=0.9, nesterov=True, maximize=True)],
    ),
    Rule(
        "Adagrad", optimcore.Adagrad, torch.optim.Adagrad,
        dict(lr=0.1, lr_decay=0.01, weight_decay=1e-2, initial_accumulator_value=0.1),
        bad_edits=[("lr", None, -0.1, "lr"), ("lr_decay", None, -1.0, "lr_decay"),
                   ("eps", None, -1.0, "eps")],
        required_state=("step", "sum"),
        extra_inputs=[dict(lr=0.5, lr_decay=0.1, eps=1e-3, maximize=True)],
    ),
    Rule(
        "Adam", optimcore.Adam, torch.optim.Adam, dict(lr=0.1, weight_decay=1e-2, amsgrad=True),
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("betas", 1, 1.0, "betas[1]"),
                   ("lr", None, -1e-3, "lr"), ("eps", None, -1e-8, "eps"),
                   ("lr", None, None, "lr")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
        extra_inputs=[dict(betas=(0.8, 0.99), eps=1e-6, amsgrad=True, maximize=True)],
    ),
    Rule(
        "AdamW", optimcore.AdamW, torch.optim.AdamW, dict(lr=0.1, weight_decay=0.1),
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("betas", 1, 1.5, "betas[1]"),
                   ("eps", None, -1.0, "eps")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
    ),
]

RULES += [
    Rule(
        "Adadelta", optimcore.Adadelta, torch.optim.Adadelta,
        dict(lr=0.5, rho=0.8, weight_decay=1e-2),
        bad_edits=[("rho", None, 1.5, "rho"), ("lr", None, -1.0, "lr"),
                   ("eps", None, -1e-6, "eps")],
        required_state=("step", "square_avg", "acc_delta"),
        extra_inputs=[dict(lr=0.5, rho=0.5, eps=1e-3, weight_decay=0.1, maximize=True)],
    ),
    Rule(
        "Adamax", optimcore.Adamax, torch.optim.Adamax, dict(lr=0.05, weight_decay=1e-2),
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("lr", None, -1.0, "lr")],
        required_state=("step", "exp_avg", "exp_inf"),
        extra_inputs=[dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3)],
    ),
    Rule(
        "RMSprop", optimcore.RMSprop, torch.optim.RMSprop,
        dict(lr=0.01, momentum=0.5, centered=True, weight_decay=1e-2),
        lean_kwargs=dict(lr=0.01, weight_decay=1e-2),
        bad_edits=[("alpha", None, -0.5, "alpha"), ("momentum", None, -1.0, "momentum"),
                   ("lr", None, -1.0, "lr")],
        required_state=("step", "square_avg"),
        extra_inputs=[dict(lr=0.01, momentum=0.9), dict(lr=0.01, alpha=0.3, centered=True),
                      dict(lr=0.01, alpha=0.7, momentum=0.5, maximize=True)],
    ),
    Rule(
        "RAdam", optimcore.RAdam, torch.optim.RAdam, dict(lr=0.01, weight_decay=1e-2),
        bad_edits=[("betas", 1, 1.0, "betas[1]"), ("lr", None, -1.0, "lr")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
        # beta2 small enough that the rectified branch runs within the few test steps
        extra_inputs=[dict(lr=0.01, betas=(0.9, 0.6)),
                      dict(lr=0.01, betas=(0.8, 0.5), weight_decay=0.1,
                           decoupled_weight_decay=True, maximize=True)],
    ),
    Rule(
        "Rprop", optimcore.Rprop, torch.optim.Rprop, dict(lr=0.01),
        bad_edits=[("etas", None, (1.5, 1.2), "etas")],
        required_state=("step", "prev", "step_size"),
        extra_inputs=[dict(lr=0.05, etas=(0.3, 1.7), step_sizes=(1e-3, 0.08), maximize=True)],
    ),
]

RULES += [
    Rule(
        "NAdam", optimcore.NAdam, torch.optim.NAdam, dict(lr=0.01, weight_decay=1e-2),
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("momentum_decay", None, -1.0,
                                                   "momentum_decay")],
        required_state=("step", "exp_avg", "exp_avg_sq", "mu_product"),
        extra_inputs=[dict(lr=0.01, betas=(0.8, 0.95), momentum_decay=0.1, maximize=True)],
    ),
    Rule(
        "ASGD", optimcore.ASGD, torch.optim.ASGD, dict(lr=0.05, t0=2, weight_decay=1e-2),
        bad_edits=[("lr", None, -1.0, "lr"), ("weight_decay", None, -1.0, "weight_decay")],
        required_state=("step", "ax", "eta", "mu"),
        # t0 small enough that averaging starts within the test's steps
        extra_inputs=[dict(lr=0.05, lambd=0.01, alpha=0.5, t0=1, maximize=True)],
    ),
]

# Rules torch.optim does not have: their reference is their own pure-torch step, itself checked
# against the published implementation (adabound, lion-pytorch) in tests/test_<rule>.py.
RULES += [
    Rule(
        "AdaBound", optimcore.AdaBound, reference_class(optimcore.AdaBound),
        dict(lr=0.01, weight_decay=1e-2, amsbound=True),
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("final_lr", None, -0.1, "final_lr"),
                   ("gamma", None, 1.0, "gamma"), ("lr", None, -1.0, "lr")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
        lean_kwargs=dict(lr=0.01, weight_decay=1e-2),
        extra_inputs=[dict(), dict(amsbound=True), dict(weight_decay=0.1, lr=0.05),
                      dict(final_lr=0.5, gamma=0.01, betas=(0.8, 0.99), eps=1e-6)],
    ),
    Rule(
        "AdaBoundW", optimcore.AdaBoundW, reference_class(optimcore.AdaBoundW),
        dict(lr=0.01, weight_decay=0.1),
        bad_edits=[("betas", 1, 1.0, "betas[1]"), ("weight_decay", None, -1.0, "weight_decay")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
        extra_inputs=[dict(), dict(amsbound=True, weight_decay=0.5, lr=0.05)],
    ),
    Rule(
        "SWATS", optimcore.SWATS, reference_class(optimcore.SWATS),
        dict(lr=0.01, weight_decay=1e-2, switch_tolerance=1e-3), per_tensor_reductions=True,
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("switch_tolerance", None, -1.0,
                                                   "switch_tolerance")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
        lean_kwargs=dict(lr=0.01),
        extra_inputs=[dict(), dict(amsgrad=True, lr=0.05, switch_tolerance=1e-2)],
    ),
    Rule(
        "LAMB", optimcore.LAMB, reference_class(optimcore.LAMB),
        dict(lr=0.01, weight_decay=1e-2), per_tensor_reductions=True,
        bad_edits=[("betas", 0, 1.0, "betas[0]"), ("clamp_value", None, -1.0, "clamp_value")],
        required_state=("step", "exp_avg", "exp_avg_sq"),
        extra_inputs=[dict(), dict(debias=True, lr=0.05), dict(adam=True, weight_decay=0.1),
                      dict(clamp_value=0.5, eps=1e-8)],
    ),
    Rule(
        "Lion", optimcore.Lion, reference_class(optimcore.Lion),
        dict(lr=1e-3, weight_decay=0.1),
        bad_edits=[("betas", 0, 1.5, "betas[0]"), ("lr", None, -1.0, "lr")],
        extra_inputs=[dict(), dict(betas=(0.95, 0.98), weight_decay=0.01, lr=0.01),
                      dict(decoupled_weight_decay=True, weight_decay=1e-4, lr=0.01)],
    ),
]

RULES += [
    Rule("Adafactor", optimcore.Adafactor, torch.optim.Adafactor, dict(lr=0.01),
         params="reduction"),
    Rule("SparseAdam", optimcore.SparseAdam, torch.optim.SparseAdam, dict(lr=0.01),
         params="sparse"),
    Rule("Muon", optimcore.Muon, torch.optim.Muon, dict(lr=0.01), params="matrix"),
    Rule("LBFGS", optimcore.LBFGS, torch.optim.LBFGS, dict(lr=0.5), params="closure"),
    Rule("ConjugateGradient", optimcore.ConjugateGradient, None, dict(lr=0.5),
         params="closure"),
]
# The rules with a compiled elementwise kernel: what the generic suites of the compiled path run
# (the row-sparse SparseAdam and per-tensor-reduction Adafactor have their own test files).
COMPILED = [rule for rule in RULES if rule.compiled and rule.params == "any"]

BY_NAME = {rule.name: rule for rule in RULES}


# Problems for the closure-driven methods (LBFGS, ConjugateGradient), shared by their tests and
# bench/bench_closure.py: (name, starting point, f) with f a torch function of a float64 vector.
def closure_problems() -> list:
    """The problems the closure-driven methods are checked on against SciPy: a convex
    quadratic (n = 100, condition number 1e4), Rosenbrock from (-1.2, 1), the 100-dimensional
    extended Rosenbrock, and L2-regularized logistic regression on scikit-learn's bundled
    breast-cancer data (standardized, with a bias column)."""
    n = 100
    c = 1e4 ** (torch.arange(n, dtype=torch.float64) / (n - 1))

    def quadratic(x):
        return 0.5 * (c * x * x).sum() - x.sum()

    def rosenbrock(x):
        a, b = x[0::2], x[1::2]
        return (100 * (b - a * a) ** 2 + (1 - a) ** 2).sum()

    problems = [
        ("quadratic", torch.zeros(n, dtype=torch.float64), quadratic),
        ("rosenbrock", torch.tensor([-1.2, 1.0], dtype=torch.float64), rosenbrock),
        ("extended_rosenbrock", torch.tensor([-1.2, 1.0], dtype=torch.float64).repeat(50),
         rosenbrock),
    ]
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError:
        return problems
    X, y = load_breast_cancer(return_X_y=True)
    X = torch.tensor(X, dtype=torch.float64)
    X = torch.cat([(X - X.mean(0)) / X.std(0, correction=0), torch.ones(len(X), 1,
                                                                        dtype=torch.float64)], 1)
    y = torch.tensor(y, dtype=torch.float64)

    def logistic(w):
        z = X @ w
        return (torch.nn.functional.softplus(z) - y * z).mean() + 0.5e-3 * (w * w).sum()

    problems.append(("logistic_regression", torch.zeros(X.shape[1], dtype=torch.float64),
                     logistic))
    return problems


def minimize_with(cls, x0: torch.Tensor, f, **kwargs):
    """Minimizes f from x0 with one ``step`` of a closure-driven optimizer class; returns
    (x, function evaluations, max|gradient| at x)."""
    x = x0.clone().requires_grad_()
    opt = cls([x], **kwargs)
    calls = [0]

    def closure():
        calls[0] += 1
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    opt.step(closure)
    x.grad = None
    with torch.enable_grad():
        f(x).backward()
    return x.detach(), calls[0], x.grad.abs().max().item()


def minimize_with_scipy(method: str, x0: torch.Tensor, f, gtol: float):
    """scipy.optimize.minimize(method) on the same problem (gradients from torch); returns
    (x, function evaluations, max|gradient| at x)."""
    import numpy as np
    from scipy.optimize import minimize

    def fun(v):
        x = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        loss = f(x)
        loss.backward()
        return loss.item(), x.grad.numpy()

    options = dict(gtol=gtol, maxiter=100_000)
    if method == "L-BFGS-B":
        options.update(maxfun=100_000, maxcor=10)
    r = minimize(fun, x0.numpy(), jac=True, method=method, options=options)
    return torch.tensor(r.x), int(r.nfev), float(np.abs(fun(r.x)[1]).max())


def cmake_executable() -> str | None:
    """The cmake next to this interpreter (a venv's, which is on PATH only when activated), else
    the one on PATH."""
    import os
    import shutil
    import sys

    return shutil.which("cmake", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                        os.environ.get("PATH", "")]))


def cmake_build(source, build, *defines: str) -> None:
    """Configures and builds a CMake project against the installed package
    (``-Doptimcore_DIR`` is added); raises RuntimeError with CMake's output on failure."""
    import subprocess

    cmake = cmake_executable()
    if cmake is None:
        raise RuntimeError("cmake is not installed")
    for args in ([cmake, "-S", str(source), "-B", str(build),
                  f"-Doptimcore_DIR={optimcore.get_cmake_dir()}", *defines],
                 [cmake, "--build", str(build), "-j", "2"]):
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(" ".join(args) + "\n" + out.stdout[-4000:] + out.stderr[-4000:])
