// sleep(): suspends the current task for a duration (asyncio.sleep, Twisted's
// deferLater).
//
// `co_await weft::sleep(100ms)` resumes the task no earlier than 100 ms later,
// from a timer on the task's own reactor: no reactor argument is needed. A zero
// or negative duration yields: the task resumes in the next turn, after the
// callbacks already queued. If the task is cancelled while sleeping, the timer
// is cancelled and the task resumes in the next turn with weft::Cancelled; a
// sleep reached inside a cancelled scope raises Cancelled at once (level-
// triggered, core/cancel_scope.h).
//
// Threading: inside a task, on its reactor's loop thread.
#ifndef WEFT_CORE_SLEEP_H_
#define WEFT_CORE_SLEEP_H_

#include <coroutine>

#include "weft/core/detail/suspension.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/task.h"
#include "weft/core/time.h"
#include "weft/core/timer_handle.h"

namespace weft {

class SleepAwaiter : public detail::Suspension {
 public:
  explicit SleepAwaiter(Duration delay) : delay_(delay) {}
  ~SleepAwaiter();

  template <detail::WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    return suspend(handle, *handle.promise().context());
  }

 private:
  bool suspend(std::coroutine_handle<> handle, detail::TaskContext& context);
  static bool stop(detail::Suspension& self);

  Duration delay_;
  TimerHandle timer_;
};

[[nodiscard]] inline SleepAwaiter sleep(Duration delay) { return SleepAwaiter(delay); }

}  // namespace weft

#endif  // WEFT_CORE_SLEEP_H_
