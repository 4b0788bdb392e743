#!/usr/bin/env bash
# Installs everything into .venv (torch pinned to the CPU build) and runs the whole test suite:
# Python parity/contract tests, the C++ core tests (CTest) and the CMake consumer build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
