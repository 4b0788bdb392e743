"""Adam on one 16M-element tensor with one core kept busy by another process: optimcore vs torch
fused=True at 1 and 2 threads.

    python bench/bench_busy_core.py
"""
import torch, optimcore, time, statistics, subprocess, sys
def med(opt, n=15):
    ts=[]
    for _ in range(n):
        a=time.perf_counter(); opt.step(); ts.append(time.perf_counter()-a)
    return statistics.median(ts)*1e3
def mk(lib, **kw):
    p=torch.randn(16*2**20).requires_grad_(); p.grad=torch.randn(16*2**20)
    o=getattr(lib,"Adam")([p], **kw); o.step(); return o
for busy in (False, True):
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    time.sleep(0.5)
    for th in (1, 2):
        torch.set_num_threads(th)
        a=mk(optimcore); b=mk(torch.optim, fused=True)
        print(f"busy={busy} threads={th}: optimcore {med(a):.1f} ms, torch fused {med(b):.1f} ms", flush=True)
    if proc: proc.kill()
