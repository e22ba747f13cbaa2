#!/usr/bin/env bash
# Builds in Release, runs weft_bench (every backend and runner beside the raw library: each pair
# registered together, 9 repetitions in random interleaved order) and writes docs/benchmarks.md
# and docs/benchmarks.svg from them, naming the commit measured. About 15 minutes on 2 CPUs.
# Extra arguments go to weft_bench, e.g. cmake/bench.sh --benchmark_filter=call_soon
# BENCH_BUILD_DIR=dir uses an already configured Release build directory instead of the preset's.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake/install-deps.sh
command -v python3 >/dev/null || { sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo;
  $sudo apt-get install -y -q python3; }
build=${BENCH_BUILD_DIR:-build/release}
if [[ -z ${BENCH_BUILD_DIR:-} ]]; then
  cmake --preset release >/dev/null
fi
cmake --build "$build" --target weft_bench
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit+local changes"
fi
results=$build/bench/results.json
repetitions=9
# Google Benchmark's --benchmark_context takes key=value pairs separated by commas.
args=$*
args=${args//[=,]/ }
"$build"/bench/weft_bench --benchmark_repetitions=$repetitions \
  --benchmark_enable_random_interleaving=true --benchmark_min_time=0.05 \
  --benchmark_context="commit=$commit,repetitions=$repetitions,bench_args=$args" \
  --benchmark_out="$results" --benchmark_out_format=json "$@"
python3 bench/report.py "$results" docs/benchmarks.md docs/benchmarks.svg
echo "wrote docs/benchmarks.md and docs/benchmarks.svg"
