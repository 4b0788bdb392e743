#!/usr/bin/env bash
# Builds bench/cpp/element_cost.cpp at the AVX2 level (x86-64-v3) with the kernels' flags and
# runs it. Usage: bash bench/cpp/run.sh [-march=...]
set -euo pipefail
cd "$(dirname "$0")"
march=${1:--march=x86-64-v3}
out=$(mktemp -d)/element_cost
${CXX:-g++} -std=c++17 -O3 "$march" -fno-math-errno -fno-trapping-math -ffp-contract=off \
  -I../../csrc/include element_cost.cpp -o "$out"
"$out"
