#!/usr/bin/env bash
# Installs everything into .venv (torch pinned to the CPU build) and runs the whole test suite:
# Python parity/contract tests, the C++ core tests (CTest) and the CMake consumer build, then the
# C++ core tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation .
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
# The C++ core tests once more, under AddressSanitizer + UndefinedBehaviorSanitizer (own build).
PATH="$PWD/.venv/bin:$PATH" cmake -S . -B build/sanitize -G Ninja -DOPTIMCORE_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPTIMCORE_INSTALL=OFF > /dev/null
PATH="$PWD/.venv/bin:$PATH" cmake --build build/sanitize -j 2 > /dev/null
(cd build/sanitize && ../../.venv/bin/ctest --output-on-failure)
