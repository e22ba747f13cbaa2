// Runner: runs coroutine tasks for synchronous code (IPython's loop_runner,
// Crochet's wait_for / run_in_reactor).
//
// Every runner offers the same two calls. run(task, timeout) blocks until the
// task finishes and returns its value or rethrows its exception; past the
// timeout the task is cancelled and run() throws TimeoutError (Crochet's
// wait_for). submit(task) starts the task and returns an EventualResult at once
// (Crochet's run_in_reactor). Runners differ in who drives the loop: "blocking"
// drives it on the caller's thread only while a call is in progress, "threaded"
// keeps it running on a thread of its own, "host" runs inside a loop the host
// application owns. Pick one by name with make_runner()
// (runners/runner_registry.h).
//
// Threading: each runner states its own rule; see its header. Calling run()
// from inside a task or callback of the runner's own loop throws UsageError
// instead of deadlocking. Lifetime: destroying a runner stops its loop; results
// still pending fail with RunnerShutDown.
#ifndef WEFT_RUNNERS_RUNNER_H_
#define WEFT_RUNNERS_RUNNER_H_

#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include "core/task.h"
#include "core/time.h"
#include "runners/eventual_result.h"

namespace weft {

class Reactor;

class Runner {
 public:
  virtual ~Runner() = default;

  // The registry name: "blocking", "threaded", "host", ...
  virtual std::string_view name() const = 0;
  // The reactor the tasks run on. Use only its thread-safe members
  // (call_from_thread, stop) unless you are on its loop thread.
  virtual Reactor& reactor() = 0;

  template <typename T>
  T run(Task<T> task, std::optional<Duration> timeout = std::nullopt);

  template <typename T>
  EventualResult<T> submit(Task<T> task);

 protected:
  // Customization point: starts `task` on the loop. The task completes its
  // state itself; it is the runner's job to make the task run, to install a
  // canceller on `state` (callable from any thread), and to make sure nothing
  // waits forever if the runner shuts down.
  virtual void start(Task<void> task, std::shared_ptr<detail::EventualStateBase> state) = 0;
  // Customization point: how waiters on this runner's results make progress.
  // Null (the default) when another thread runs the loop.
  virtual detail::EventualDriver* driver() { return nullptr; }
  // Customization point: the thread that runs the loop, if it is fixed (threaded: its own;
  // host: the host's). Blocking waits on it are refused with UsageError.
  virtual std::thread::id loop_thread() const { return {}; }
  // Customization point: called by run() after a timeout has cancelled the
  // task. The default returns at once (the loop finishes the cancellation in
  // the background); the blocking runner drives its loop until the task has
  // finished its cleanup.
  virtual void after_timeout(detail::EventualStateBase& /*state*/) {}

 private:
  [[noreturn]] void throw_run_timeout(Duration timeout);
};

template <typename T>
EventualResult<T> Runner::submit(Task<T> task) {
  auto state = std::make_shared<detail::EventualState<T>>(&reactor(), loop_thread(), driver());
  start(detail::deliver(std::move(task), detail::ShutdownGuard<T>(state)), state);
  return EventualResult<T>(std::move(state));
}

template <typename T>
T Runner::run(Task<T> task, std::optional<Duration> timeout) {
  EventualResult<T> result = submit(std::move(task));
  if (!result.state_->wait(timeout)) {
    result.cancel();
    after_timeout(*result.state_);
    throw_run_timeout(*timeout);
  }
  return result.wait();
}

}  // namespace weft

#endif  // WEFT_RUNNERS_RUNNER_H_
