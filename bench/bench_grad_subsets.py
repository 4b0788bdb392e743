"""A changing set of gradients (mixture-of-experts routing, alternating freezing): the step time
when every parameter has a gradient, and when a different 20% have none each step, optimcore
against torch.optim's for-loop and fused steps, interleaved in one process (median ms).
torch 2.13's fused SGD with momentum fails when some parameters have no gradient
(`_fused_sgd_` gets None momentum buffers): that cell reads nan.

    python bench/bench_grad_subsets.py [--tensors 200] [--shape 64 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys

import torch

import optimcore
from bench_optimizers import time_interleaved

RULES = {"SGD": dict(lr=1e-2, momentum=0.9), "Adam": dict(lr=1e-3)}


def make_step(opt, params, grads, missing_fraction, counter):
    n = len(params)
    period = round(1 / missing_fraction) if missing_fraction else 0

    def step():
        k = counter[0] = counter[0] + 1
        for i, (p, g) in enumerate(zip(params, grads)):
            p.grad = None if period and (i + k) % period == 0 else g
        opt.step()

    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tensors", type=int, default=200)
    parser.add_argument("--shape", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.tensors} parameters of {tuple(args.shape)}, {args.threads} thread(s), "
          f"median ms per step over {args.reps} interleaved repetitions\n")
    print("| rule | gradients | torch for-loop | torch fused | optimcore | vs for-loop | vs fused |")
    print("|---|---|---|---|---|---|---|")
    for rule, kwargs in RULES.items():
        for fraction in (0.0, 0.2):
            fns = {}
            for name, make in (
                ("for-loop", lambda ps: getattr(torch.optim, rule)(ps, **kwargs, foreach=False)),
                ("fused", lambda ps: getattr(torch.optim, rule)(ps, **kwargs, fused=True)),
                ("optimcore", lambda ps: getattr(optimcore, rule)(ps, **kwargs)),
            ):
                gen = torch.Generator().manual_seed(0)
                params = [torch.randn(*args.shape, generator=gen).requires_grad_()
                          for _ in range(args.tensors)]
                grads = [torch.randn(*args.shape, generator=gen) for _ in params]
                fns[name] = make_step(make(params), params, grads, fraction, [0])
                try:
                    for _ in range(3):
                        fns[name]()
                except (RuntimeError, TypeError) as e:  # torch's fused SGD, see the note
                    print(f"  {rule} {name}: {type(e).__name__}: {e}", file=sys.stderr)
                    del fns[name]
            t = time_interleaved(fns, args.reps)
            t.setdefault("fused", float("nan"))
            label = "all" if not fraction else f"{fraction:.0%} none, rotating"
            print(f"| {rule} | {label} | {t['for-loop'] * 1e3:.3f} | {t['fused'] * 1e3:.3f} | "
                  f"{t['optimcore'] * 1e3:.3f} | {t['for-loop'] / t['optimcore']:.2f}x | "
                  f"{t['fused'] / t['optimcore']:.2f}x |")


if __name__ == "__main__":
    main()
