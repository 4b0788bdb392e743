"""Does madvise(MADV_HUGEPAGE) on the buffers of a 16M-element Adam step make it faster? Prints
the median step with 4 KiB pages and with transparent huge pages, twice each (Linux only; in
THP "madvise" mode only advised memory gets huge pages).

    python bench/bench_hugepages.py [THREADS]
"""

from __future__ import annotations

import ctypes
import sys

import torch

import optimcore
from bench_optimizers import time_interleaved  # run as python bench/<script>.py

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def advise_huge_pages(t: torch.Tensor) -> None:
    start = (t.data_ptr() + HUGE_PAGE - 1) // HUGE_PAGE * HUGE_PAGE
    end = (t.data_ptr() + t.nbytes) // HUGE_PAGE * HUGE_PAGE
    if end > start and libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start),
                                    MADV_HUGEPAGE) != 0:
        raise OSError(ctypes.get_errno(), "madvise failed")


def buffers(huge: bool):
    """Four 16M-element buffers, advised before first touch when `huge`."""
    out = []
    for _ in range(4):
        t = torch.empty(16 * 2**20)
        if huge:
            advise_huge_pages(t)
        out.append(t.normal_())
    return out


def median_step_ms(opt, reps=21):
    return time_interleaved({"step": opt.step}, reps)["step"] * 1e3


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    for _ in range(2):
        for huge in (False, True):
            p, g, m, v = buffers(huge)
            p.requires_grad_()
            p.grad = g
            opt = optimcore.Adam([p])
            opt.step()
            opt.state[p]["exp_avg"] = m.zero_()
            opt.state[p]["exp_avg_sq"] = v.zero_()
            print("huge pages" if huge else "4K pages  ", f"{median_step_ms(opt):.2f} ms", flush=True)
    print([line.strip() for line in open("/proc/meminfo") if "AnonHuge" in line][0])


if __name__ == "__main__":
    main()
