"""Where an optimcore step spends its time with many small tensors: the per-tensor cost of each
part of the Python step (reading gradients, the checks that keep the cached pointer table valid,
the gradient checks) against the kernel itself, in microseconds per tensor.

    python bench/profile_step.py [--tensors 2000] [--numel 256] [--rule Adam]
"""

from __future__ import annotations

import argparse
import operator
import statistics
import time

import torch

import optimcore
from optimcore import _table as core


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tensors", type=int, default=2000)
    parser.add_argument("--numel", type=int, default=256)
    parser.add_argument("--rule", default="Adam", choices=["Adam", "AdamW", "SGD"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = [torch.randn(args.numel).requires_grad_() for _ in range(args.tensors)]
    for p in params:
        p.grad = torch.randn(args.numel)
    kwargs = dict(momentum=0.9) if args.rule == "SGD" else {}
    opt = getattr(optimcore, args.rule)(params, lr=1e-3, **kwargs)
    ref = getattr(torch.optim, args.rule)(
        [p.detach().clone().requires_grad_() for p in params], lr=1e-3, fused=True, **kwargs)
    for p, q in zip(params, ref.param_groups[0]["params"]):
        q.grad = p.grad.clone()
    opt.step()
    ref.step()
    group = opt.param_groups[0]
    plan = opt._tables[0]
    grads = [p.grad for p in params]
    dicts, keys, tensors = plan.state_tensors
    hyper = opt._hyperparameters(group)
    grad_ptrs = plan.fast_grad_ptrs(grads, False)

    def per_tensor(fn, reps=25):
        times = []
        for _ in range(reps):
            opt.step()  # a real step in between, so caches are as cold as in training
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6 / args.tensors

    rows = [
        ("whole optimcore step", per_tensor(opt.step)),
        ("torch fused=True step", per_tensor(ref.step)),
        ("  read p.grad", per_tensor(lambda: list(map(core.grad_of, params)))),
        ("  table check: parameter data_ptr", per_tensor(lambda: plan.ptrs(params))),
        ("  table check: parameter numel", per_tensor(lambda: list(map(core._numel, params)))),
        ("  table check: parameter contiguity", per_tensor(
            lambda: all(map(core._is_contiguous, params)))),
        (f"  table check: state entries, lookup + data_ptr ({len(tensors) // args.tensors} per tensor)",
         per_tensor(lambda: plan.ptrs(list(map(dict.get, dicts, keys))))),
        ("  gradient checks + data_ptr", per_tensor(lambda: plan.fast_grad_ptrs(grads, False))),
        ("  gradients alias written memory? (C++)", per_tensor(
            lambda: plan.grads_alias_writes(grad_ptrs, plan.nbytes))),
        (f"  autograd version bump ({len(plan.written_all) // args.tensors} per tensor)",
         per_tensor(lambda: torch.autograd.graph.increment_version(plan.written_all))),
        ("  kernel (C++)", per_tensor(lambda: opt._launch(
            plan, hyper, grad_ptrs, args.threads))),
    ]
    print(f"{args.rule}, {args.tensors} tensors of {args.numel} elements, {args.threads} thread(s); "
          "median microseconds per tensor\n")
    print("| part | us per tensor |")
    print("|---|---|")
    for name, us in rows:
        print(f"| {name} | {us:.3f} |")


if __name__ == "__main__":
    main()
