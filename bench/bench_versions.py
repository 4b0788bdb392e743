"""The many-small-tensors step of this optimcore against another build of it, in one process:
what the per-tensor Python work of one version costs next to the other's (issue 10's budget:
the checks that make the step safe may cost at most 10% here).

2000 float32 tensors of 256 elements, per rule: the baseline's step, this install's step and
torch's fused step, each on its own copy of the tensors, called round-robin (rotating the order,
as bench_optimizers.py does, so caches are as cold as in its 2000x256 case); median over
repetitions.

    python bench/bench_versions.py --baseline /path/to/other/site-packages/optimcore

The baseline is the ``optimcore`` package directory of another install, e.g. a build of an older
commit (``git worktree add /tmp/base <rev>``, then ``pip install /tmp/base`` into another venv
with the same torch). It is copied to a temporary directory and imported as
``optimcore_baseline``, so both run in this process.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

import torch

import optimcore
from bench_optimizers import time_interleaved

RULES = {"SGD": dict(lr=1e-2, momentum=0.9), "Adam": dict(lr=1e-3), "AdamW": dict(lr=1e-3)}


def import_baseline(package: Path):
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(package, tmp / "optimcore_baseline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(tmp))
    return importlib.import_module("optimcore_baseline")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True,
                        help="the optimcore package directory of the other install")
    parser.add_argument("--reps", type=int, default=101)
    parser.add_argument("--tensors", type=int, default=2000)
    parser.add_argument("--numel", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rules", nargs="+", default=list(RULES))
    parser.add_argument("--name", help="what the baseline is (e.g. its commit), for the table")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    baseline = import_baseline(args.baseline)
    impls = {"baseline": lambda rule, ps, kw: getattr(baseline, rule)(ps, **kw),
             "this": lambda rule, ps, kw: getattr(optimcore, rule)(ps, **kw),
             "torch fused": lambda rule, ps, kw: getattr(torch.optim, rule)(ps, **kw,
                                                                            fused=True)}
    lines = [f"{args.tensors} float32 tensors of {args.numel} elements, {args.threads} "
             f"thread(s), torch {torch.__version__}; baseline {args.name or args.baseline}; median of "
             f"{args.reps} interleaved steps, ms", "",
             "| rule | baseline | this | this / baseline | torch fused |", "|---|---|---|---|---|"]
    print("\n".join(lines))
    for rule in args.rules:
        g = torch.Generator().manual_seed(0)
        values = [torch.randn(args.numel, generator=g) for _ in range(args.tensors)]
        grads = [torch.randn(args.numel, generator=g) for _ in range(args.tensors)]
        steps = {}
        for name, make in impls.items():
            params = [v.clone().requires_grad_() for v in values]
            for p, gr in zip(params, grads):
                p.grad = gr.clone()
            steps[name] = make(rule, params, dict(RULES[rule])).step
        t = time_interleaved(steps, args.reps)
        lines.append(f"| {rule} | {t['baseline'] * 1e3:.3f} | {t['this'] * 1e3:.3f} | "
                     f"{t['this'] / t['baseline']:.2f}x | {t['torch fused'] * 1e3:.3f} |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
