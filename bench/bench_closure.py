"""The closure-driven methods, measured: optimcore.LBFGS against torch.optim.LBFGS, and
optimcore.ConjugateGradient against SciPy's CG (and L-BFGS-B).

1. Speed: one float64 parameter of n elements, a diagonal quadratic closure (condition number
   1e4, cheap next to the optimizer), history 10 and 100, with and without the strong-Wolfe line
   search. Both implementations step side by side in one process (interleaved), from the same
   point, after warm-up steps that fill the history; reported: the median time per step
   excluding the time spent in the closure, evaluations per step, whether the iterates agree,
   and the effective bandwidth of optimcore's iterations (the bytes its passes move, estimated
   below) against the in-place `add_` probe.
2. Evaluations to a gradient tolerance on optimcore.testing.closure_problems, against SciPy.
3. --sensitivity: how far two correct L-BFGS runs drift apart on a small MLP: optimcore vs
   torch, and torch vs torch with only its dot products summed in another order.

    python bench/bench_closure.py [--sizes 1e3 1e4 1e5 1e6 1e7] [--threads 1] [--reps 5]
                                  [--out bench/results] [--sensitivity]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

import optimcore
from optimcore.testing import closure_problems, minimize_with, minimize_with_scipy

MAX_ITER = 20


def quadratic_problem(n: int):
    c = 1e4 ** (torch.arange(n, dtype=torch.float64) / max(n - 1, 1))

    def f(x):
        return 0.5 * (c * x * x).sum() - x.sum()

    return f


class Timed:
    """An optimizer on its own copy of x, whose steps time themselves and their closure."""

    def __init__(self, cls, n, f, **kw):
        self.x = torch.full((n,), 0.5, dtype=torch.float64, requires_grad=True)
        self.opt = cls([self.x], **kw)
        self.f = f
        self.closure_time = 0.0
        self.evals = 0

    def closure(self):
        t0 = time.perf_counter()
        self.opt.zero_grad()
        loss = self.f(self.x)
        loss.backward()
        self.closure_time += time.perf_counter() - t0
        self.evals += 1
        return loss

    def step(self):
        """(seconds excluding the closure, evaluations) of one step."""
        self.closure_time, self.evals = 0.0, 0
        t0 = time.perf_counter()
        self.opt.step(self.closure)
        return time.perf_counter() - t0 - self.closure_time, self.evals


def add_probe_gbs(n: int, reps: int = 7) -> float:
    a = torch.rand(n, dtype=torch.float64)
    b = torch.rand(n, dtype=torch.float64)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a.add_(b, alpha=1e-9)
        times.append(time.perf_counter() - t0)
    return 3 * n * 8 / statistics.median(times) / 1e9


def iteration_bytes(n: int, m: int, wolfe: bool, evals_per_iter: float) -> float:
    """Bytes optimcore's passes move per iteration (float64): history update 5n, two-loop
    (3n + 8mn + n), the move 3n and its gradient max n, the gradient gather 2n per evaluation;
    with the line search also the x_init copy 2n and, per evaluation, the trial point 3n and
    the slope 2n."""
    per_iter = 5 + 3 + 8 * m + 1 + 3 + 1
    per_eval = 2 + (5 if wolfe else 0)
    return 8.0 * n * (per_iter + (2 if wolfe else 0) + per_eval * evals_per_iter)


def speed(sizes, histories, reps, out_rows):
    print("## LBFGS: optimcore vs torch.optim, time per step excluding the closure "
          f"(median of {reps}), {torch.get_num_threads()} thread(s), float64\n")
    print("| n | history | line search | torch ms | optimcore ms | speedup | evals/step "
          "(torch, optimcore) | max rel diff of x | optimcore GB/s | add_ GB/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        f = quadratic_problem(n)
        probe = add_probe_gbs(n)
        for h in histories:
            if n * h * 2 * 8 * 2 > 12e9:  # both histories must fit in memory
                print(f"| {n:.0e} | {h} | | skipped: two histories of {2 * n * h * 8 / 1e9:.0f}"
                      " GB each do not fit this machine's memory | | | | | | |")
                continue
            for wolfe in (False, True):
                kw = dict(max_iter=MAX_ITER, history_size=h, tolerance_grad=0.0,
                          tolerance_change=0.0, lr=1e-4 if not wolfe else 1.0,
                          line_search_fn="strong_wolfe" if wolfe else None)
                runs = {"torch": Timed(torch.optim.LBFGS, n, f, **kw),
                        "optimcore": Timed(optimcore.LBFGS, n, f, **kw)}
                warm = math.ceil((h + 2) / MAX_ITER)
                for _ in range(warm):
                    for r in runs.values():
                        r.step()
                times = {k: [] for k in runs}
                evals = {k: [] for k in runs}
                for rep in range(reps):
                    order = list(runs) if rep % 2 == 0 else list(runs)[::-1]
                    for k in order:
                        t, e = runs[k].step()
                        times[k].append(t)
                        evals[k].append(e)
                med = {k: statistics.median(v) for k, v in times.items()}
                ev = {k: statistics.median(v) for k, v in evals.items()}
                xa, xb = runs["torch"].x.detach(), runs["optimcore"].x.detach()
                diff = ((xa - xb).abs().max() / xa.abs().max()).item()
                iters = MAX_ITER
                gbs = iteration_bytes(n, h, wolfe, ev["optimcore"] / iters) * iters \
                    / med["optimcore"] / 1e9
                row = dict(n=n, history=h, line_search=wolfe, torch_ms=med["torch"] * 1e3,
                           optimcore_ms=med["optimcore"] * 1e3,
                           speedup=med["torch"] / med["optimcore"], evals_torch=ev["torch"],
                           evals_optimcore=ev["optimcore"], max_rel_diff=diff,
                           optimcore_gbs=gbs, add_gbs=probe)
                out_rows.append(row)
                print(f"| {n:.0e} | {h} | {'strong_wolfe' if wolfe else 'none'} | "
                      f"{row['torch_ms']:.2f} | {row['optimcore_ms']:.2f} | "
                      f"{row['speedup']:.1f}x | {ev['torch']:.0f}, {ev['optimcore']:.0f} | "
                      f"{diff:.1e} | {gbs:.1f} | {probe:.1f} |")
                del runs


def evaluations(out_rows, gtol=1e-5):
    print(f"\n## Function evaluations to max|g| <= {gtol:g} (float64)\n")
    print("| problem | SciPy CG | optimcore CG | optimcore CG, c2=0.4 | SciPy L-BFGS-B "
          "(max|g| reached) | torch LBFGS | optimcore LBFGS |")
    print("|---|---|---|---|---|---|---|")
    budget = dict(max_iter=100_000, max_eval=200_000, tolerance_change=0.0, tolerance_grad=gtol)
    lbfgs = dict(history_size=10, line_search_fn="strong_wolfe", **budget)
    for name, x0, f in closure_problems():
        row = dict(problem=name)
        _, row["scipy_cg"], _ = minimize_with_scipy("CG", x0, f, gtol)
        _, row["optimcore_cg"], _ = minimize_with(optimcore.ConjugateGradient, x0, f, **budget)
        _, row["optimcore_cg_c2_0.4"], _ = minimize_with(optimcore.ConjugateGradient, x0, f,
                                                        c2=0.4, **budget)
        _, row["scipy_lbfgsb"], g_b = minimize_with_scipy("L-BFGS-B", x0, f, gtol)
        _, row["torch_lbfgs"], _ = minimize_with(torch.optim.LBFGS, x0, f, **lbfgs)
        _, row["optimcore_lbfgs"], _ = minimize_with(optimcore.LBFGS, x0, f, **lbfgs)
        out_rows.append(row)
        print(f"| {name} | {row['scipy_cg']} | {row['optimcore_cg']} | "
              f"{row['optimcore_cg_c2_0.4']} | {row['scipy_lbfgsb']} ({g_b:.0e}) | "
              f"{row['torch_lbfgs']} | {row['optimcore_lbfgs']} |")


def sensitivity(out_rows, steps=20):
    """Max relative distance of the iterates over `steps` outer steps of an MLP fit."""
    orig = torch.Tensor.dot

    class ReorderedLBFGS(torch.optim.LBFGS):
        def step(self, closure):
            torch.Tensor.dot = lambda a, b: (a * b).sum()
            try:
                return super().step(closure)
            finally:
                torch.Tensor.dot = orig

    def run(cls, ls, hidden, hist):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Tanh(),
                                  torch.nn.Linear(hidden, 1)).double()
        X = torch.randn(32, 4, dtype=torch.float64)
        Y = torch.sin(X.sum(1, keepdim=True))
        opt = cls(net.parameters(), line_search_fn=ls, history_size=hist)

        def closure():
            opt.zero_grad()
            loss = ((net(X) - Y) ** 2).mean()
            loss.backward()
            return loss

        out = []
        for _ in range(steps):
            opt.step(closure)
            out.append(torch.cat([p.detach().reshape(-1) for p in net.parameters()]))
        return out

    def dist(a, b):
        return max(((x - y).abs().max() / x.abs().max()).item() for x, y in zip(a, b))

    print(f"\n## Drift between correct L-BFGS runs: MLP 4-h-1, 32 samples, float64, {steps} "
          "outer steps of 20 iterations (max relative distance of the parameters)\n")
    print("| line search | hidden | history | optimcore vs torch | torch with reordered dot "
          "vs torch |")
    print("|---|---|---|---|---|")
    for ls in (None, "strong_wolfe"):
        for hidden, hist in ((4, 10), (16, 10), (16, 100)):
            ref = run(torch.optim.LBFGS, ls, hidden, hist)
            row = dict(line_search=ls, hidden=hidden, history=hist,
                       optimcore=dist(run(optimcore.LBFGS, ls, hidden, hist), ref),
                       reordered_torch=dist(run(ReorderedLBFGS, ls, hidden, hist), ref))
            out_rows.append(row)
            print(f"| {ls or 'none'} | {hidden} | {hist} | {row['optimcore']:.1e} | "
                  f"{row['reordered_torch']:.1e} |")


def plot(rows, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [f"n={r['n']:.0e}\nh={r['history']}\n{'wolfe' if r['line_search'] else 'fixed'}"
              for r in rows]
    ax.bar(range(len(rows)), [r["speedup"] for r in rows], color="tab:blue")
    ax.axhline(1, color="gray", lw=0.8)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("speedup over torch.optim.LBFGS")
    ax.set_yscale("log")
    ax.set_title("optimcore.LBFGS: time per step excluding the closure")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e3, 1e4, 1e5, 1e6, 1e7])
    parser.add_argument("--histories", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None,
                        help="write closure.json and closure.png here")
    parser.add_argument("--sensitivity", action="store_true")
    parser.add_argument("--skip-evaluations", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = dict(threads=args.threads, speed=[], evaluations=[], sensitivity=[])
    speed([int(s) for s in args.sizes], args.histories, args.reps, results["speed"])
    if not args.skip_evaluations:
        evaluations(results["evaluations"])
    if args.sensitivity:
        sensitivity(results["sensitivity"])
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "closure.json").write_text(json.dumps(results, indent=1))
        plot(results["speed"], args.out / "closure.png")


if __name__ == "__main__":
    main()
