// Cancel reasons: a task cancelled for a reason other than a cancel() call (a deadlock on
// virtual time, core/virtual_clock.h) reports that reason, not Cancelled, to whoever collects
// its outcome (its Deferred, a runner's EventualResult). Inside the task the cancellation looks
// like any other (Cancelled at the await, cleanup runs); the places that deliver a task's outcome
// call apply_cancel_reason() on the exception that ended it.
//
// Threading: the task's loop thread.
#ifndef WEFT_CORE_DETAIL_CANCEL_REASON_H_
#define WEFT_CORE_DETAIL_CANCEL_REASON_H_

#include <coroutine>
#include <exception>

#include "weft/core/detail/exception_text.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/errors.h"
#include "weft/core/task.h"

namespace weft::detail {

// `co_await CurrentTaskContext{}`: the TaskContext of the awaiting task, without suspending.
struct CurrentTaskContext {
  TaskContext* context = nullptr;
  bool await_ready() const noexcept { return false; }
  template <WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) noexcept {
    context = handle.promise().context();
    return false;
  }
  TaskContext* await_resume() const noexcept { return context; }
};

// Replaces a Cancelled that ended a task cancelled for a reason with that reason.
inline void apply_cancel_reason(const TaskContext* context, std::exception_ptr& error) {
  if (error != nullptr && context != nullptr && context->cancel_reason != nullptr &&
      holds<Cancelled>(error)) {
    error = context->cancel_reason;
  }
}

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_CANCEL_REASON_H_
