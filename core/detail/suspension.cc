#include "weft/core/detail/suspension.h"

#include "weft/core/errors.h"
#include "weft/core/reactor.h"

namespace weft::detail {

bool Suspension::begin(std::coroutine_handle<> handle, TaskContext& context,
                       bool (*on_cancel)(Suspension&)) {
  if (context.cancelled()) {
    cancelled_ = true;
    return false;
  }
  handle_ = handle;
  context_ = &context;
  on_cancel_ = on_cancel;
  suspended_ = true;
  context.set_cancel_hook(&Suspension::cancel, this);
  return true;
}

void Suspension::abort_begin() {
  suspended_ = false;
  context_->clear_cancel_hook();
}

void Suspension::resume_now() {
  suspended_ = false;
  context_->clear_cancel_hook();
  context_->resume(handle_);
}

void Suspension::cancel(void* self_ptr) {
  auto* self = static_cast<Suspension*>(self_ptr);
  self->cancelled_ = true;
  if (self->on_cancel_(*self)) {
    // The task's own context is installed when it resumes.
    TaskTracker::call_soon(
        *self->context_->reactor,
        [](void* suspension, void*) { static_cast<Suspension*>(suspension)->resume_now(); }, self,
        nullptr);
  }
}

void Suspension::await_resume() const {
  if (cancelled_) throw Cancelled();
}

Suspension::~Suspension() {
  if (suspended_) context_->clear_cancel_hook();
}

}  // namespace weft::detail
