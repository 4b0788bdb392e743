"""The rules that work on whole matrices, optimcore against torch.optim on weight matrices,
interleaved in one process, median ms per step: Adafactor (factored second moments) and Muon
(Newton-Schulz on torch's matmuls, its momentum and update passes on the core).

    python bench/bench_matrix_rules.py [--big 4 1024] [--small 200 64] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

import optimcore
from bench_optimizers import time_interleaved


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, nargs=2, default=[4, 1024], metavar=("COUNT", "N"))
    parser.add_argument("--small", type=int, nargs=2, default=[200, 64], metavar=("COUNT", "N"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = [(args.big[1],) * 2] * args.big[0] + [(args.small[1],) * 2] * args.small[0]
    print(f"{args.big[0]} of {args.big[1]}^2 and {args.small[0]} of {args.small[1]}^2 float32 "
          f"matrices, {args.threads} thread(s), median ms per step\n")
    print("| rule | torch.optim | optimcore | speedup |")
    print("|---|---|---|---|")
    for rule, kwargs in (("Adafactor", dict(lr=0.01)), ("Muon", dict(lr=0.01))):
        fns = {}
        for name, module in (("torch", torch.optim), ("optimcore", optimcore)):
            gen = torch.Generator().manual_seed(0)
            params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            fns[name] = getattr(module, rule)(params, **kwargs).step
        t = time_interleaved(fns, args.reps)
        print(f"| {rule} | {t['torch'] * 1e3:.1f} | {t['optimcore'] * 1e3:.1f} | "
              f"{t['torch'] / t['optimcore']:.2f}x |")


if __name__ == "__main__":
    main()
