"""SparseAdam on embedding tables (nn.Embedding(sparse=True)): optimcore against
torch.optim.SparseAdam, interleaved in one process, median ms per step (the backward that makes
the sparse gradient is outside the timing; each step coalesces its gradient, as torch's does).

    python bench/bench_sparse_adam.py [--rows 100000] [--dim 64] [--batch 4096] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

import optimcore
from bench_optimizers import time_interleaved


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fns = {}
    for name, cls in (("torch", torch.optim.SparseAdam), ("optimcore", optimcore.SparseAdam)):
        emb = torch.nn.Embedding(args.rows, args.dim, sparse=True)
        idx = torch.randint(0, args.rows, (args.batch,), generator=torch.Generator().manual_seed(0))
        emb(idx).sum().backward()
        opt = cls(emb.parameters(), lr=1e-3)
        fns[name] = opt.step
    t = time_interleaved(fns, args.reps)
    print(f"SparseAdam, {args.rows} x {args.dim} table, {args.batch} looked-up rows per step, "
          f"{args.threads} thread(s): torch {t['torch'] * 1e3:.3f} ms, optimcore "
          f"{t['optimcore'] * 1e3:.3f} ms ({t['torch'] / t['optimcore']:.2f}x)")


if __name__ == "__main__":
    main()
