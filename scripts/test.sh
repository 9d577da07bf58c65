#!/usr/bin/env bash
# Builds and runs every ctxexec test: Debug (GCC, assertions on), Release
# (GCC, also builds the benchmarks), ASan+UBSan (Clang, -O1) and TSan (Clang,
# -O1). Stops at the first failure. Usage: scripts/test.sh [preset...]
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(debug release debug-asan tsan); fi

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

total=0
for preset in "${presets[@]}"; do
  echo "=== ${preset} ==="
  cmake --preset "${preset}" "${launcher[@]}" >/dev/null
  cmake --build --preset "${preset}"
  log="build/${preset}/ctest.log"
  ctest --preset "${preset}" -j2 2>&1 | tee "${log}"
  count=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "${log}" | tail -n1)
  total=$((total + ${count:-0}))
done
echo "=== all presets passed: ${presets[*]} ==="
echo "total: ${total} passed, 0 failed"
