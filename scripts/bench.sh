#!/usr/bin/env bash
# scripts/bench.sh: the one-command ctxexec benchmark comparison.
#
# Configures a Release build in build/release-bench (Ninja, benchmarks on,
# tests off, ccache when available), builds context_benchmark, runs it with
# repetitions (JSON to a file), runs the CPython contextvars peer and the Node
# AsyncLocalStorage peer (skipped with a note when `node` is missing), and
# prints one markdown table comparing them with the targets
# (benchmarks/peers/table.py). A missed target is printed, not fatal.
#
# Then runs asio_benchmark and run_sync_benchmark (each ctxexec figure beside
# its plain-Asio baseline in the same binary) and the asyncio.to_thread peer,
# and prints their table (benchmarks/peers/pairs_table.py).
#
# Runs from any directory. Results land in build/release-bench/bench-results/
# (context_benchmark.json, cpython.json, node.json, table.md,
# asio_benchmark.json, run_sync_benchmark.json, to_thread.json, pairs.md).
#
# Environment knobs (defaults in brackets):
#   BENCH_REPETITIONS  Google Benchmark repetitions, median is used [5]
#   BENCH_MIN_TIME     seconds per repetition of one benchmark [0.2]
#   BENCH_FILTER       --benchmark_filter regex [all]
#   PEER_REPEATS       timed runs per operation in the peers [7]
#   PEER_TARGET_MS     milliseconds per timed peer run [40]
#   PYTHON             interpreter for the CPython peer and the table [python3]
#   NODE               Node.js binary [node]
#   CXX                C++ compiler, used on the first configure only

set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
build_dir="${repo_root}/build/release-bench"
results_dir="${build_dir}/bench-results"
peers_dir="${repo_root}/benchmarks/peers"

repetitions="${BENCH_REPETITIONS:-5}"
min_time="${BENCH_MIN_TIME:-0.2}"
filter="${BENCH_FILTER:-.}"
peer_repeats="${PEER_REPEATS:-7}"
peer_target_ms="${PEER_TARGET_MS:-40}"
python="${PYTHON:-python3}"
node="${NODE:-node}"

log() { printf '\n== %s\n' "$*" >&2; }

configure_args=(
  -S "${repo_root}"
  -B "${build_dir}"
  -G Ninja
  -DCMAKE_BUILD_TYPE=Release
  -DCTXEXEC_BUILD_BENCHMARKS=ON
  -DCTXEXEC_BUILD_TESTS=OFF
)
if command -v ccache >/dev/null 2>&1; then
  configure_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

log "configure (${build_dir})"
cmake "${configure_args[@]}"

log "build context_benchmark, asio_benchmark, run_sync_benchmark"
cmake --build "${build_dir}" --target context_benchmark asio_benchmark \
  run_sync_benchmark

mkdir -p "${results_dir}"
gbench_json="${results_dir}/context_benchmark.json"
cpython_json="${results_dir}/cpython.json"
node_json="${results_dir}/node.json"
table_md="${results_dir}/table.md"
rm -f "${gbench_json}" "${cpython_json}" "${node_json}" "${table_md}"

# Runs benchmarks/$1 (a path under the build's benchmarks/) with the
# repetitions and minimum time above, its JSON to $2; further arguments go
# to the binary.
run_gbench() {
  local name="$1" json="$2"
  shift 2
  log "run ${name} (${repetitions} repetitions, median)"
  "${build_dir}/benchmarks/${name}" \
    --benchmark_repetitions="${repetitions}" \
    --benchmark_report_aggregates_only=true \
    --benchmark_min_time="${min_time}" \
    --benchmark_out="${json}" --benchmark_out_format=json "$@"
}

run_gbench context_benchmark "${gbench_json}" --benchmark_filter="${filter}"

log "run the CPython contextvars peer"
"${python}" "${peers_dir}/contextvars_peer.py" \
  --repeats "${peer_repeats}" --target-ms "${peer_target_ms}" \
  --output "${cpython_json}" >/dev/null

table_args=(--gbench "${gbench_json}" --cpython "${cpython_json}")
if command -v "${node}" >/dev/null 2>&1; then
  log "run the Node AsyncLocalStorage peer"
  "${node}" "${peers_dir}/als_peer.js" \
    --repeats "${peer_repeats}" --target-ms "${peer_target_ms}" \
    --output "${node_json}" >/dev/null
  table_args+=(--node "${node_json}")
else
  log "note: '${node}' not found, skipping the Node peer (column shows n/a)"
fi

log "comparison (also in ${table_md})"
"${python}" "${peers_dir}/table.py" "${table_args[@]}" --output "${table_md}"

# The Asio integration and run_sync_with_context, each beside its plain-Asio
# baseline in the same binary, and asyncio.to_thread on this machine.
asio_json="${results_dir}/asio_benchmark.json"
run_sync_json="${results_dir}/run_sync_benchmark.json"
to_thread_json="${results_dir}/to_thread.json"
pairs_md="${results_dir}/pairs.md"

run_gbench asio/asio_benchmark "${asio_json}" >/dev/null
run_gbench threads/run_sync_benchmark "${run_sync_json}" >/dev/null

log "run the asyncio.to_thread peer"
"${python}" "${peers_dir}/to_thread_peer.py" --repeats "${peer_repeats}" \
  --output "${to_thread_json}" >/dev/null

log "Asio and run_sync comparison (also in ${pairs_md})"
"${python}" "${peers_dir}/pairs_table.py" --asio "${asio_json}" \
  --run-sync "${run_sync_json}" --to-thread "${to_thread_json}" \
  --output "${pairs_md}"
