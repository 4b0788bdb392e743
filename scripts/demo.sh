#!/usr/bin/env bash
# Installs everything into .venv (torch pinned to the CPU build) and runs the main job: a real
# model trained with torch.optim and with optimcore side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt scikit-learn
.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
.venv/bin/python examples/train_demo.py "$@"
