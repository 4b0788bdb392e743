"""The two metrics the material puts on every optimizer, measured: speed of convergence and
generalization.

Task: scikit-learn's bundled digits (8x8 images, 10 classes; nothing is downloaded), trained on
a 600-image subset and tested on the other 1,197, so that a model that fits its training set
still has a real generalization gap. Model: an MLP 64-256-256-10 (ReLU). Minibatches of 32,
`--epochs` epochs, `--seeds` seeds (initialization and batch order). Each optimizer runs with
the learning rate its paper recommends for this kind of model; for SWATS the table says how
many parameter tensors switched to SGD, and when.

Written to `--out` (default bench/results): convergence.md (final test accuracy, mean +- std
over seeds; epochs and seconds until the training loss first falls below `--target`) and
convergence.png (training loss and test accuracy per epoch, mean over seeds).

    python bench/convergence.py [--epochs 60] [--seeds 5] [--target 0.01]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import optimcore

OPTIMIZERS = {
    "SGD momentum": (optimcore.SGD, dict(lr=0.05, momentum=0.9)),
    "Adam": (optimcore.Adam, dict(lr=1e-3)),
    "AdamW": (optimcore.AdamW, dict(lr=1e-3, weight_decay=1e-2)),
    "AdaBound": (optimcore.AdaBound, dict(lr=1e-3, final_lr=0.05)),
    "AMSBound": (optimcore.AdaBound, dict(lr=1e-3, final_lr=0.05, amsbound=True)),
    "SWATS": (optimcore.SWATS, dict(lr=1e-3)),
    "SWATS, loose switch": (optimcore.SWATS, dict(lr=1e-3, switch_tolerance=1e-2)),
    "Lion": (optimcore.Lion, dict(lr=1e-4, weight_decay=1e-1)),
}


def data(train_size: int = 600):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(12345))
    train, test = perm[:train_size], perm[train_size:]
    return X[train], y[train], X[test], y[test]


def model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                               torch.nn.ReLU(), torch.nn.Linear(256, 10))


def train(name: str, seed: int, epochs: int, Xtr, ytr, Xte, yte, target: float) -> dict:
    cls, kwargs = OPTIMIZERS[name]
    net = model(seed)
    opt = cls(net.parameters(), **kwargs)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    curve, accuracy = [], []
    reached = None
    elapsed = 0.0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        for idx in torch.randperm(len(Xtr), generator=g).split(32):
            opt.zero_grad()
            loss_fn(net(Xtr[idx]), ytr[idx]).backward()
            opt.step()
        elapsed += time.perf_counter() - t0
        with torch.no_grad():
            curve.append(loss_fn(net(Xtr), ytr).item())
            accuracy.append((net(Xte).argmax(1) == yte).float().mean().item())
        if reached is None and curve[-1] <= target:
            reached = (epoch, elapsed)
    switched = [s for _, _, s, _ in opt.switches()] if hasattr(opt, "switches") else []
    return dict(loss=curve, accuracy=accuracy, reached=reached, seconds=elapsed,
                switched=switched)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.01,
                        help="training loss whose first crossing is timed")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    Xtr, ytr, Xte, yte = data()
    runs = {name: [train(name, s, args.epochs, Xtr, ytr, Xte, yte, args.target)
                   for s in range(args.seeds)] for name in args.optimizers}
    lines = [
        f"digits, 600 training / 1,197 test images, MLP 64-256-256-10, batch 32, {args.epochs} "
        f"epochs, {args.seeds} seeds, 1 thread (`python bench/convergence.py`)", "",
        f"| optimizer | options | final test accuracy | best test accuracy | final training loss"
        f" | epochs to training loss {args.target:g} | seconds to it |",
        "|---|---|---|---|---|---|---|"]
    for name, rs in runs.items():
        final = [r["accuracy"][-1] for r in rs]
        best = [max(r["accuracy"]) for r in rs]
        loss = [r["loss"][-1] for r in rs]
        reached = [r["reached"] for r in rs if r["reached"] is not None]
        when = (f"{statistics.mean(e for e, _ in reached):.1f} ({len(reached)}/{len(rs)} runs)"
                if reached else f"not reached ({len(rs)} runs)")
        secs = f"{statistics.mean(t for _, t in reached):.2f}" if reached else "-"
        opts = ", ".join(f"{k}={v}" for k, v in OPTIMIZERS[name][1].items())
        switched = [s for r in rs for s in r["switched"] if s > 0]
        if any(r["switched"] for r in rs):
            total = sum(len(r["switched"]) for r in rs)
            opts += (f"; switched to SGD: {len(switched)}/{total} tensors"
                     + (f", at step {min(switched)}-{max(switched)}" if switched else ""))
        lines.append(f"| {name} | {opts} | {statistics.mean(final):.4f} +- "
                     f"{statistics.pstdev(final):.4f} | {statistics.mean(best):.4f} | "
                     f"{statistics.mean(loss):.2e} | {when} | {secs} |")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "convergence.md").write_text(text + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = range(1, args.epochs + 1)
    for name, rs in runs.items():
        a.plot(epochs, [statistics.mean(r["loss"][e] for r in rs) for e in range(args.epochs)],
               label=name)
        b.plot(epochs, [statistics.mean(r["accuracy"][e] for r in rs)
                        for e in range(args.epochs)], label=name)
    a.set_yscale("log")
    a.set_xlabel("epoch")
    a.set_ylabel("training loss (mean over seeds)")
    b.set_xlabel("epoch")
    b.set_ylabel("test accuracy (mean over seeds)")
    b.set_ylim(0.85, 1.0)
    a.legend()
    fig.suptitle("digits, 600 training images: speed of convergence and generalization")
    fig.tight_layout()
    fig.savefig(args.out / "convergence.png", dpi=110)


if __name__ == "__main__":
    main()
