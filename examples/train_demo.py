"""The main job: train a real model with torch.optim and with optimcore side by side.

A small convolutional network learns handwritten digits (scikit-learn's bundled 8x8 digits,
no download). Both runs start from the same weights and see the same batches; the script prints
both loss curves, test accuracy, and the median time of the optimizer step and of the whole
training step.

    python examples/train_demo.py [--optimizer AdamW|Adam|SGD] [--epochs N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import optimcore


def load_digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=g)
    x, y = x[order], y[order]
    split = int(0.8 * len(y))
    return (x[:split], y[:split]), (x[split:], y[split:])


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 8 * 8, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )


OPTIMIZERS = {
    "AdamW": dict(lr=1e-3, weight_decay=1e-2),
    "Adam": dict(lr=1e-3),
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True),
}


def train(library, name, epochs, train_set, test_set, batch_size=64):
    model = make_model()
    opt = getattr(library, name)(model.parameters(), **OPTIMIZERS[name])
    x, y = train_set
    losses, step_times, opt_times = [], [], []
    for epoch in range(epochs):
        g = torch.Generator().manual_seed(epoch)
        order = torch.randperm(len(y), generator=g)
        total = 0.0
        for i in range(0, len(y), batch_size):
            idx = order[i : i + batch_size]
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            t1 = time.perf_counter()
            opt.step()
            t2 = time.perf_counter()
            step_times.append(t2 - t0)
            opt_times.append(t2 - t1)
            total += loss.item() * len(idx)
        losses.append(total / len(y))
    with torch.no_grad():
        tx, ty = test_set
        accuracy = (model(tx).argmax(1) == ty).float().mean().item()
    return losses, accuracy, statistics.median(step_times), statistics.median(opt_times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--optimizer", default="AdamW", choices=sorted(OPTIMIZERS))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    train_set, test_set = load_digits()
    n_params = sum(p.numel() for p in make_model().parameters())
    print(f"digits CNN, {n_params:,} parameters, {args.optimizer} {OPTIMIZERS[args.optimizer]}, "
          f"{torch.get_num_threads()} threads, optimcore SIMD level: {optimcore.simd_level()}")
    results = {}
    for label, library in (("torch.optim", torch.optim), ("optimcore", optimcore)):
        results[label] = train(library, args.optimizer, args.epochs, train_set, test_set)
    print(f"{'epoch':>5} {'torch.optim loss':>17} {'optimcore loss':>15}")
    for e in range(args.epochs):
        print(f"{e + 1:>5} {results['torch.optim'][0][e]:>17.6f} {results['optimcore'][0][e]:>15.6f}")
    print(f"{'':>5} {'torch.optim':>17} {'optimcore':>15}")
    ref, ours = results["torch.optim"], results["optimcore"]
    print(f"{'test accuracy':<22}{ref[1]:>11.4f} {ours[1]:>15.4f}")
    print(f"{'median step (ms)':<22}{ref[2] * 1e3:>11.3f} {ours[2] * 1e3:>15.3f}"
          f"   ({ref[2] / ours[2]:.2f}x)")
    print(f"{'median optimizer (ms)':<22}{ref[3] * 1e3:>11.3f} {ours[3] * 1e3:>15.3f}"
          f"   ({ref[3] / ours[3]:.2f}x)")


if __name__ == "__main__":
    main()
