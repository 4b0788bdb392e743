"""LibTorch's torch::optim against optimcore's drop-ins (optimcore/libtorch.hpp): builds
examples/libtorch_trainer against the torch wheel's libtorch and the installed optimcore, runs
its step benchmark (AdamW and SGD with momentum, float32, 16M elements as one tensor and 2000
tensors of 256) --runs times per thread count, and prints the medians and speedups.

    python bench/bench_libtorch.py [--threads 1 2] [--runs 3] [--reps 15] [--out bench/results]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

import torch

import optimcore
from optimcore.testing import cmake_build

ROOT = Path(__file__).resolve().parents[1]


def build(build_dir: Path) -> Path:
    cmake_build(ROOT / "examples" / "libtorch_trainer", build_dir,
                f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}", "-DCMAKE_BUILD_TYPE=Release")
    return build_dir / "libtorch_trainer"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        program = build(Path(tmp))
        lines = ["# LibTorch: torch::optim vs optimcore::libtorch drop-ins", "",
                 f"`python bench/bench_libtorch.py --runs {args.runs}` on "
                 f"{optimcore.simd_level()}: one optimizer step, float32; medians of {args.runs} "
                 f"runs, each the median of {args.reps} steps.", "",
                 "| threads | rule | layout | torch::optim ms | optimcore ms | speedup |",
                 "|---|---|---|---|---|---|"]
        for threads in args.threads:
            rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for _ in range(args.runs):
                out = subprocess.run([str(program), "2", str(args.reps), str(threads)],
                                     check=True, capture_output=True, text=True).stdout
                for line in out.splitlines()[-4:]:
                    rule, a, x, b, t, o, _ = line.split()
                    rows.setdefault((rule, f"{a} {x} {b}"), []).append((float(t), float(o)))
            for (rule, layout), samples in rows.items():
                t = statistics.median(s[0] for s in samples)
                o = statistics.median(s[1] for s in samples)
                lines.append(f"| {threads} | {rule} | {layout} | {t:.2f} | {o:.2f} | "
                             f"{t / o:.1f}x |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "libtorch.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
