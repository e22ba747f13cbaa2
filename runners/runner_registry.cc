#include "weft/runners/runner_registry.h"

#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/core/backend_registry.h"
#include "weft/core/clock.h"
#include "weft/core/detail/named_registry.h"
#include "weft/core/errors.h"
#include "weft/core/virtual_clock.h"
#include "weft/runners/blocking_runner.h"
#include "weft/runners/host_runner.h"
#include "weft/runners/threaded_runner.h"

namespace weft {
namespace {

// The host's reactor already has its clock; a clock named in the options must be that one.
void check_host_clock(Reactor& host, const std::string& clock) {
  if (clock.empty()) return;
  const bool is_virtual = VirtualClock::find(host) != nullptr;
  const bool wants_virtual = make_clock(clock) != nullptr;  // also rejects unknown names
  if (is_virtual != wants_virtual) {
    throw UsageError(absl::StrCat("weft: the host runner runs on the host's reactor '", host.name(),
                                  "', which is on ", is_virtual ? "virtual" : "real",
                                  " time, not on the clock '", clock,
                                  "' asked for; make the host's reactor on that clock"));
  }
}

std::vector<RunnerInfo> builtin_runners() {
  std::vector<RunnerInfo> runners;
  runners.push_back(RunnerInfo{
      .name = "blocking",
      .summary = "run-until-complete on the caller's thread; the loop pauses "
                 "between calls",
      .preference = 10,
      .factory = [](const RunnerOptions& options) -> std::unique_ptr<Runner> {
        return std::make_unique<BlockingRunner>(
            make_reactor(options.backend, make_clock(options.clock)), options.shutdown_timeout);
      },
  });
  runners.push_back(RunnerInfo{
      .name = "threaded",
      .summary = "the loop runs on its own thread and keeps background work "
                 "going between calls",
      .preference = 20,
      .factory = [](const RunnerOptions& options) -> std::unique_ptr<Runner> {
        return std::make_unique<ThreadedRunner>(options.backend, options.shutdown_timeout,
                                                make_clock(options.clock));
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
        check_host_clock(*options.host, options.clock);
        return std::make_unique<HostRunner>(*options.host, options.host_thread,
                                            options.shutdown_timeout);
      },
  });
  return runners;
}

// Never destroyed: the current runner may be made during exit.
detail::NamedRegistry<RunnerInfo>& registry() {
  static auto* const instance =
      new detail::NamedRegistry<RunnerInfo>("runner", "WEFT_RUNNER", builtin_runners());
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

void register_runner(RunnerInfo info) { registry().add(std::move(info)); }

std::vector<RunnerInfo> available_runners() { return registry().all(); }

std::string default_runner_name() { return registry().default_name(); }

RunnerInfo find_runner(std::string_view name) { return registry().find(name); }

std::unique_ptr<Runner> make_runner(std::string_view name, const RunnerOptions& options) {
  return find_runner(name).factory(options);
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
