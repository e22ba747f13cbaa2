// Runner registry: runners by name, and the process-wide current runner
// (IPython's
// `%autoawait NAME`).
//
// "blocking" and "threaded" (and "host", for a reactor the host drives) are
// built in; users add their own with register_runner(). make_runner(name) makes
// one on a backend chosen by name. The current runner is what weft::run(task)
// uses: set it by name with set_current_runner(), else it is made on first use
// from $WEFT_RUNNER and $WEFT_BACKEND, else the defaults.
//
// Threading: every function is thread-safe. The current runner lives until
// set_current_runner() replaces it or the process exits (then it shuts down
// like any runner).
#ifndef WEFT_RUNNERS_RUNNER_REGISTRY_H_
#define WEFT_RUNNERS_RUNNER_REGISTRY_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "weft/core/task.h"
#include "weft/core/time.h"
#include "weft/runners/runner.h"

namespace weft {

struct RunnerOptions {
  std::string backend = {};  // backend name for make_reactor(); empty: the default backend
  // For runners that run inside the host's loop ("host"): the host's reactor and the thread
  // that drives it.
  Reactor* host = nullptr;
  std::thread::id host_thread = {};
  // How long the runner, shutting down, waits for its cancelled background work
  // (weft::start_background, runners/root_group.h) to finish before reporting what is left
  // to the reactor's error handler by name. Duration::max(): as long as it takes.
  Duration shutdown_timeout = kDefaultShutdownTimeout;
  // The clock the runner's reactor reads time from, by name (core/clock.h): empty or "steady"
  // for real time, "virtual" for virtual time with autojump (core/virtual_clock.h; reach it
  // with VirtualClock::of(runner->reactor())). The host runner runs on the host's reactor,
  // whose clock the host chose: a name here must match it.
  std::string clock = {};
};

struct RunnerInfo {
  std::string name = {};     // what make_runner() takes
  std::string summary = {};  // one line for listings
  int preference = 100;      // lower sorts first; the first is the default
  bool needs_host = false;   // make_runner() needs RunnerOptions::host
  std::function<std::unique_ptr<Runner>(const RunnerOptions&)> factory = {};
};

// Adds a runner. Throws UsageError if the name is taken or the factory is
// empty.
void register_runner(RunnerInfo info);
// Every registered runner, by preference then name.
std::vector<RunnerInfo> available_runners();
// $WEFT_RUNNER if set, else the first of available_runners(). Not checked: see
// find_runner().
std::string default_runner_name();
// The registry entry for `name` (empty: default_runner_name()). Throws
// UnknownNameError, listing the registered names (and naming $WEFT_RUNNER if
// the name came from it), for a name that is not registered.
RunnerInfo find_runner(std::string_view name = {});
// Makes a runner; an empty name means default_runner_name(). Throws
// UnknownNameError, listing the registered names, for an unknown runner (or
// backend).
std::unique_ptr<Runner> make_runner(std::string_view name = {}, const RunnerOptions& options = {});

// Replaces the current runner with a new one made by make_runner(name,
// options). The previous one shuts down (its pending results fail with
// RunnerShutDown).
void set_current_runner(std::string_view name, const RunnerOptions& options = {});
// The current runner, made from the defaults on first use. Do not keep the
// reference across a set_current_runner() call.
Runner& current_runner();

// Runs `task` on the current runner.
template <typename T>
T run(Task<T> task, std::optional<Duration> timeout = std::nullopt) {
  return current_runner().run(std::move(task), timeout);
}

}  // namespace weft

#endif  // WEFT_RUNNERS_RUNNER_REGISTRY_H_
