#!/usr/bin/env bash
# Installs, on Debian 12, whatever the ctxexec build, tests, benchmarks and
# the demo (scripts/demo.sh: the FastAPI peer on uvicorn, wrk, gnuplot for
# the chart) need and the machine lacks. Does nothing when everything is
# present.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev ccache git
  libboost1.81-dev libboost-json1.81-dev libabsl-dev libgtest-dev
  libbenchmark-dev libspdlog-dev
  python3 nodejs
  python3-fastapi python3-uvicorn python3-uvloop python3-httptools python3-httpx
  wrk gnuplot-nox
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# A node from elsewhere on PATH serves as well as Debian's.
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
read -r -a missing <<<"${missing[*]}"

if ((${#missing[@]} == 0)); then
  echo "install-deps: nothing to install"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
