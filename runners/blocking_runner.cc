#include "runners/blocking_runner.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/spawn.h"

namespace weft {

BlockingRunner::BlockingRunner(std::unique_ptr<Reactor> reactor)
    : reactor_(std::move(reactor)), link_(std::make_shared<detail::ReactorLink>(reactor_.get())) {}

BlockingRunner::~BlockingRunner() { link_->sever(); }

void BlockingRunner::start(Task<void> task, std::shared_ptr<detail::EventualStateBase> state) {
  // cancel() may come from any thread; the Deferred belongs to the loop thread.
  state->set_canceller(detail::cancel_through(link_, spawn(*reactor_, std::move(task))));
}

void BlockingRunner::drive(detail::EventualStateBase& state, std::optional<TimePoint> deadline) {
  if (Reactor* running = Reactor::current()) {
    throw UsageError(
        absl::StrCat("weft: the blocking runner cannot run inside the running loop "
                     "of reactor '",
                     running->name(), "'; co_await the task instead"));
  }
  // A no-op timer wakes the loop at the deadline.
  TimerHandle alarm;
  if (deadline) alarm = reactor_->call_at(*deadline, [] {});
  while (!state.ready() && (!deadline || Clock::now() < *deadline)) {
    reactor_->run_once(/*may_block=*/true);
  }
  alarm.cancel();
}

void BlockingRunner::after_timeout(detail::EventualStateBase& state) { drive(state, std::nullopt); }

}  // namespace weft
