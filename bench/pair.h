// Registering a weft row together with its raw baselines, so that a pair always runs under the
// same settings, next to each other in the listing, and (with cmake/bench.sh's
// --benchmark_enable_random_interleaving) interleaved with each other's repetitions.
//
// A row is named <operation>/<backend>/<side>. <side> is "weft", "raw" (the library doing the
// same mechanism as weft: the denominator of the weft/raw ratio in docs/benchmarks.md) or
// "raw_<idiom>" (another idiom of the same library for the same job, shown beside it so that no
// ratio rests on one weak baseline). bench/report.py pairs rows by these names.
//
// Two ways to use it:
//  * a file holding both sides of its rows calls register_rows() (or register_pair() with the
//    raw sides given) from a function passed to at_startup();
//  * a raw file (raw_<library>.cc) adds its sides with add_raw() at static initialization, and
//    weft's side registers with register_pair(op, backend, weft_fn): every raw side added for
//    (op, backend) is registered right after weft's. Raw sides nobody paired are registered at
//    the end, alone.
// Registration happens in main(), after static initialization: backends register themselves
// from static objects, so available_backends() is complete only then.
//
// Threading: main thread, before the benchmarks run.
#ifndef WEFT_BENCH_PAIR_H_
#define WEFT_BENCH_PAIR_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"

namespace weft::bench {

using BenchFn = std::function<void(benchmark::State&)>;
// Applied to every side of a row: UseRealTime(), Unit(...), Iterations(...), ...
using Settings = std::function<void(benchmark::internal::Benchmark*)>;

struct Side {
  std::string name;  // "weft", "raw", "raw_<idiom>"
  BenchFn fn;
};

// Adds a raw side of <op>/<library> (static initialization is fine). Returns true, for
// `const bool registered = add_raw(...)`.
bool add_raw(const std::string& op, const std::string& library, const std::string& side,
             BenchFn fn);

// Registers <op>/<backend>/<side> for each of `sides`, consecutively, each with `settings`.
void register_rows(const std::string& op, const std::string& backend,
                   const std::vector<Side>& sides, const Settings& settings = {});

// Registers <op>/<backend>/weft, then the raw sides add_raw() collected for (op, backend), then
// `extra` sides, all with `settings`.
void register_pair(const std::string& op, const std::string& backend, BenchFn weft,
                   const Settings& settings = {}, const std::vector<Side>& extra = {});

// Queues `fn` to run from main() (see above). Returns true, for static initializers.
bool at_startup(void (*fn)());

// main(): runs the queued registrations, then registers raw sides left unpaired.
void run_registrations();

}  // namespace weft::bench

#endif  // WEFT_BENCH_PAIR_H_
