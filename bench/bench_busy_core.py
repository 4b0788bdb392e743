"""Adam on one 16M-element tensor while another process keeps one core busy: optimcore against
torch fused=True at 1 and 2 threads. A graceful optimizer at 2 threads is no slower than at 1.

    python bench/bench_busy_core.py
"""

from __future__ import annotations

import subprocess
import sys
import time

import torch

import optimcore
from bench_optimizers import time_interleaved  # run as python bench/<script>.py


def median_step_ms(opt, reps=15):
    return time_interleaved({"step": opt.step}, reps)["step"] * 1e3


def adam(lib, **kwargs):
    p = torch.randn(16 * 2**20).requires_grad_()
    p.grad = torch.randn(16 * 2**20)
    opt = lib.Adam([p], **kwargs)
    opt.step()
    return opt


def main():
    for busy in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            time.sleep(0.5)
            for threads in (1, 2):
                torch.set_num_threads(threads)
                ours, fused = adam(optimcore), adam(torch.optim, fused=True)
                print(f"busy core={busy} threads={threads}: optimcore {median_step_ms(ours):.1f} ms, "
                      f"torch fused {median_step_ms(fused):.1f} ms", flush=True)
        finally:
            if spinner is not None:
                spinner.kill()


if __name__ == "__main__":
    main()
