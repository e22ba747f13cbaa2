#include "core/fd_wait.h"

#include "core/errors.h"
#include "core/reactor.h"

namespace weft {

bool FdWaitAwaiter::suspend(std::coroutine_handle<> handle, detail::TaskContext& context) {
  if (context.take_pending_cancel()) {
    cancelled_ = true;
    return false;
  }
  handle_ = handle;
  context_ = &context;
  auto on_ready = [this] {
    watch_.cancel();
    suspended_ = false;
    context_->clear_cancel_hook();
    handle_.resume();
  };
  Reactor& reactor = *context.reactor;
  watch_ =
      writable_ ? reactor.watch_writable(fd_, on_ready) : reactor.watch_readable(fd_, on_ready);
  suspended_ = true;
  context.set_cancel_hook(&FdWaitAwaiter::cancel, this);
  return true;
}

void FdWaitAwaiter::cancel(void* self_ptr) {
  auto* self = static_cast<FdWaitAwaiter*>(self_ptr);
  self->cancelled_ = true;
  self->watch_.cancel();
  self->context_->reactor->call_soon([self] {
    self->suspended_ = false;
    self->handle_.resume();
  });
}

void FdWaitAwaiter::await_resume() const {
  if (cancelled_) throw Cancelled();
}

FdWaitAwaiter::~FdWaitAwaiter() {
  if (suspended_) {
    watch_.cancel();
    context_->clear_cancel_hook();
  }
}

}  // namespace weft
