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
// Timeouts saturate (core/time.h): none or Duration::max() means no limit;
// zero, negative and Duration::min() mean "already past": run() cancels the
// task and throws TimeoutError (after the blocking runner has run its cleanup).
//
// A Reactor::stop() of a runner's reactor never stops the runner. The threaded
// and host runners ignore it (the threaded runner resumes its loop). The
// blocking runner's run() and EventualResult::wait() consume it: a stop() made
// before or during the call ends the call with LoopStopped (run() cancels the
// task and runs its cleanup first, as after a timeout; wait() leaves the work
// going), and the runner serves the next call normally.
//
// fork: a runner belongs to the process that made it. In a forked child, run()
// and submit() on an inherited runner (and wait()/cancel() on its results)
// throw UsageError; destroying it never blocks and never touches the parent's
// loop: what the child cannot release safely (a loop thread that does not exist
// there, state it may have been using) is abandoned until the child exits or
// execs. Make a new runner in the child.
//
// Background work: every built-in runner owns a root group (runners/root_group.h).
// weft::start_background("name", task), called inside a task the runner runs, starts work
// that outlives the call (a ticker, a server) and belongs to the runner: its failure is
// reported to the reactor's error handler with its name, and a runner shutting down cancels
// it and waits for it, bounded by RunnerOptions::shutdown_timeout (kDefaultShutdownTimeout);
// the names of what did not finish by then are reported the same way.
//
// Context: run() and submit() carry the calling thread's context variables
// (core/context.h) into the task; a set() inside the task stays in it, never reaching the
// calling thread or the next call.
//
// Threading: each runner states its own rule; see its header. Calling run()
// from inside a task or callback of the runner's own loop throws UsageError
// instead of deadlocking. Lifetime: destroying a runner stops its loop; results
// still pending fail with RunnerShutDown.
#ifndef WEFT_RUNNERS_RUNNER_H_
#define WEFT_RUNNERS_RUNNER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include "weft/core/detail/fork_generation.h"
#include "weft/core/detail/recycler.h"
#include "weft/core/task.h"
#include "weft/core/time.h"
#include "weft/runners/detail/driven_run.h"
#include "weft/runners/eventual_result.h"

namespace weft {

class Reactor;

// How long a runner shutting down waits for its cancelled background work to finish, unless
// RunnerOptions::shutdown_timeout says otherwise: long enough for cleanup that awaits (a
// goodbye sent in a shield), short enough that a stuck task cannot hold a program's exit.
inline constexpr Duration kDefaultShutdownTimeout = std::chrono::seconds(5);

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
  // Customization point: starts the submitted task on the loop. Call
  // `std::move(task).start_on(reactor, link)` on the loop thread (or, before the loop first
  // runs, on the thread that owns it), with a ReactorLink (runners/detail/reactor_link.h) that
  // the runner severs before destroying the reactor: the result's cancel() goes through it. The
  // task completes its result itself; dropping it unstarted (the runner is going away) fails
  // the result with RunnerShutDown, so nothing waits forever.
  virtual void start(detail::SubmittedTask task) = 0;
  // Customization point: how waiters on this runner's results make progress.
  // Null (the default) when another thread runs the loop. A runner that gives one is driven by
  // its callers: run() then skips start() and puts the task on reactor() itself, on the
  // calling thread, with no shared state (runners/detail/driven_run.h), and drives the loop
  // until the task has ended, its cleanup included after a timeout or a stop.
  virtual detail::EventualDriver* driver() { return nullptr; }
  // Customization point: the thread that runs the loop, if it is fixed (threaded: its own;
  // host: the host's). Blocking waits on it are refused with UsageError.
  virtual std::thread::id loop_thread() const { return {}; }

  // True in a child process forked after this runner was made; then the runner
  // must not touch its loop, its threads or its locks (see "fork" above).
  bool inherited_through_fork() const { return fork_generation_ != detail::fork_generation(); }
  // Throws UsageError in such a child.
  void check_not_forked() const {
    if (inherited_through_fork()) [[unlikely]] {
      throw_inherited();
    }
  }

 private:
  template <typename T>
  T run_driven(detail::EventualDriver& driver, Task<T> task, std::optional<Duration> timeout);
  [[noreturn]] void throw_run_timeout(Duration timeout);
  [[noreturn]] void throw_run_stopped();
  [[noreturn]] void throw_inherited() const;

  const std::uint32_t fork_generation_ = (detail::watch_forks(), detail::fork_generation());
};

template <typename T>
EventualResult<T> Runner::submit(Task<T> task) {
  check_not_forked();
  if (!task.valid()) [[unlikely]] {
    detail::throw_empty_task("Runner::run()/submit()");
  }
  // One block: the result's state is also the task's context (runners/detail/eventual_state.h).
  auto state = std::allocate_shared<detail::EventualState<T>>(
      detail::RecyclingAllocator<detail::EventualState<T>>(), &reactor(), loop_thread(), driver(),
      std::move(task));
  EventualResult<T> result(state);
  start(detail::SubmittedTask(std::move(state)));
  return result;
}

template <typename T>
T Runner::run(Task<T> task, std::optional<Duration> timeout) {
  if (detail::EventualDriver* driver = this->driver()) {
    return run_driven(*driver, std::move(task), timeout);
  }
  EventualResult<T> result = submit(std::move(task));
  if (!result.state_->wait(timeout)) {
    result.cancel();  // its loop finishes the cancellation in the background
    throw_run_timeout(*timeout);
  }
  return result.state_->result();
}

template <typename T>
T Runner::run_driven(detail::EventualDriver& driver, Task<T> task,
                     std::optional<Duration> timeout) {
  check_not_forked();
  if (!task.valid()) [[unlikely]] {
    detail::throw_empty_task("Runner::run()/submit()");
  }
  detail::DrivenRun<T> run(reactor(), std::move(task));
  try {
    driver.drive(run.done(), detail::deadline_after(timeout));
  } catch (const LoopStopped&) {
    // run() does not leave its task behind: cancel it and let its cleanup run, as after a
    // timeout. A second stop() during the cleanup ends that wait too (LoopStopped again).
    run.cancel();
    driver.drive(run.done(), std::nullopt);
    throw_run_stopped();
  }
  if (!run.ready()) {
    run.cancel();
    driver.drive(run.done(), std::nullopt);
    throw_run_timeout(*timeout);
  }
  return run.result();
}

}  // namespace weft

#endif  // WEFT_RUNNERS_RUNNER_H_
