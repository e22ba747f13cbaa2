#include "bench/pair.h"

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

void register_one(const std::string& op, const std::string& backend, const Side& side,
                  const Settings& settings) {
  benchmark::internal::Benchmark* bench =
      benchmark::RegisterBenchmark((op + "/" + backend + "/" + side.name).c_str(),
                                   [fn = side.fn](benchmark::State& state) { fn(state); });
  if (settings) settings(bench);
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
