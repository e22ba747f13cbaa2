#include "weft/core/sleep.h"

#include "weft/core/reactor.h"

namespace weft {

bool SleepAwaiter::suspend(std::coroutine_handle<> handle, detail::TaskContext& context) {
  if (!begin(handle, context, &SleepAwaiter::stop)) return false;
  Reactor& reactor = *context.reactor;
  if (delay_ <= Duration::zero()) {
    // resume_now() installs the task's context.
    detail::TaskTracker::call_soon(
        reactor, [](void* self, void*) { static_cast<SleepAwaiter*>(self)->resume_now(); }, this,
        nullptr);
  } else {
    detail::NoContext root;  // resume_now() installs the task's context
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
