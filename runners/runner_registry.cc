#include "runners/runner_registry.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/backend_registry.h"
#include "core/errors.h"
#include "runners/blocking_runner.h"
#include "runners/host_runner.h"
#include "runners/threaded_runner.h"

namespace weft {
namespace {

void sort_runners(std::vector<RunnerInfo>& runners) {
  std::stable_sort(runners.begin(), runners.end(), [](const RunnerInfo& a, const RunnerInfo& b) {
    return a.preference != b.preference ? a.preference < b.preference : a.name < b.name;
  });
}

std::vector<RunnerInfo> builtin_runners() {
  std::vector<RunnerInfo> runners;
  runners.push_back(RunnerInfo{
      .name = "blocking",
      .summary = "run-until-complete on the caller's thread; the loop pauses "
                 "between calls",
      .preference = 10,
      .factory = [](const RunnerOptions& options) -> std::unique_ptr<Runner> {
        return std::make_unique<BlockingRunner>(make_reactor(options.backend));
      },
  });
  runners.push_back(RunnerInfo{
      .name = "threaded",
      .summary = "the loop runs on its own thread and keeps background work "
                 "going between calls",
      .preference = 20,
      .factory = [](const RunnerOptions& options) -> std::unique_ptr<Runner> {
        return std::make_unique<ThreadedRunner>(options.backend);
      },
  });
  runners.push_back(RunnerInfo{
      .name = "host",
      .summary = "runs inside a loop the host application owns (RunnerOptions::host)",
      .preference = 30,
      .needs_host = true,
      .factory = [](const RunnerOptions& options) -> std::unique_ptr<Runner> {
        if (options.host == nullptr) {
          throw UsageError(
              "weft: the host runner runs inside the host application's loop: pass its reactor "
              "as RunnerOptions::host (see docs/embedding.md)");
        }
        return std::make_unique<HostRunner>(*options.host, options.host_thread);
      },
  });
  sort_runners(runners);
  return runners;
}

struct Registry {
  std::mutex mu;
  std::vector<RunnerInfo> runners ABSL_GUARDED_BY(mu) = builtin_runners();
};

Registry& registry() {
  static Registry* const instance = new Registry;  // never destroyed: used during exit too
  return *instance;
}

// The current runner. Destroyed at exit, which shuts a threaded runner's thread
// down cleanly.
struct Current {
  std::mutex mu;
  std::unique_ptr<Runner> runner ABSL_GUARDED_BY(mu);
};

Current& current() {
  static Current instance;
  return instance;
}

}  // namespace

void register_runner(RunnerInfo info) {
  if (info.name.empty() || !info.factory) {
    throw UsageError("weft: register_runner needs a name and a factory");
  }
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (const RunnerInfo& existing : r.runners) {
    if (existing.name == info.name) {
      throw UsageError(absl::StrCat("weft: runner '", info.name, "' is already registered"));
    }
  }
  r.runners.push_back(std::move(info));
  sort_runners(r.runners);
}

std::vector<RunnerInfo> available_runners() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  return r.runners;
}

std::string default_runner_name() {
  if (const char* env = std::getenv("WEFT_RUNNER"); env != nullptr && *env != '\0') return env;
  return available_runners().front().name;
}

std::unique_ptr<Runner> make_runner(std::string_view name, const RunnerOptions& options) {
  const bool from_env = name.empty() && std::getenv("WEFT_RUNNER") != nullptr;
  const std::string chosen = name.empty() ? default_runner_name() : std::string(name);
  std::vector<RunnerInfo> runners = available_runners();
  for (const RunnerInfo& info : runners) {
    if (info.name == chosen) return info.factory(options);
  }
  throw UnknownNameError(absl::StrCat(
      "weft: unknown runner '", chosen, "'", from_env ? " (from WEFT_RUNNER)" : "",
      "; available: ", absl::StrJoin(runners, ", ", [](std::string* out, const RunnerInfo& info) {
        out->append(info.name);
      })));
}

void set_current_runner(std::string_view name, const RunnerOptions& options) {
  std::unique_ptr<Runner> fresh = make_runner(name, options);
  std::unique_ptr<Runner> old;
  {
    std::lock_guard lock(current().mu);
    old = std::exchange(current().runner, std::move(fresh));
  }
  // `old` shuts down here, outside the lock.
}

Runner& current_runner() {
  std::lock_guard lock(current().mu);
  if (current().runner == nullptr) current().runner = make_runner();
  return *current().runner;
}

}  // namespace weft
