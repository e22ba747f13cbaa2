// weft_bench: every backend and runner beside the raw library doing the same work.
//
// Google Benchmark's own flags apply (--benchmark_filter, --benchmark_format=json,
// --benchmark_repetitions, ...). Rows are named <operation>/<backend>/<weft|raw>;
// bench/report.py pairs them into docs/benchmarks.md. WEFT_BENCH_ITERATIONS=N runs each row
// exactly N iterations (bench/pair.cc), for bench/instructions.py's instruction counts.
#include <sys/resource.h>

#include <cstdio>

#include "bench/pair.h"
#include "benchmark/benchmark.h"

int main(int argc, char** argv) {
#ifndef NDEBUG
  std::fprintf(stderr,
               "weft_bench: WARNING: this is not an optimized build (NDEBUG unset); its figures "
               "mean nothing. Build with the release preset (cmake/bench.sh does).\n");
#endif
  // fd_turn_idle10000 needs ~30,000 descriptors (weft watches its own duplicate of each).
  // Raise the hard limit too where allowed (root, CAP_SYS_RESOURCE); else up to the hard limit.
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    const rlimit wanted{65536, 65536};
    if (limit.rlim_max >= wanted.rlim_max || setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
      limit.rlim_cur = limit.rlim_max;
      setrlimit(RLIMIT_NOFILE, &limit);
    }
  }
  weft::bench::run_registrations();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
