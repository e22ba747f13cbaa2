#include "core/sleep.h"

#include "core/errors.h"
#include "core/reactor.h"

namespace weft {

bool SleepAwaiter::suspend(std::coroutine_handle<> handle, detail::TaskContext& context) {
  if (context.take_pending_cancel()) {
    cancelled_ = true;
    return false;
  }
  handle_ = handle;
  context_ = &context;
  Reactor& reactor = *context.reactor;
  if (delay_ <= Duration::zero()) {
    reactor.call_soon([this] {
      suspended_ = false;
      context_->clear_cancel_hook();
      handle_.resume();
    });
  } else {
    timer_ = reactor.call_later(delay_, [this] {
      suspended_ = false;
      context_->clear_cancel_hook();
      handle_.resume();
    });
  }
  suspended_ = true;
  context.set_cancel_hook(&SleepAwaiter::cancel, this);
  return true;
}

void SleepAwaiter::cancel(void* self_ptr) {
  auto* self = static_cast<SleepAwaiter*>(self_ptr);
  self->cancelled_ = true;
  // A yield (no timer) is already queued to resume; a sleep resumes from the
  // next turn.
  if (self->timer_.cancel()) {
    self->context_->reactor->call_soon([self] {
      self->suspended_ = false;
      self->handle_.resume();
    });
  }
}

void SleepAwaiter::await_resume() const {
  if (cancelled_) throw Cancelled();
}

SleepAwaiter::~SleepAwaiter() {
  // Destroyed while suspended: the reactor is tearing the task down.
  if (suspended_) {
    timer_.cancel();
    context_->clear_cancel_hook();
  }
}

}  // namespace weft
