#include "weft/core/sleep.h"

#include "weft/core/reactor.h"

namespace weft {

bool SleepAwaiter::suspend(std::coroutine_handle<> handle, detail::TaskContext& context) {
  if (!begin(handle, context, &SleepAwaiter::stop)) return false;
  Reactor& reactor = *context.reactor;
  detail::NoContext root;  // resume_now() installs the task's context
  if (delay_ <= Duration::zero()) {
    reactor.call_soon([this] { resume_now(); });
  } else {
    timer_ = reactor.call_later(delay_, [this] { resume_now(); });
  }
  return true;
}

// A yield is already queued to resume the task; a sleep's timer is cancelled instead, and the
// task resumes (with Cancelled) in the next turn.
bool SleepAwaiter::stop(detail::Suspension& self) {
  return static_cast<SleepAwaiter&>(self).timer_.cancel();
}

SleepAwaiter::~SleepAwaiter() {
  if (suspended()) timer_.cancel();
}

}  // namespace weft
