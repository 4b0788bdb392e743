#!/usr/bin/env bash
# Builds the release wheel and sdist (scripts/build_wheel.sh), installs the wheel into a fresh
# .venv (torch pinned to the CPU build) the way users get it, with nothing compiled, and runs the
# whole test suite against it from outside the checkout: Python parity/contract tests, the C++
# core tests (CTest) and the CMake consumer builds. Then the C++ core tests once more, under
# AddressSanitizer and UndefinedBehaviorSanitizer. Arguments go to pytest (test paths relative to
# the checkout, e.g. tests/test_adam.py).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/build_wheel.sh
rm -rf .venv
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
# Exactly the repaired wheel: no index, no sdist, nothing that could compile.
.venv/bin/pip install -q --disable-pip-version-check --no-index --only-binary=:all: \
  dist/optimcore-*-manylinux_*.whl
args=()
for arg in "$@"; do
  if [[ -e "$root/${arg%%::*}" ]]; then args+=("$root/$arg"); else args+=("$arg"); fi
done
has_path=0
for arg in "${args[@]+"${args[@]}"}"; do [[ "$arg" == "$root"/* ]] && has_path=1; done
((has_path)) || args+=("$root/tests")
# From an empty directory: `import optimcore` can only find the installed wheel.
outside=$(mktemp -d)
(cd "$outside" && OPTIMCORE_TEST_WHEEL=1 "$root/.venv/bin/python" -m pytest -q \
  -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" "${args[@]}")
rm -rf "$outside"
# The C++ core tests once more, under AddressSanitizer + UndefinedBehaviorSanitizer (own build).
PATH="$PWD/.venv/bin:$PATH" cmake -S . -B build/sanitize -G Ninja -DOPTIMCORE_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPTIMCORE_INSTALL=OFF \
  > /dev/null
PATH="$PWD/.venv/bin:$PATH" cmake --build build/sanitize -j 2 > /dev/null
(cd build/sanitize && ../../.venv/bin/ctest --output-on-failure)
