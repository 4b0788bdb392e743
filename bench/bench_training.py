"""End-to-end training benchmark: a real model trained with torch.optim's default and with
optimcore, steps interleaved in one process; reports the whole-step speedup and the optimizer's
share of step time. Then 16-bit training: bfloat16 parameters with and without master weights
against float32 training (accuracy, memory, speed).

    python bench/bench_training.py [--steps N] [--out bench/results/training.md]

Needs scikit-learn (its bundled 8x8 digits: no download).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import optimcore


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(64 * 64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10),
    )


class Transformer(torch.nn.Module):
    """A small transformer classifier over the 8 rows of a digit: many small tensors."""

    def __init__(self, layers=12, width=128):
        super().__init__()
        self.embed = torch.nn.Linear(8, width)
        layer = torch.nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = torch.nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x.squeeze(1))).mean(1))


MODELS = {"digits CNN": cnn, "12-layer transformer": Transformer}


def interleaved_training(make_model, steps, batch=64):
    """torch.optim.AdamW (default for-loop) and optimcore.AdamW on identical copies, one step
    each in turn; returns per-library median step and optimizer times and final losses."""
    (x, y), _ = digits()
    runs = {}
    for label, lib in (("torch.optim", torch.optim), ("optimcore", optimcore)):
        torch.manual_seed(0)
        model = make_model()
        runs[label] = dict(model=model, opt=lib.AdamW(model.parameters(), lr=1e-3),
                           step=[], optim=[], loss=None)
    g = torch.Generator().manual_seed(1)
    for i in range(steps):
        idx = torch.randint(0, len(y), (batch,), generator=g)
        for label in (("torch.optim", "optimcore") if i % 2 == 0 else ("optimcore", "torch.optim")):
            r = runs[label]
            t0 = time.perf_counter()
            r["opt"].zero_grad()
            loss = torch.nn.functional.cross_entropy(r["model"](x[idx]), y[idx])
            loss.backward()
            t1 = time.perf_counter()
            r["opt"].step()
            t2 = time.perf_counter()
            if i >= 3:  # warm-up
                r["step"].append(t2 - t0)
                r["optim"].append(t2 - t1)
            r["loss"] = loss.item()
    out = {}
    for label, r in runs.items():
        out[label] = dict(step=statistics.median(r["step"]), optim=statistics.median(r["optim"]),
                          loss=r["loss"],
                          tensors=sum(1 for _ in r["model"].parameters()),
                          params=sum(p.numel() for p in r["model"].parameters()))
    return out


def train_16bit(variant, epochs=8, batch=64):
    """Train the digits CNN; returns test accuracy, final train loss, bytes of parameters +
    optimizer state, median optimizer-step time."""
    (x, y), (tx, ty) = digits()
    torch.manual_seed(0)
    model = cnn()
    dtype = torch.float32 if variant.startswith("float32") else torch.bfloat16
    model = model.to(dtype)
    kwargs = dict(lr=1e-3, weight_decay=1e-2)
    if variant == "float32 torch.optim":
        opt = torch.optim.AdamW(model.parameters(), **kwargs)
    elif variant == "float32 optimcore":
        opt = optimcore.AdamW(model.parameters(), **kwargs)
    elif variant == "bf16 torch.optim (fused)":
        opt = torch.optim.AdamW(model.parameters(), fused=True, **kwargs)
    elif variant == "bf16 optimcore":
        opt = optimcore.AdamW(model.parameters(), **kwargs)
    elif variant == "bf16 optimcore stochastic_rounding":
        opt = optimcore.AdamW(model.parameters(), stochastic_rounding=True, **kwargs)
    else:
        opt = optimcore.AdamW(model.parameters(), master_weights=True, **kwargs)
    times, loss_sum = [], 0.0
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
        loss_sum = 0.0
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx].to(dtype)).float(), y[idx])
            loss.backward()
            t0 = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - t0)
            loss_sum += loss.item() * len(idx)
    with torch.no_grad():
        acc = (model(tx.to(dtype)).argmax(1) == ty).float().mean().item()
    memory = sum(p.numel() * p.element_size() for p in model.parameters())
    for state in opt.state.values():
        memory += sum(v.numel() * v.element_size() for v in state.values()
                      if isinstance(v, torch.Tensor))
    return dict(acc=acc, loss=loss_sum / len(y), memory=memory, optim=statistics.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "training.md"))
    args = parser.parse_args()
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, optimcore SIMD "
             f"{optimcore.simd_level()}; medians over {args.steps} interleaved steps", "",
             "| model | tensors | parameters | torch.optim step ms (optimizer share) | "
             "optimcore step ms (optimizer share) | whole-step speedup | optimizer speedup |",
             "|---|---|---|---|---|---|---|"]
    for name, make in MODELS.items():
        r = interleaved_training(make, args.steps)
        t, o = r["torch.optim"], r["optimcore"]
        lines.append(
            f"| {name} | {t['tensors']} | {t['params']:,} | {t['step'] * 1e3:.2f} "
            f"({100 * t['optim'] / t['step']:.0f}%) | {o['step'] * 1e3:.2f} "
            f"({100 * o['optim'] / o['step']:.0f}%) | {t['step'] / o['step']:.2f}x | "
            f"{t['optim'] / o['optim']:.2f}x |"
        )
        print(lines[-1], flush=True)
    lines += ["", f"16-bit training, digits CNN, AdamW, {args.epochs} epochs:", "",
              "| variant | test accuracy | final train loss | params + state (MB) | "
              "optimizer step ms |", "|---|---|---|---|---|"]
    for variant in ("float32 torch.optim", "float32 optimcore", "bf16 torch.optim (fused)",
                    "bf16 optimcore", "bf16 optimcore stochastic_rounding",
                    "bf16 optimcore master_weights"):
        r = train_16bit(variant, args.epochs)
        lines.append(f"| {variant} | {r['acc']:.4f} | {r['loss']:.4f} | {r['memory'] / 1e6:.1f} "
                     f"| {r['optim'] * 1e3:.3f} |")
        print(lines[-1], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
