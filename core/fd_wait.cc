#include "weft/core/fd_wait.h"

#include "weft/core/reactor.h"

namespace weft {

bool FdWaitAwaiter::suspend(std::coroutine_handle<> handle, detail::TaskContext& context) {
  if (!begin(handle, context, &FdWaitAwaiter::stop)) return false;
  auto on_ready = [this] {
    watch_.cancel();  // one-shot; safe from the watcher's own callback
    resume_now();
  };
  Reactor& reactor = *context.reactor;
  detail::NoContext root;  // resume_now() installs the task's context
  try {
    watch_ =
        writable_ ? reactor.watch_writable(fd_, on_ready) : reactor.watch_readable(fd_, on_ready);
  } catch (...) {
    abort_begin();  // the error leaves the co_await
    throw;
  }
  return true;
}

bool FdWaitAwaiter::stop(detail::Suspension& self) {
  static_cast<FdWaitAwaiter&>(self).watch_.cancel();
  return true;
}

FdWaitAwaiter::~FdWaitAwaiter() {
  if (suspended()) watch_.cancel();
}

}  // namespace weft
