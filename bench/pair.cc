#include "bench/pair.h"

#include <cstdlib>
#include <map>
#include <tuple>

namespace weft::bench {
namespace {

struct RawSide {
  std::string side;
  BenchFn fn;
  bool registered = false;
};

// Function-local statics: raw files add to them during static initialization, in any order.
std::map<std::pair<std::string, std::string>, std::vector<RawSide>>& raw_sides() {
  static auto* sides = new std::map<std::pair<std::string, std::string>, std::vector<RawSide>>();
  return *sides;
}
std::vector<void (*)()>& startup() {
  static auto* fns = new std::vector<void (*)()>();
  return *fns;
}

// WEFT_BENCH_ITERATIONS=N runs every row exactly N iterations, once, with no calibration runs
// (bench/instructions.py counts a row's instructions at two values of N and takes the
// difference, which leaves out everything a row does outside its loop). 0: unset.
benchmark::IterationCount fixed_iterations() {
  static const benchmark::IterationCount n = [] {
    const char* text = std::getenv("WEFT_BENCH_ITERATIONS");
    return text == nullptr ? 0 : std::strtoll(text, nullptr, 10);
  }();
  return n;
}

void register_one(const std::string& op, const std::string& backend, const Side& side,
                  const Settings& settings) {
  const benchmark::IterationCount fixed = fixed_iterations();
  benchmark::internal::Benchmark* bench = benchmark::RegisterBenchmark(
      (op + "/" + backend + "/" + side.name).c_str(),
      [fn = side.fn, fixed](benchmark::State& state) {
        fn(state);
        // With fixed iterations, also say how many items one iteration processed (a batch of
        // callbacks, 10,000 spawns): SetItemsProcessed() keeps the total in this counter, and
        // the rate it is reported as depends on which clock the row uses.
        auto items = state.counters.find("items_per_second");
        if (fixed > 0 && items != state.counters.end() && state.iterations() > 0) {
          state.counters["items_per_iteration"] =
              benchmark::Counter(items->second.value / static_cast<double>(state.iterations()));
        }
      });
  if (settings) settings(bench);
  if (fixed > 0) bench->Iterations(fixed);
}

}  // namespace

bool add_raw(const std::string& op, const std::string& library, const std::string& side,
             BenchFn fn) {
  raw_sides()[{op, library}].push_back(RawSide{side, std::move(fn)});
  return true;
}

void register_rows(const std::string& op, const std::string& backend,
                   const std::vector<Side>& sides, const Settings& settings) {
  for (const Side& side : sides) register_one(op, backend, side, settings);
}

void register_pair(const std::string& op, const std::string& backend, BenchFn weft,
                   const Settings& settings, const std::vector<Side>& extra) {
  register_one(op, backend, Side{"weft", std::move(weft)}, settings);
  auto it = raw_sides().find({op, backend});
  if (it != raw_sides().end()) {
    for (RawSide& raw : it->second) {
      register_one(op, backend, Side{raw.side, raw.fn}, settings);
      raw.registered = true;
    }
  }
  for (const Side& side : extra) register_one(op, backend, side, settings);
}

bool at_startup(void (*fn)()) {
  startup().push_back(fn);
  return true;
}

void run_registrations() {
  for (void (*fn)() : startup()) fn();
  for (auto& [key, sides] : raw_sides()) {
    for (RawSide& raw : sides) {
      if (!raw.registered) register_one(key.first, key.second, Side{raw.side, raw.fn}, {});
      raw.registered = true;
    }
  }
}

}  // namespace weft::bench
