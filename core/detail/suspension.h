// Suspension: what every cancellable weft awaiter (sleep, wait_readable, ...) shares.
//
// While the task is suspended, the awaiter is its task's cancel hook. It resumes the task either
// when its operation completes (resume_now(), called from the operation's callback) or, after a
// cancellation, in the reactor's next turn with weft::Cancelled, never inside the cancel()
// call. An await reached while the task's scope is cancelled (cancellation is level-triggered,
// see core/detail/task_context.h) raises Cancelled at once, without suspending.
//
// Derived awaiters schedule their operation's callback under detail::NoContext: the task's
// context variables are installed by resume_now(), so capturing them again would be waste.
//
// Threading: the task's loop thread only.
#ifndef WEFT_CORE_DETAIL_SUSPENSION_H_
#define WEFT_CORE_DETAIL_SUSPENSION_H_

#include <coroutine>

#include "weft/core/detail/task_context.h"

namespace weft::detail {

class Suspension {
 public:
  Suspension() = default;
  Suspension(const Suspension&) = delete;
  Suspension& operator=(const Suspension&) = delete;

  bool await_ready() const noexcept { return false; }
  // Throws Cancelled if the await ended in a cancellation.
  void await_resume() const;

 protected:
  // Destroyed while suspended (the reactor is tearing the task down): unhook. The derived
  // awaiter releases its own operation first.
  ~Suspension();

  // Starts suspending at `handle`; false (and the await ends in Cancelled) if a cancellation is
  // pending. `on_cancel` is called, on cancellation while suspended, to stop the operation; it
  // returns whether the task still needs resuming (false if the operation will resume it).
  bool begin(std::coroutine_handle<> handle, TaskContext& context, bool (*on_cancel)(Suspension&));
  // Undoes begin() when starting the operation failed (the exception then leaves co_await).
  void abort_begin();
  // The operation completed: unhook and resume the task now.
  void resume_now();

  bool suspended() const { return suspended_; }
  TaskContext& context() const { return *context_; }

 private:
  static void cancel(void* self);

  std::coroutine_handle<> handle_;
  TaskContext* context_ = nullptr;
  bool (*on_cancel_)(Suspension&) = nullptr;
  bool suspended_ = false;
  bool cancelled_ = false;
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_SUSPENSION_H_
