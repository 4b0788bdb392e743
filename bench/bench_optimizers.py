"""Side-by-side optimizer step benchmark: optimcore vs torch.optim (for-loop, foreach, fused).

Every case runs all implementations in one process, interleaved step by step, and reports the
median step time over repetitions, as ratios. A bandwidth probe (in-place ``a.add_(b)``, 12 bytes
per float32 element) measured in the same run tells how close each kernel gets to memory speed.

    python bench/bench_optimizers.py            # full suite -> bench/results/optimizers.{md,png}
    python bench/bench_optimizers.py --quick    # fewer repetitions, for a smoke run
    python bench/bench_optimizers.py --rules Adam --layouts 16M --dtypes float32 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import optimcore
from optimcore.testing import BY_NAME, COMPILED

# Every rule with a compiled kernel that torch.optim has, from the registry (optimcore.testing),
# with its typical options; SGD with momentum, as trainers use it. The rules torch.optim does not
# have are measured against their published implementations in bench/bench_references.py.
RULES = {rule.name: dict(rule.kwargs) for rule in COMPILED if hasattr(torch.optim, rule.name)}
RULES["SGD"] = dict(lr=1e-2, momentum=0.9)
RULES["Adafactor"] = dict(BY_NAME["Adafactor"].kwargs)  # 1-D layouts: its unfactored path


def float32_bytes(rule: str) -> int:
    """Bytes each element moves per step (reads + writes) in float32: param r/w, grad r, and
    r/w of each per-element state tensor the rule keeps with these options."""
    p = torch.zeros(4, requires_grad=True)
    opt = getattr(optimcore, rule)([p], **RULES[rule])
    p.grad = torch.ones(4)
    opt.step()
    return 12 + 8 * sum(1 for s in opt.state[p].values() if s.shape == p.shape)
LAYOUTS = {"16M": [16 * 2**20], "2000x256": [256] * 2000}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
IMPLS = ["torch for-loop", "torch foreach", "torch fused", "optimcore"]


def make_optimizer(impl, rule, params):
    kwargs = dict(RULES[rule])
    if impl == "optimcore":
        return getattr(optimcore, rule)(params, **kwargs)
    flags = {
        "torch for-loop": dict(foreach=False),
        "torch foreach": dict(foreach=True),
        "torch fused": dict(fused=True),
    }[impl]
    return getattr(torch.optim, rule)(params, **kwargs, **flags)


def make_params(sizes, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = []
    for n in sizes:
        p = torch.randn(n, generator=g).to(dtype).requires_grad_()
        p.grad = torch.randn(n, generator=g).to(dtype)
        params.append(p)
    return params


def time_interleaved(fns: dict, reps: int, warmup: int = 2) -> dict:
    """Median seconds per call of each fn, calling them round-robin (rotating the order)."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times = {name: [] for name in names}
    for r in range(reps):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def bandwidth_probe(reps: int) -> float:
    """GB/s of an in-place a.add_(b) on 16M float32 elements (12 bytes per element)."""
    a = torch.randn(16 * 2**20)
    b = torch.randn(16 * 2**20)
    t = time_interleaved({"add_": lambda: a.add_(b)}, reps)["add_"]
    return 12 * a.numel() / t / 1e9


def run_case(rule, layout, dtype_name, threads, reps):
    dtype = DTYPES[dtype_name]
    sizes = LAYOUTS[layout]
    fns, opts, params = {}, {}, {}
    for impl in IMPLS:
        ps = make_params(sizes, dtype)
        try:
            opt = make_optimizer(impl, rule, ps)
            opt.step()
        except (RuntimeError, ValueError, TypeError) as e:  # an implementation torch lacks
            print(f"  skip {impl}: {e}", file=sys.stderr)
            continue
        opts[impl], params[impl] = opt, ps
        fns[impl] = opt.step
    medians = time_interleaved(fns, reps)
    notes = {}
    for impl, ps in params.items():
        before = ps[0].detach().clone()
        opts[impl].step()
        if torch.equal(before, ps[0].detach()):
            notes[impl] = "does not update the parameters"
    numel = sum(sizes)
    bytes_per_elem = float32_bytes(rule) * torch.finfo(dtype).bits / 32
    return dict(rule=rule, layout=layout, dtype=dtype_name, threads=threads, medians=medians,
                notes=notes, gbps={k: bytes_per_elem * numel / v / 1e9 for k, v in medians.items()},
                bytes_per_elem=bytes_per_elem)


def best_torch(row):
    """torch's fastest implementation that actually updates the parameters."""
    candidates = {k: v for k, v in row["medians"].items()
                  if k != "optimcore" and k not in row["notes"]}
    name = min(candidates, key=candidates.get)
    return name, candidates[name]


def markdown(rows, probes):
    out = ["| rule | layout | dtype | threads | optimcore ms | vs for-loop | vs foreach | vs fused "
           "| GB/s | % of add_ | bytes/elem |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        m = row["medians"]
        ours = m["optimcore"]

        def ratio(impl):
            if impl not in m:
                return "n/a"
            note = " (no-op)" if impl in row["notes"] else ""
            return f"{m[impl] / ours:.2f}x{note}"

        gbps = row["gbps"]["optimcore"]
        pct = 100 * gbps / probes[row["threads"]] if row["layout"] == "16M" else float("nan")
        out.append(
            f"| {row['rule']} | {row['layout']} | {row['dtype']} | {row['threads']} | "
            f"{ours * 1e3:.3f} | {ratio('torch for-loop')} | {ratio('torch foreach')} | "
            f"{ratio('torch fused')} | {gbps:.1f} | "
            + (f"{pct:.0f}%" if pct == pct else "-")
            + f" | {row['bytes_per_elem']:g} |"
        )
    probe = ", ".join(f"{t} thread(s): {gb:.1f} GB/s" for t, gb in probes.items())
    out.append("")
    out.append(f"Bandwidth probe (in-place `a.add_(b)`, 16M float32): {probe}. Ratios are torch "
               "time / optimcore time (above 1: optimcore is faster), medians of interleaved steps.")
    return "\n".join(out)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['rule']} {r['layout']} {r['dtype']} {r['threads']}t" for r in rows]

    def speedup(r, impl):
        if impl not in r["medians"] or impl in r["notes"]:
            return 0.0
        return r["medians"][impl] / r["medians"]["optimcore"]

    default = [speedup(r, "torch for-loop") for r in rows]
    fused = [speedup(r, "torch fused") for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.4))
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], default, height=0.4, color="#4c72b0",
            label="vs torch.optim default (for-loop)")
    ax.barh([i - 0.2 for i in y], fused, height=0.4, color="#dd8452", label="vs torch fused=True")
    for i, (d, f) in enumerate(zip(default, fused)):
        ax.text(d, i + 0.2, f" {d:.1f}x", va="center", fontsize=7)
        ax.text(f, i - 0.2, f" {f:.2f}x" if f else " fused: no update (torch bug)", va="center",
                fontsize=7)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("optimizer step speedup of optimcore (torch time / optimcore time)")
    ax.set_title(f"optimcore vs torch.optim {torch.__version__}, SIMD {optimcore.simd_level()}: "
                 "optimizer step, right of 1 = optimcore faster", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=list(DTYPES))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--reps", type=int, default=25)
    parser.add_argument("--quick", action="store_true", help="5 repetitions")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "optimizers"))
    args = parser.parse_args()
    reps = 5 if args.quick else args.reps

    print(f"torch {torch.__version__}, optimcore {optimcore.__version__} "
          f"(SIMD {optimcore.simd_level()}), {reps} interleaved repetitions per case")
    rows, probes = [], {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        probes[threads] = bandwidth_probe(reps)
        for rule in args.rules:
            for layout in args.layouts:
                for dtype in args.dtypes:
                    row = run_case(rule, layout, dtype, threads, reps)
                    name, t = best_torch(row)
                    print(f"{rule:6} {layout:9} {dtype:9} {threads}t  optimcore "
                          f"{row['medians']['optimcore'] * 1e3:8.3f} ms  "
                          f"{t / row['medians']['optimcore']:6.2f}x vs {name}"
                          + (f"  [{'; '.join(f'{k}: {v}' for k, v in row['notes'].items())}]"
                             if row["notes"] else ""), flush=True)
                    rows.append(row)
    table = markdown(rows, probes)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(
        f"torch {torch.__version__}, SIMD level {optimcore.simd_level()}, {reps} repetitions\n\n"
        + table + "\n"
    )
    plot(rows, out.with_suffix(".png"))
    print()
    print(table)
    print(f"\nwrote {out.with_suffix('.md')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
