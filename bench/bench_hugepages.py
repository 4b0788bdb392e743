"""Does madvise(MADV_HUGEPAGE) on optimizer buffers speed up a 16M-element Adam step? Prints the
median step with 4 KiB pages and with transparent huge pages, twice each.

    python bench/bench_hugepages.py THREADS
"""
import torch, optimcore, ctypes, time, statistics, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
MADV_HUGEPAGE = 14
def huge(t):
    start = (t.data_ptr() + (2<<20) - 1) // (2<<20) * (2<<20)
    end = (t.data_ptr() + t.nbytes) // (2<<20) * (2<<20)
    if end > start:
        r = libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_HUGEPAGE)
        assert r == 0, ctypes.get_errno()
def make(hp):
    ts = []
    for _ in range(4):
        t = torch.empty(16 * 2**20)
        if hp: huge(t)
        t.normal_()
        ts.append(t)
    return ts
def med(f, n=21):
    r=[]
    for _ in range(n):
        a=time.perf_counter(); f(); r.append(time.perf_counter()-a)
    return statistics.median(r)*1e3
torch.set_num_threads(int(sys.argv[1]))
for rep in range(2):
    for hp in (False, True):
        p, g, m, v = make(hp)
        p.requires_grad_(); p.grad = g
        opt = optimcore.Adam([p]); opt.step()
        st = opt.state[p]; st["exp_avg"] = m.zero_(); st["exp_avg_sq"] = v.zero_()
        print("huge pages" if hp else "4K pages  ", f"{med(opt.step):.2f} ms")
print([l for l in open('/proc/meminfo') if 'AnonHuge' in l])
