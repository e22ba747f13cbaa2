#include "weft/runners/blocking_runner.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"
#include "weft/runners/detail/abandoned.h"

namespace weft {

BlockingRunner::BlockingRunner(std::unique_ptr<Reactor> reactor, Duration shutdown_timeout)
    : reactor_(std::move(reactor)),
      link_(std::make_shared<detail::ReactorLink>(reactor_.get())),
      root_(std::make_unique<RootGroup>(*reactor_)),
      shutdown_timeout_(shutdown_timeout) {}

BlockingRunner::~BlockingRunner() {
  if (inherited_through_fork()) {
    // A forked child. The link is not severed: its lock may have been held by one of the
    // parent's threads at the fork, and no canceller can run here anyway (cancel() throws in
    // the child). The reactor follows the core rule (an inherited reactor may be destroyed),
    // unless a thread of the parent was inside run_once() at the fork: its state may be half
    // updated by a thread that does not exist here, so it is abandoned. So is the root group:
    // its registry's lock may have been held by one of the parent's threads.
    detail::abandon(root_);
    if (reactor_->is_running()) detail::abandon(reactor_);
    return;
  }
  if (Reactor::current() == nullptr) {
    root_->shut_down(shutdown_timeout_, name());
  } else {
    // Inside another running loop this thread cannot drive this one: cancel, and say what is
    // left (it is destroyed with the reactor).
    root_->close();
    root_->report_unfinished(Duration::zero(), name());
  }
  root_.reset();
  link_->sever();
}

void BlockingRunner::start(detail::SubmittedTask task) {
  std::move(task).start_on(*reactor_, link_);  // this thread owns the loop
}

void BlockingRunner::drive(const std::atomic<bool>& done, std::optional<TimePoint> deadline) {
  check_not_forked();
  if (Reactor* running = Reactor::current()) {
    throw UsageError(
        absl::StrCat("weft: the blocking runner cannot run inside the running loop "
                     "of reactor '",
                     running->name(), "'; co_await the task instead"));
  }
  // The deadline is real time (steady_clock), whatever the reactor's clock: on virtual time a
  // timer at it would never fire by itself while the task waits on an fd (the loop blocks in
  // the kernel, and autojump only moves time when nothing outside the loop could make work).
  // The alarm wakes the loop on real time without being work; released on every way out.
  Reactor::RealTimeAlarm alarm;
  if (deadline) alarm = reactor_->wake_at_real_time(*deadline);
  // run_once() neither consumes a pending stop() nor blocks while one is pending, so the stop
  // is taken here at every iteration: a loop that ignored it would spin.
  bool stopped = false;
  while (!done.load(std::memory_order_acquire)) {
    if (reactor_->take_stop_request()) {
      stopped = true;
      break;
    }
    if (deadline && Clock::now() >= *deadline) break;
    reactor_->run_once(/*may_block=*/true);
  }
  // A stop() made during the call was aimed at it, even if the work finished in the same turn:
  // it must not end the next call at once.
  if (reactor_->take_stop_request()) stopped = true;
  if (stopped && !done.load(std::memory_order_acquire)) {
    throw LoopStopped(
        "weft: blocking runner: the loop was stopped (Reactor::stop()) before the work "
        "finished; the work goes on during the next call");
  }
}

}  // namespace weft
