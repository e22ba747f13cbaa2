#!/usr/bin/env bash
# Builds in Release, runs weft_bench (every backend and runner beside the raw library, with
# repetitions) and writes docs/benchmarks.md and docs/benchmarks.svg from the medians.
# Extra arguments go to weft_bench, e.g. cmake/bench.sh --benchmark_filter=call_soon
set -euo pipefail
cd "$(dirname "$0")/.."
cmake/install-deps.sh
command -v python3 >/dev/null || { sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo;
  $sudo apt-get install -y -q python3; }
cmake --preset release >/dev/null
cmake --build --preset release
results=build/release/bench/results.json
build/release/bench/weft_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.1 --benchmark_out="$results" --benchmark_out_format=json "$@"
python3 bench/report.py "$results" docs/benchmarks.md docs/benchmarks.svg
echo "wrote docs/benchmarks.md and docs/benchmarks.svg"
