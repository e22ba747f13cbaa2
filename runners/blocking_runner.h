// BlockingRunner: run-until-complete on the caller's thread (asyncio.run,
// IPython's trio and curio loop runners).
//
// run(task) drives the reactor on the calling thread until the task finishes,
// then returns; the loop does not run between calls. The same runner and
// reactor serve any number of calls (unlike Twisted's reactor, which cannot be
// restarted). Tasks spawned in the background during one call are paused
// between calls and carry on during the next, as with IPython's trio and curio
// runners. submit(task) starts nothing by itself: the task runs when the loop
// next runs, i.e. during a later run() or a wait() on its EventualResult (which
// drives the loop). run(task, timeout) cancels the task at the timeout and
// keeps driving the loop until the task's cleanup has run, then throws
// TimeoutError.
//
// Background work (weft::start_background, runners/root_group.h) lives on the runner's
// reactor like any spawned task: it runs during calls (run(), and wait() on a result) and is
// paused between them, carrying on during the next call, whichever it is. The destructor
// cancels it and drives the loop on the destroying thread until it has finished its cleanup
// or `shutdown_timeout` has passed, then reports what did not finish to the reactor's error
// handler and destroys it with the reactor. (Destroyed inside another running weft loop,
// where it cannot drive its own, it cancels and reports without waiting.)
//
// Threading: one thread at a time (the thread calling run() owns the reactor
// during the call). Calling run() or wait() from inside any running weft loop
// on this thread throws UsageError: co_await the task instead. Lifetime:
// destroying the runner destroys its reactor and the tasks still in it; their
// EventualResults fail with RunnerShutDown.
#ifndef WEFT_RUNNERS_BLOCKING_RUNNER_H_
#define WEFT_RUNNERS_BLOCKING_RUNNER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string_view>

#include "weft/core/reactor.h"
#include "weft/core/time.h"
#include "weft/runners/detail/reactor_link.h"
#include "weft/runners/root_group.h"
#include "weft/runners/runner.h"

namespace weft {

class BlockingRunner final : public Runner, private detail::EventualDriver {
 public:
  // Runs on `reactor`, which it owns; waits up to `shutdown_timeout` for background work
  // when destroyed.
  explicit BlockingRunner(std::unique_ptr<Reactor> reactor,
                          Duration shutdown_timeout = kDefaultShutdownTimeout);
  ~BlockingRunner() override;

  std::string_view name() const override { return "blocking"; }
  Reactor& reactor() override { return *reactor_; }

 protected:
  void start(detail::SubmittedTask task) override;
  detail::EventualDriver* driver() override { return this; }

 private:
  void drive(const std::atomic<bool>& done, std::optional<TimePoint> deadline) override;

  std::unique_ptr<Reactor> reactor_;
  std::shared_ptr<detail::ReactorLink> link_;  // for cancellers, which may outlive the runner
  std::unique_ptr<RootGroup> root_;            // destroyed before the reactor
  const Duration shutdown_timeout_;
};

}  // namespace weft

#endif  // WEFT_RUNNERS_BLOCKING_RUNNER_H_
