"""Numerics report: optimcore against torch.optim (default for-loop path), rule by rule.

For each rule, dtype and SIMD level: the share of parameter elements that are bit-identical to
torch's after N steps, and the largest difference relative to the parameter's scale
(max |optimcore - torch| / max |torch|; elementwise relative errors are meaningless for the
elements that cancel to near zero).

    python bench/parity_report.py [--steps 20] [--numel 100000]
"""

from __future__ import annotations

import argparse

import torch

import optimcore

RULES = {
    "SGD": dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2),
    "SGD nesterov": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "Adam": dict(lr=1e-2, weight_decay=1e-2),
    "Adam amsgrad": dict(lr=1e-2, amsgrad=True),
    "AdamW": dict(lr=1e-2, weight_decay=1e-2),
}


def run(name, dtype, steps, numel):
    cls = name.split()[0]
    out = []
    for lib in (torch.optim, optimcore):
        g = torch.Generator().manual_seed(0)
        p = torch.randn(numel, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
        opt = getattr(lib, cls)([p], **RULES[name])
        for _ in range(steps):
            p.grad = torch.randn(numel, generator=g, dtype=torch.float64).to(dtype)
            opt.step()
        out.append(p.detach())
    ref, ours = out
    same = (ref == ours).float().mean().item()
    scaled = ((ref - ours).abs().max() / ref.abs().max()).item()
    return same, scaled, torch.finfo(dtype).eps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--numel", type=int, default=100_000)
    args = parser.parse_args()
    cap = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__} (its CPU kernels at {cap}); {args.steps} steps on "
          f"{args.numel:,} elements\n")
    print("| rule | dtype | optimcore SIMD | bit-identical | max difference / max value "
          "| (machine epsilon) |")
    print("|---|---|---|---|---|---|")
    default = optimcore.simd_level()
    try:
        for level in optimcore.supported_simd_levels():
            optimcore.set_simd_level(level)
            for name in RULES:
                for dtype in (torch.float32, torch.float64):
                    same, scaled, eps = run(name, dtype, args.steps, args.numel)
                    print(f"| {name} | {str(dtype).replace('torch.', '')} | {level} | "
                          f"{100 * same:.2f}% | {scaled:.1e} | {eps:.1e} |", flush=True)
    finally:
        optimcore.set_simd_level(default)


if __name__ == "__main__":
    main()
