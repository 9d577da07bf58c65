#!/usr/bin/env bash
# scripts/demo.sh: the main job. The demo server (examples/server/, target
# ctxexec_demo) under load on loopback, side by side with its --plain mode
# and the FastAPI peer (benchmarks/peers/fastapi_app.py).
#
# 1. Builds ctxexec_demo and the load client ctxexec_load (Release, in
#    build/demo, ccache when available).
# 2. The propagation report: starts a backend and a gateway whose --upstream
#    is the backend, drives a mixed load on the gateway with ctxexec_load
#    (each request its own traceparent and x-user-id, every response
#    checked, /chain through the backend), scrapes both /metrics during and
#    after the load, stops both with SIGTERM and checks they exit 0.
# 3. The comparison: ctxexec_demo, ctxexec_demo --plain and the FastAPI peer
#    (uvicorn, 1 worker, uvloop, httptools), each alone: /async?ms=0 and
#    /sync?ms=0 at 50, 200 and 1000 connections; wrk at 200 connections as
#    a second opinion on the totals; /async?ms=0 at a steady rate with and
#    without /sync?ms=200 holding every limiter token (is the loop ever
#    blocked?);
#    then ctxexec and --plain in alternated rounds for the 3% goal.
# 4. Prints the report, the comparison table and the goals, met or missed
#    (benchmarks/peers/demo_report.py), and draws docs/server-comparison.png
#    (gnuplot). A missed goal is printed, never fatal: this is a benchmark.
#    The script fails when something breaks: a build, a server that does
#    not start or does not exit 0 on SIGTERM, a load client that fails.
#
# Without a ctxexec_demo target in the tree, it says so and runs everything
# on the FastAPI peer alone. Every load is on loopback, on ports the
# servers pick (--port 0), and bounded in time and count.
#
# Environment knobs (defaults in brackets):
#   DEMO_SMOKE            1: the propagation report only, DEMO_REPORT_SECONDS
#                         2 by default (the ctest smoke test) [0]
#   DEMO_REPORT_SECONDS   seconds of mixed load for the report [10]
#   DEMO_CONNECTIONS      connections of the mixed load [200]
#   DEMO_MIX              the mixed load (ctxexec_load --mix)
#                         [/async?ms=2@3,/sync?ms=2@2,/chain?hops=1@2,/chain?hops=2@1]
#   DEMO_SECONDS          measured seconds of each comparison run [4]
#   DEMO_WARMUP           unmeasured seconds before each run [1]
#   DEMO_SWEEP            connection counts of the chart [50 200 1000]
#   DEMO_REPEATS          runs of each comparison point; the report keeps
#                         the one with the most req/s (neighbours on the
#                         machine only ever slow a run down) [2]
#   DEMO_BLOCK_CONNECTIONS  /async?ms=0 connections of the loop check [20]
#   DEMO_BLOCK_RATE       /async?ms=0 requests/s of the loop check [2000]
#   DEMO_ROUNDS           alternated ctxexec / --plain rounds for the 3% goal [10]
#   DEMO_PAIR_SECONDS     measured seconds of each of those rounds [1]
#   DEMO_TOKENS           --tokens and --db-pool of every server [40]
#   DEMO_SERVERS          which servers to compare [ctxexec plain fastapi];
#                         ctxexec1 adds ctxexec_demo --threads=1
#   DEMO_CHART            where the chart goes [docs/server-comparison.png];
#                         empty: no chart
#   DEMO_BUILD_DIR        [build/demo]
#   DEMO_RESULTS          results, logs and report [$DEMO_BUILD_DIR/demo-results]
#   DEMO_SERVER, DEMO_LOAD  prebuilt ctxexec_demo and ctxexec_load: no build
#                         (DEMO_SERVER=none: no ctxexec_demo, the peer alone)
#   PYTHON                Debian's python3, which has FastAPI [/usr/bin/python3]
#   CXX                   C++ compiler, used on the first configure only

set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
peers_dir="${repo_root}/benchmarks/peers"

smoke="${DEMO_SMOKE:-0}"
if [ "${smoke}" = 1 ]; then default_report_seconds=2; else default_report_seconds=10; fi
report_seconds="${DEMO_REPORT_SECONDS:-${default_report_seconds}}"
connections="${DEMO_CONNECTIONS:-200}"
mix="${DEMO_MIX:-/async?ms=2@3,/sync?ms=2@2,/chain?hops=1@2,/chain?hops=2@1}"
seconds="${DEMO_SECONDS:-4}"
warmup="${DEMO_WARMUP:-1}"
read -r -a sweep <<<"${DEMO_SWEEP:-50 200 1000}"
block_connections="${DEMO_BLOCK_CONNECTIONS:-20}"
block_rate="${DEMO_BLOCK_RATE:-2000}"
repeats="${DEMO_REPEATS:-2}"
rounds="${DEMO_ROUNDS:-10}"
pair_seconds="${DEMO_PAIR_SECONDS:-1}"
tokens="${DEMO_TOKENS:-40}"
read -r -a servers <<<"${DEMO_SERVERS:-ctxexec plain fastapi}"
chart="${DEMO_CHART-docs/server-comparison.png}"
build_dir="${DEMO_BUILD_DIR:-${repo_root}/build/demo}"
results="${DEMO_RESULTS:-${build_dir}/demo-results}"
python="${PYTHON:-/usr/bin/python3}"
demo_bin="${DEMO_SERVER:-}"
load_bin="${DEMO_LOAD:-}"

log() { printf '\n== %s\n' "$*" >&2; }
die() {
  printf 'demo.sh: %s\n' "$*" >&2
  exit 1
}

# --- 1. Build ----------------------------------------------------------------

if [ -z "${demo_bin}" ] || [ -z "${load_bin}" ]; then
  configure_args=(-S "${repo_root}" -B "${build_dir}" -G Ninja
    -DCMAKE_BUILD_TYPE=Release -DCTXEXEC_BUILD_TESTS=OFF
    -DCTXEXEC_INSTALL=OFF -DCTXEXEC_BUILD_EXAMPLES=ON)
  if command -v ccache >/dev/null 2>&1; then
    configure_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  log "configure (${build_dir})"
  cmake --no-warn-unused-cli "${configure_args[@]}" >/dev/null
  targets=(ctxexec_load)
  build_targets="$(cmake --build "${build_dir}" --target help)"
  if grep -q '^ctxexec_demo:' <<<"${build_targets}"; then
    targets+=(ctxexec_demo)
  fi
  log "build ${targets[*]}"
  cmake --build "${build_dir}" --target "${targets[@]}"
  load_bin="${load_bin:-${build_dir}/benchmarks/load/ctxexec_load}"
  demo_bin="${demo_bin:-${build_dir}/examples/server/ctxexec_demo}"
fi
[ -x "${load_bin}" ] || die "no ctxexec_load binary ('${load_bin}')"
if [ -z "${demo_bin}" ] || [ "${demo_bin}" = none ] || [ ! -x "${demo_bin}" ]; then
  log "note: no ctxexec_demo in this tree: everything runs on the FastAPI peer"
  demo_bin=""
  servers=(fastapi)
fi
if [ -z "${demo_bin}" ] || { [ "${smoke}" != 1 ] && [[ " ${servers[*]} " == *" fastapi "* ]]; }; then
  "${python}" -c 'import fastapi, uvicorn, uvloop, httptools, httpx' 2>/dev/null ||
    die "${python} lacks FastAPI/uvicorn/uvloop/httptools/httpx: run scripts/install-deps.sh"
fi

mkdir -p "${results}"
rm -f "${results}"/*.json "${results}"/*.metrics "${results}"/*.out \
  "${results}"/*.err "${results}"/*.txt "${results}"/report.md
: >"${results}/exits.txt"

# --- Servers -----------------------------------------------------------------

declare -A server_pid=()
declare -A server_url=()

cleanup() {
  # Load clients still running (after a failure), then the servers.
  local job
  for job in $(jobs -p); do
    kill -KILL "${job}" 2>/dev/null || true
  done
  for name in "${!server_pid[@]}"; do
    kill -KILL "${server_pid[${name}]}" 2>/dev/null || true
  done
}
trap cleanup EXIT

# start_server NAME KIND [flags...]: starts server KIND (ctxexec, plain,
# fastapi, or ctxexec1: ctxexec_demo --threads=1, one loop as uvicorn's
# single worker has), waits for its first line "listening on http://127.0.0.1:PORT",
# and records its pid and URL.
start_server() {
  local name="$1" kind="$2"
  shift 2
  local out="${results}/${name}.out" err="${results}/${name}.err"
  local -a cmd
  case "${kind}" in
    ctxexec) cmd=("${demo_bin}") ;;
    ctxexec1) cmd=("${demo_bin}" --threads=1) ;;
    plain) cmd=("${demo_bin}" --plain) ;;
    fastapi) cmd=("${python}" "${peers_dir}/fastapi_app.py") ;;
  esac
  cmd+=(--port=0 --tokens="${tokens}" --db-pool="${tokens}" "$@")
  : >"${out}"
  "${cmd[@]}" >"${out}" 2>"${err}" &
  server_pid[${name}]=$!
  for _ in $(seq 300); do
    [ "$(wc -l <"${out}")" -ge 1 ] && break
    kill -0 "${server_pid[${name}]}" 2>/dev/null || break
    sleep 0.05
  done
  local first
  first="$(head -n1 "${out}")"
  if [[ ! "${first}" =~ ^listening\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
    tail -n 20 "${err}" >&2 || true
    die "${name} (${cmd[*]}): first line '${first}', not 'listening on http://127.0.0.1:PORT'"
  fi
  server_url[${name}]="${BASH_REMATCH[1]}"
  echo "${name}: ${cmd[*]} -> ${server_url[${name}]}" >&2
}

# stop_server NAME: SIGTERM, at most 30 s to exit, the exit status recorded
# in exits.txt; a server that needs SIGKILL or exits non-zero fails the job.
stop_server() {
  local name="$1" pid="${server_pid[$1]}" rc=0
  if ! kill -TERM "${pid}" 2>/dev/null; then
    wait "${pid}" || rc=$?
    unset "server_pid[${name}]"
    echo "${name} exited-early ${rc}" >>"${results}/exits.txt"
    die "${name} ended before its SIGTERM (exit ${rc}; stderr: ${results}/${name}.err)"
  fi
  for _ in $(seq 300); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "${pid}" 2>/dev/null; then
    kill -KILL "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
    echo "${name} killed" >>"${results}/exits.txt"
    unset "server_pid[${name}]"
    die "${name} did not exit within 30 s of SIGTERM"
  fi
  wait "${pid}" || rc=$?
  unset "server_pid[${name}]"
  echo "${name} ${rc}" >>"${results}/exits.txt"
  [ "${rc}" = 0 ] || die "${name} exited ${rc} after SIGTERM (stderr: ${results}/${name}.err)"
}

# scrape URL FILE [settle]: GET URL/metrics into FILE. With "settle", once
# the server is idle: scrapes again (10 s at most) until at most one request
# scope is open (the scrape's own) and every registered cleanup has run,
# since cleanups run after the response that the client already has.
scrape() {
  "${python}" - "$1" "${3:-}" >"$2" <<'PY' || echo "# scrape failed" >"$2"
import re, sys, time, urllib.request
url, settle = sys.argv[1] + "/metrics", sys.argv[2] == "settle"
deadline = time.monotonic() + 10
def total(text, suffix):
    return sum(float(v) for v in re.findall(
        r"^\w*" + suffix + r"(?:\{[^}]*\})? (\S+)$", text, re.M))
while True:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    if not settle or time.monotonic() > deadline or (
            total(text, "scopes_open") <= 1 and
            total(text, "cleanups_run_total") >=
            total(text, "cleanups_registered_total")):
        break
    time.sleep(0.1)
sys.stdout.write(text)
PY
}

# load NAME URL CONNECTIONS SECONDS MIX [flags...]: ctxexec_load, its JSON
# in NAME.json, after DEMO_WARMUP unmeasured seconds (load_warm: after W).
load() { load_warm "${warmup}" "$@"; }
load_warm() {
  local warm="$1" name="$2" url="$3" conns="$4" secs="$5" load_mix="$6"
  shift 6
  local total
  total="$(awk -v a="${secs}" -v b="${warm}" 'BEGIN { print a + b }')"
  timeout 600 "${load_bin}" --url="${url}" --connections="${conns}" \
    --duration="${total}" --warmup="${warm}" --mix="${load_mix}" \
    --label="${name}" --output="${results}/${name}.json" "$@" ||
    die "ctxexec_load failed for ${name}"
}

# --- 2. The propagation report: gateway -> backend ---------------------------

report_kind=ctxexec
[ -n "${demo_bin}" ] || report_kind=fastapi
log "propagation report: ${report_kind} gateway -> backend, ${connections} connections, ${report_seconds} s"
start_server backend "${report_kind}"
start_server gateway "${report_kind}" --upstream="${server_url[backend]}"
load report "${server_url[gateway]}" "${connections}" "${report_seconds}" "${mix}" &
load_pid=$!
sleep "$(awk -v a="${report_seconds}" -v b="${warmup}" 'BEGIN { print b + a / 2 }')"
scrape "${server_url[gateway]}" "${results}/report-gateway-mid.metrics"
scrape "${server_url[backend]}" "${results}/report-backend-mid.metrics"
wait "${load_pid}" || die "the report's load failed"
scrape "${server_url[gateway]}" "${results}/report-gateway-end.metrics" settle
scrape "${server_url[backend]}" "${results}/report-backend-end.metrics" settle
stop_server gateway
stop_server backend

report_args=(--results "${results}" --report-kind "${report_kind}"
  --connections "${connections}" --report-seconds "${report_seconds}"
  --seconds "${seconds}" --warmup "${warmup}" --tokens "${tokens}"
  --block-connections "${block_connections}" --block-rate "${block_rate}"
  --rounds "${rounds}" --repeats "${repeats}")

if [ "${smoke}" = 1 ]; then
  "${python}" "${peers_dir}/demo_report.py" "${report_args[@]}" --smoke
  exit 0
fi

# --- 3. The comparison -------------------------------------------------------

sync_connections=$((tokens + 10))
for kind in "${servers[@]}"; do
  log "comparison: ${kind}"
  start_server "${kind}" "${kind}"
  url="${server_url[${kind}]}"
  # Is the loop ever blocked? /async?ms=0 at a steady rate alone, then
  # beside /sync?ms=200 on 10 more connections than tokens (all tokens
  # busy, some waiting), which starts first and ends last.
  load "block-${kind}-unloaded" "${url}" "${block_connections}" "${seconds}" \
    '/async?ms=0' --rate="${block_rate}"
  load "block-${kind}-sync" "${url}" "${sync_connections}" \
    "$(awk -v a="${seconds}" 'BEGIN { print a + 1 }')" '/sync?ms=200' &
  sync_pid=$!
  sleep 0.5
  load "block-${kind}-loaded" "${url}" "${block_connections}" "${seconds}" \
    '/async?ms=0' --rate="${block_rate}" &
  load_pid=$!
  sleep "$(awk -v a="${seconds}" -v b="${warmup}" 'BEGIN { print b + a / 2 }')"
  scrape "${url}" "${results}/block-${kind}-mid.metrics"
  wait "${load_pid}" || die "the loop check's load failed"
  wait "${sync_pid}" || die "the loop check's /sync load failed"
  for conns in "${sweep[@]}"; do
    for route in async sync; do
      for repeat in $(seq "${repeats}"); do
        load "cmp-${kind}-${route}-${conns}-${repeat}" "${url}" "${conns}" \
          "${seconds}" "/${route}?ms=0"
      done
    done
  done
  if command -v wrk >/dev/null 2>&1; then
    wrk_seconds="$(awk -v a="${seconds}" -v b="${warmup}" 'BEGIN { printf "%d", a + b + 0.999 }')"
    for route in async sync; do
      timeout 600 wrk -t1 -c200 -d"${wrk_seconds}s" --latency \
        "${url}/${route}?ms=0" >"${results}/wrk-${kind}-${route}.txt" 2>&1 ||
        echo "wrk failed" >>"${results}/wrk-${kind}-${route}.txt"
    done
  fi
  scrape "${url}" "${results}/cmp-${kind}-end.metrics"
  stop_server "${kind}"
done

# The 3% goal is finer than this machine's noise between two runs: ctxexec
# and --plain side by side, /async?ms=0 at 200 connections in short
# alternated rounds (the report takes the median of the rounds' ratios).
if [[ " ${servers[*]} " == *" ctxexec "* && " ${servers[*]} " == *" plain "* ]]; then
  log "ctxexec against --plain: ${rounds} alternated rounds"
  start_server pair-ctxexec ctxexec
  start_server pair-plain plain
  for round in $(seq "${rounds}"); do
    for kind in ctxexec plain; do
      load_warm 0.2 "pair-${kind}-${round}" "${server_url[pair-${kind}]}" \
        200 "${pair_seconds}" '/async?ms=0'
    done
  done
  stop_server pair-ctxexec
  stop_server pair-plain
fi

# --- 4. Report, table, goals, chart ------------------------------------------

chart_args=()
if [ -n "${chart}" ]; then
  [[ "${chart}" = /* ]] || chart="${repo_root}/${chart}"
  chart_args=(--chart "${chart}")
fi
"${python}" "${peers_dir}/demo_report.py" "${report_args[@]}" \
  --servers "${servers[@]}" --sweep "${sweep[@]}" "${chart_args[@]}"
