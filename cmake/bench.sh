#!/usr/bin/env bash
# Builds in Release, runs weft_bench (every backend and runner beside the raw library: each pair
# registered together, 9 repetitions in random interleaved order) and writes docs/benchmarks.md
# and docs/benchmarks.svg from them, naming the commit measured. About 15 minutes on 2 CPUs.
# Extra arguments go to weft_bench, e.g. cmake/bench.sh --benchmark_filter=call_soon
# BENCH_BUILD_DIR=dir uses an already configured Release build directory instead of the preset's.
# BENCH_BASE=earlier.json makes the report from that run's rows, replaced by this run's where both
# have a row of the same name (so a filtered run refreshes some rows of a full report); the
# report names each run's commit and load.
# BENCH_PIN=N runs pinned to CPU N (taskset -c N), as the report's single-threaded rows are
# (bench/results/README.md); the results record it.
# The runs behind the committed report are kept in bench/results/ (README there): to publish a
# refreshed report, add this run's results.json there, compressed, beside the report.
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
# This run overwrites $results: keep an earlier one given as the base.
base=${BENCH_BASE:-}
if [[ -n $base && $(realpath -m "$base") == $(realpath -m "$results") ]]; then
  cp "$base" "$build/bench/results.base.json"
  base=$build/bench/results.base.json
fi
# The load average every 20 s during the run, for the report (the machine may be shared).
loads=$build/bench/load_during.txt
: >"$loads"
(while :; do cut -d' ' -f1 /proc/loadavg >>"$loads"; sleep 20; done) &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
context="commit=$commit,repetitions=$repetitions,bench_args=$args"
pin=()
if [[ -n ${BENCH_PIN:-} ]]; then
  pin=(taskset -c "$BENCH_PIN")
  context+=",pinned=taskset -c $BENCH_PIN"
fi
"${pin[@]}" "$build"/bench/weft_bench --benchmark_repetitions=$repetitions \
  --benchmark_enable_random_interleaving=true --benchmark_min_time=0.05 \
  --benchmark_context="$context" \
  --benchmark_out="$results" --benchmark_out_format=json "$@"
kill $sampler 2>/dev/null || true
# The load during the run, the kernel and the libraries' versions go with the results, so that
# the report made from them later, elsewhere, describes the machine that ran them.
python3 - "$results" "$loads" <<'EOF'
import json, platform, statistics, sys
sys.dont_write_bytecode = True
sys.path.insert(0, "bench")
from report import installed_packages
results, loads = sys.argv[1], sys.argv[2]
data = json.load(open(results))
samples = [float(x) for x in open(loads).read().split()]
if samples:
    data["context"]["load_during"] = (f"{min(samples):.1f}-{max(samples):.1f}, median "
                                      f"{statistics.median(samples):.1f} ({len(samples)} samples)")
data["context"]["kernel"] = f"{platform.system()} {platform.release()}"
data["context"]["packages"] = installed_packages()
json.dump(data, open(results, "w"), indent=1)
EOF
python3 bench/report.py ${base:+"$base"} "$results" docs/benchmarks.md docs/benchmarks.svg
echo "wrote docs/benchmarks.md and docs/benchmarks.svg"
