"""``python -m optimcore.compare``: optimcore against the reference implementation of each rule,
for people who check numerics.

For each optimizer (default: every one in the registry, ``optimcore.testing``), runs optimcore
and the reference on the same seeded problem (parameters of several shapes, seeded gradients;
a quadratic closure for LBFGS) in float32 and float64, and prints, after each checkpointed step
count, the largest absolute and relative (to the parameters' scale) difference between the two,
and each implementation's float32 error against a float64 ground truth (the reference in
float64 from the same starting values and gradients).

The reference is torch.optim's class where torch has the rule, else the published package
(AdaBound: ``adabound``, Lion: ``lion-pytorch``, LAMB: ``torch-optimizer``); AdaBoundW and SWATS,
whose published variants differ (see their modules), are compared with optimcore's own torch-ops
step, as are rules with no reference package installed (reported). ConjugateGradient has no reference here
(tests/test_conjugate_gradient.py compares it with SciPy).

    python -m optimcore.compare                         # every rule, 1/10/100 steps
    python -m optimcore.compare Adam AdaBound --steps 1 20 --options lr=0.01
    python -m optimcore.compare --json                  # one JSON object per line, for CI

Exit status 1 when a difference exceeds the documented tolerance (relative to the parameters'
scale: 1e-9 in float64, 1e-3 in float32, at every checkpoint), else 0.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import sys
import warnings

import torch

import optimcore
from optimcore.testing import BY_NAME, RULES, reference_class

TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-3}
PUBLISHED = {"AdaBound": ("adabound", "AdaBound"), "Lion": ("lion_pytorch", "Lion"),
             "LAMB": ("torch_optimizer", "Lamb")}
DIFFERENT = {"AdaBoundW": "Luolc's AdaBoundW decays differently: see optimcore/adaboundw.py",
             "SWATS": "torch_optimizer.SWATS switches per group: see optimcore/swats.py"}


def reference_of(rule):
    """(reference class or None, its name, a note)."""
    if rule.name in PUBLISHED:
        module, name = PUBLISHED[rule.name]
        try:
            cls = getattr(importlib.import_module(module), name)
            return cls, f"{module}.{name}", ""
        except ImportError:
            return (reference_class(rule.cls), f"optimcore torch-ops {rule.name}",
                    f"{module} not installed (pip install {module.replace('_', '-')})")
    if hasattr(torch.optim, rule.name):
        return getattr(torch.optim, rule.name), f"torch.optim.{rule.name}", ""
    if rule.params == "closure":
        return None, "", "no reference implementation (see tests/test_conjugate_gradient.py)"
    return (reference_class(rule.cls), f"optimcore torch-ops {rule.name}",
            DIFFERENT.get(rule.name, "no published package"))


def make_params(kind: str, dtype, seed: int = 0) -> list:
    g = torch.Generator().manual_seed(seed)
    shapes = {"matrix": [(16, 8), (32, 32)], "sparse": [(100, 8)], "closure": [(10,), (4, 3)]}
    shapes = shapes.get(kind, [(), (7,), (5, 3), (64, 33), (1000,)])
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
            for s in shapes]


def set_grads(kind: str, params: list, step: int) -> None:
    g = torch.Generator().manual_seed(1000 + step)
    for p in params:
        dense = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
        if kind == "sparse":
            rows = torch.tensor([[1, 4, 7, 50]])
            p.grad = torch.sparse_coo_tensor(rows, dense[rows[0]], p.shape)
        else:
            p.grad = dense


def run(cls, rule, dtype, checkpoints: list, options: dict, start=None) -> list:
    """The parameters (flattened, as float64) at each checkpoint."""
    params = make_params(rule.params, dtype)
    if start is not None:
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s.to(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = cls(params, **options)
        out = []
        for step in range(1, max(checkpoints) + 1):
            if rule.params == "closure":
                def closure():
                    opt.zero_grad()
                    loss = sum(((p - 0.5) ** 2 * (i + 1)).sum() + (p ** 4).sum() * 0.1
                               for i, p in enumerate(params))
                    loss.backward()
                    return loss
                opt.step(closure)
            else:
                set_grads(rule.params, params, step)
                opt.step()
            if step in checkpoints:
                out.append(torch.cat([p.detach().to(torch.float64).reshape(-1)
                                      for p in params]))
    return out


def compare(rule, steps: list, options: dict) -> list:
    """One record per (dtype, checkpoint)."""
    ref, ref_name, note = reference_of(rule)
    if ref is None:
        return [dict(optimizer=rule.name, reference=None, note=note)]
    kwargs = {**rule.kwargs, **options}
    start = make_params(rule.params, torch.float64)
    truth = run(ref, rule, torch.float64, steps, kwargs, start)
    records = []
    for dtype in (torch.float32, torch.float64):
        ours = run(rule.cls, rule, dtype, steps, kwargs, start)
        theirs = run(ref, rule, dtype, steps, kwargs, start)
        for k, step in enumerate(steps):
            scale = theirs[k].abs().max().clamp_min(1e-30).item()
            diff = (ours[k] - theirs[k]).abs().max().item()
            t_scale = truth[k].abs().max().clamp_min(1e-30).item()
            records.append(dict(
                optimizer=rule.name, reference=ref_name, note=note, dtype=str(dtype)[6:],
                step=step, max_abs_diff=diff, max_rel_diff=diff / scale,
                optimcore_error_vs_float64=(ours[k] - truth[k]).abs().max().item() / t_scale,
                reference_error_vs_float64=(theirs[k] - truth[k]).abs().max().item() / t_scale,
                tolerance=TOLERANCE[dtype], ok=diff / scale <= TOLERANCE[dtype]))
    return records


def parse_options(items: list) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m optimcore.compare",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("optimizers", nargs="*", help="names (default: all)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 10, 100],
                        help="step counts to compare at")
    parser.add_argument("--options", nargs="*", default=[], metavar="KEY=VALUE",
                        help="constructor options for every optimizer (e.g. lr=0.01)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    names = args.optimizers or [rule.name for rule in RULES]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown optimizer(s): {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
    steps = sorted(set(args.steps))
    options = parse_options(args.options)
    failed = False
    if not args.json:
        print(f"optimcore {optimcore.__version__}, torch {torch.__version__}, SIMD "
              f"{optimcore.simd_level()}; relative differences are to the parameters' scale\n")
        print("| optimizer | reference | dtype | step | max abs diff | max rel diff | "
              "optimcore f32 error vs f64 | reference f32 error vs f64 | ok |")
        print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        try:
            records = compare(BY_NAME[name], steps, options)
        except (TypeError, ValueError, RuntimeError) as e:  # options the rule does not take
            records = [dict(optimizer=name, reference=None, note=f"not run: {e}")]
        for r in records:
            failed |= r.get("ok") is False
            if args.json:
                print(json.dumps(r))
            elif r.get("reference") is None:
                print(f"| {name} | - | | | | | | | {r['note']} |")
            else:
                f32 = r["dtype"] == "float32"
                print(f"| {name} | {r['reference']}{' (' + r['note'] + ')' if r['note'] else ''}"
                      f" | {r['dtype']} | {r['step']} | {r['max_abs_diff']:.2e} | "
                      f"{r['max_rel_diff']:.2e} | "
                      f"{r['optimcore_error_vs_float64']:.2e}{'' if f32 else ' (f64)'} | "
                      f"{r['reference_error_vs_float64']:.2e}{'' if f32 else ' (f64)'} | "
                      f"{'yes' if r['ok'] else 'NO'} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
