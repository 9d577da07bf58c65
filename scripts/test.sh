#!/usr/bin/env bash
# Builds and runs every ctxexec test: Debug (GCC, assertions on), Release
# (GCC, also builds the benchmarks), ASan+UBSan (Clang, -O1) and TSan (Clang,
# -O1); then fuzzes the header parsers (the `fuzz` pseudo-preset: libFuzzer
# with ASan+UBSan, CTXEXEC_FUZZ_SECONDS per target, 60 by default). Stops at
# the first failure. Usage: scripts/test.sh [preset...]
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(debug release debug-asan tsan fuzz); fi

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# The fuzz step: a lean Clang build of the three fuzz targets only, each
# run for a bounded time over a copy of its seed corpus (new inputs land in
# the copy, crashes in build/fuzz/artifacts/). A crash, a failed check or a
# leak makes the fuzzer exit non-zero, which fails the script.
fuzz_targets=(traceparent tracestate baggage)
run_fuzz() {
  local dir=build/fuzz seconds="${CTXEXEC_FUZZ_SECONDS:-60}"
  cmake -S . -B "${dir}" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_COMPILER=clang++ -DCTXEXEC_BUILD_TESTS=OFF \
    -DCTXEXEC_INSTALL=OFF -DCTXEXEC_BUILD_FUZZERS=ON "${launcher[@]}" >/dev/null
  cmake --build "${dir}" --target "${fuzz_targets[@]/%/_fuzz}"
  mkdir -p "${dir}/artifacts"
  for name in "${fuzz_targets[@]}"; do
    local corpus="${dir}/corpus/${name}"
    rm -rf "${corpus}"
    mkdir -p "${corpus}"
    cp tests/fuzz/corpus/"${name}"/* "${corpus}/"
    echo "--- ${name}_fuzz: ${seconds} s"
    local log="${dir}/${name}.log" max_len=4096
    # Baggage inputs must be able to pass the 8192-byte limit.
    if [ "${name}" = baggage ]; then max_len=12000; fi
    if ! "${dir}/tests/fuzz/${name}_fuzz" -max_total_time="${seconds}" \
      -max_len="${max_len}" -timeout=25 -print_final_stats=1 \
      -artifact_prefix="${dir}/artifacts/${name}-" "${corpus}" >"${log}" 2>&1; then
      cat "${log}"
      echo "fuzz: ${name}_fuzz failed; the input is in ${dir}/artifacts/"
      exit 1
    fi
    grep -E '^(Done|stat::new_units_added)' "${log}"
  done
  echo "fuzz: ${#fuzz_targets[@]} targets, ${seconds} s each, no finding"
}

total=0
for preset in "${presets[@]}"; do
  echo "=== ${preset} ==="
  if [ "${preset}" = fuzz ]; then
    run_fuzz
    continue
  fi
  cmake --preset "${preset}" "${launcher[@]}" >/dev/null
  cmake --build --preset "${preset}"
  log="build/${preset}/ctest.log"
  ctest --preset "${preset}" -j2 2>&1 | tee "${log}"
  count=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "${log}" | tail -n1)
  total=$((total + ${count:-0}))
done
echo "=== all presets passed: ${presets[*]} ==="
echo "total: ${total} passed, 0 failed"
