// ThreadedRunner: the reactor lives on a thread the runner owns and keeps
// running between calls (Crochet's setup(), with wait_for and run_in_reactor).
//
// Background work started by one call (a ticker, a server) keeps running while
// the caller does other things and is still running at the next call. run(task,
// timeout) blocks the calling thread until the task finishes; past the timeout
// it cancels the task in the loop and throws TimeoutError at once (the
// cancellation and its cleanup proceed on the loop thread). submit(task)
// returns an EventualResult at once; waiting on it with a timeout does not
// cancel.
//
// Background work (weft::start_background, runners/root_group.h) runs on the loop thread
// between calls. The destructor cancels it and keeps the loop running until it has finished
// its cleanup or `shutdown_timeout` has passed, then reports what did not finish to the
// reactor's error handler and destroys it with the reactor.
//
// Threading: run(), submit() and the EventualResults are safe from any thread,
// many at once. A blocking wait on the loop thread itself (from inside a task
// or callback of this runner) throws UsageError instead of deadlocking.
// reactor() is for call_from_thread()/stop() only from other threads; a stop()
// of the reactor does not stop the runner (it resumes the loop). Lifetime: the
// destructor stops the loop, destroys the reactor on its own thread and joins
// it (after the background work, bounded); results still pending fail with
// RunnerShutDown, so no waiter is left blocked. Do not call the runner concurrently with its
// destruction. An exception out of the native loop is reported to the reactor's error handler and
// the loop goes on.
//
// fork: the loop thread does not exist in a forked child. There, run(),
// submit() and wait() throw UsageError (never a hang or a TimeoutError), and
// the destructor returns at once: it abandons the thread and the reactor (their
// memory stays with the child until it exits or execs) without joining,
// locking or touching the parent's loop.
#ifndef WEFT_RUNNERS_THREADED_RUNNER_H_
#define WEFT_RUNNERS_THREADED_RUNNER_H_

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "weft/core/backend_registry.h"
#include "weft/core/reactor.h"
#include "weft/core/time.h"
#include "weft/runners/detail/reactor_link.h"
#include "weft/runners/root_group.h"
#include "weft/runners/runner.h"

namespace weft {

class ThreadedRunner final : public Runner {
 public:
  // Starts the loop thread with a reactor on `backend` (empty: the default).
  // Throws UnknownNameError for an unknown backend, or what making the reactor
  // throws, after joining the thread. The destructor waits up to
  // `shutdown_timeout` for background work.
  // `clock`: where the reactor reads time (core/clock.h; null: steady_clock).
  explicit ThreadedRunner(std::string_view backend = {},
                          Duration shutdown_timeout = kDefaultShutdownTimeout,
                          std::unique_ptr<ReactorClock> clock = nullptr);
  // The same on a backend given by its registry entry, registered or not.
  explicit ThreadedRunner(BackendInfo backend, Duration shutdown_timeout = kDefaultShutdownTimeout,
                          std::unique_ptr<ReactorClock> clock = nullptr);
  ~ThreadedRunner() override;

  std::string_view name() const override { return "threaded"; }
  Reactor& reactor() override { return *reactor_; }
  std::thread::id loop_thread() const override { return thread_.get_id(); }

 protected:
  void start(detail::SubmittedTask task) override;

 private:
  void loop();

  std::unique_ptr<Reactor> reactor_;
  std::shared_ptr<detail::ReactorLink> link_;  // for cancellers, which may outlive the runner
  // Made by the constructor once the reactor exists; shut down and destroyed by the loop
  // thread, before the reactor.
  std::unique_ptr<RootGroup> root_;
  const Duration shutdown_timeout_;
  std::atomic<bool> shutting_down_{false};
  // Set by the destructor once its stop() has returned: only then may the loop
  // thread destroy the reactor (stop() must not race the destructor of the
  // object it is called on).
  std::mutex shutdown_mu_;
  std::condition_variable shutdown_cv_;
  bool stop_delivered_ = false;
  std::thread thread_;
};

}  // namespace weft

#endif  // WEFT_RUNNERS_THREADED_RUNNER_H_
