"""The rules torch.optim does not have, against their published implementations, interleaved in
one process, median ms per step: AdaBound (and AMSBound) against PyPI ``adabound`` 0.0.5, Lion
against ``lion-pytorch`` 0.2.5, SWATS (its Adam phase) and LAMB against ``torch-optimizer``
0.3.0, AdaBoundW against optimcore's own torch-ops step of it
(Luolc's AdaBoundW decays differently; see optimcore/adaboundw.py). float32, on one 16M-element
tensor and on 2000 tensors of 256, with the in-place ``add_`` probe's bandwidth for reference.

    python bench/bench_references.py [--threads 1 2] [--reps 7] [--out bench/results]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

import optimcore
from bench_optimizers import LAYOUTS, bandwidth_probe, make_params, time_interleaved
from optimcore.testing import reference_class


def references():
    """(name, optimcore class, reference class or None if not installed, kwargs, bytes per
    float32 element the rule must move)."""
    try:
        import adabound
    except ImportError:
        adabound = None
    try:
        import lion_pytorch
    except ImportError:
        lion_pytorch = None
    try:
        import torch_optimizer
    except ImportError:
        torch_optimizer = None
    return [
        ("AdaBound", optimcore.AdaBound, adabound and adabound.AdaBound, dict(lr=1e-3), 28),
        ("AMSBound", optimcore.AdaBound, adabound and adabound.AdaBound,
         dict(lr=1e-3, amsbound=True), 36),
        ("AdaBoundW", optimcore.AdaBoundW, reference_class(optimcore.AdaBoundW),
         dict(lr=1e-3, weight_decay=1e-2), 28),
        ("Lion", optimcore.Lion, lion_pytorch and lion_pytorch.Lion,
         dict(lr=1e-4, weight_decay=1e-2), 20),
        # The Adam phase: constant gradients make both switch within steps, so optimcore runs
        # with switch_tolerance=0 and torch_optimizer is put back into it after each step.
        ("SWATS", optimcore.SWATS, torch_optimizer and _adam_phase(torch_optimizer.SWATS),
         dict(lr=1e-3, eps=1e-8), 28),
        # two passes: moments and norms (24 bytes), then the step (16)
        ("LAMB", optimcore.LAMB, torch_optimizer and torch_optimizer.Lamb,
         dict(lr=1e-3, weight_decay=1e-2), 40),
    ]


def _adam_phase(cls):
    """torch_optimizer.SWATS held in its Adam phase (it switches a group by writing "phase"
    and "lr" into it)."""

    class AdamPhase(cls):
        def step(self, closure=None):
            lrs = [g["lr"] for g in self.param_groups]
            out = super().step(closure)
            for g, lr in zip(self.param_groups, lrs):
                g["phase"], g["lr"] = "ADAM", lr
            return out

    AdamPhase.__module__, AdamPhase.__name__ = cls.__module__, cls.__name__
    return AdamPhase


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS))
    parser.add_argument("--out", type=Path, default=None, help="write references.md here")
    args = parser.parse_args()
    lines = ["| rule | reference | layout | threads | reference ms | optimcore ms | speedup | "
             "optimcore GB/s (% of add_) |", "|---|---|---|---|---|---|---|---|"]
    for threads in args.threads:
        torch.set_num_threads(threads)
        probe = bandwidth_probe(args.reps)
        for name, cls, ref, kwargs, nbytes in references():
            if ref is None:
                lines.append(f"| {name} | not installed | | {threads} | | | | |")
                continue
            for layout in args.layouts:
                sizes = LAYOUTS[layout]
                fns = {}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # adabound's deprecated add(Number, Tensor)
                    for impl, c in (("reference", ref), ("optimcore", cls)):
                        extra = dict(switch_tolerance=0.0) if c is optimcore.SWATS else {}
                        opt = c(make_params(sizes, torch.float32), **kwargs, **extra)
                        opt.step()
                        fns[impl] = opt.step
                    t = time_interleaved(fns, args.reps)
                gbs = nbytes * sum(sizes) / t["optimcore"] / 1e9
                lines.append(
                    f"| {name} | {getattr(ref, '__module__', '')}.{ref.__name__} | {layout} | "
                    f"{threads} | {t['reference'] * 1e3:.2f} | {t['optimcore'] * 1e3:.2f} | "
                    f"{t['reference'] / t['optimcore']:.1f}x | {gbs:.1f} "
                    f"({100 * gbs / probe:.0f}%) |")
                print(lines[-1], flush=True)
        lines.append(f"| add_ probe | | 16M | {threads} | | | | {probe:.1f} (100%) |")
    text = "\n".join(lines)
    print("\n" + text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "references.md").write_text(
            "float32; median of the interleaved steps; `python bench/bench_references.py "
            "--out bench/results`\n\n" + text + "\n")


if __name__ == "__main__":
    main()
