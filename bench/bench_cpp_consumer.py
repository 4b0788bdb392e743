"""C++ trainers get the wheel's speed: Adam from a consumer project outside the tree, built
against the installed package (bench/cpp/consumer), next to optimcore.Adam from Python.

The consumer is configured twice: with the compiler's default flags (no build type: -O0 for the
program's own code) and as Release. Through optimcore::optimcore the step runs liboptimcore's
kernels, dispatched at run time, so the program's flags do not matter; through the header-only
optimcore::core the kernels are compiled with the program's flags and ISA. Reported: median step
times (medians of the per-run medians over --runs alternating runs) and ratios to Python.

    python bench/bench_cpp_consumer.py [--threads 1] [--reps 20] [--runs 3] [--out bench/results]
                                       [--small]   (64K x 1 and 20 x 256: a smoke run)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

import optimcore
from optimcore.testing import cmake_build

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = {"16M x 1": (1 << 24, 1), "2000 x 256": (2000 * 256, 2000)}
SMALL_LAYOUTS = {"64K x 1": (1 << 16, 1), "20 x 256": (20 * 256, 20)}



def run_cpp(program: Path, n: int, tensors: int, reps: int, threads: int) -> float:
    out = subprocess.run([str(program), str(n), str(tensors), str(reps), str(threads)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["median_ms"]


def run_python(n: int, tensors: int, reps: int) -> float:
    params = [torch.nn.Parameter(torch.full((n // tensors,), 0.5)) for _ in range(tensors)]
    pattern = ((torch.arange(n // tensors) % 17) - 8).float() / 8
    for p in params:
        p.grad = pattern.clone()
    opt = optimcore.Adam(params, lr=1e-3)
    opt.step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--small", action="store_true", help="small layouts (a smoke run)")
    args = ap.parse_args()
    layouts = SMALL_LAYOUTS if args.small else LAYOUTS
    torch.set_num_threads(args.threads)
    source = ROOT / "bench" / "cpp" / "consumer"
    with tempfile.TemporaryDirectory() as tmp:
        builds = {"default flags": Path(tmp) / "default", "Release": Path(tmp) / "release"}
        cmake_build(source, builds["default flags"])  # the compiler's default flags
        cmake_build(source, builds["Release"], "-DCMAKE_BUILD_TYPE=Release")
        rows = []
        for layout, (n, tensors) in layouts.items():
            samples: dict[str, list[float]] = {}
            for _ in range(args.runs):
                samples.setdefault("Python optimcore.Adam", []).append(
                    run_python(n, tensors, args.reps))
                for flags, d in builds.items():
                    for program, label in (("consumer_library", "optimcore::optimcore"),
                                           ("consumer_header_only", "optimcore::core")):
                        samples.setdefault(f"C++ {label}, {flags}", []).append(
                            run_cpp(d / program, n, tensors, args.reps, args.threads))
            medians = {k: statistics.median(v) for k, v in samples.items()}
            rows.append((layout, medians))
    python_key = "Python optimcore.Adam"
    lines = [f"# C++ consumer vs the Python wheel: Adam, float32, {args.threads} thread(s)", "",
             f"`python bench/bench_cpp_consumer.py --threads {args.threads}` on "
             f"{optimcore.simd_level()}: median step time (ms), medians of {args.runs} runs of "
             f"{args.reps} steps; ratio = time / Python's time (1.00: the same speed).", ""]
    for layout, medians in rows:
        lines += [f"## {layout}", "", "| path | ms | ratio to Python |", "|---|---|---|"]
        for key, ms in medians.items():
            lines.append(f"| {key} | {ms:.2f} | {ms / medians[python_key]:.2f} |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cpp_consumer.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
