// wait_readable() / wait_writable(): suspend the current task until an fd is
// ready.
//
// `co_await weft::wait_readable(fd)` resumes the task when fd is readable
// (one-shot: the watcher is removed before the task resumes). For an fd waited
// on in a tight loop, a persistent Reactor::watch_readable() costs fewer system
// calls. If the task is cancelled while waiting, the watcher is removed and the
// task resumes next turn with weft::Cancelled; a wait reached inside a cancelled
// scope raises Cancelled at once (level-triggered, core/cancel_scope.h). The errors of
// Reactor::watch_readable() (a second reader, an fd epoll cannot watch) are
// thrown from the co_await.
//
// Threading: inside a task, on its reactor's loop thread.
#ifndef WEFT_CORE_FD_WAIT_H_
#define WEFT_CORE_FD_WAIT_H_

#include <coroutine>

#include "weft/core/detail/suspension.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/task.h"
#include "weft/core/watch.h"

namespace weft {

class FdWaitAwaiter : public detail::Suspension {
 public:
  FdWaitAwaiter(int fd, bool writable) : fd_(fd), writable_(writable) {}
  ~FdWaitAwaiter();

  template <detail::WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    return suspend(handle, *handle.promise().context());
  }

 private:
  bool suspend(std::coroutine_handle<> handle, detail::TaskContext& context);
  static bool stop(detail::Suspension& self);

  int fd_;
  bool writable_;
  Watch watch_;
};

[[nodiscard]] inline FdWaitAwaiter wait_readable(int fd) { return FdWaitAwaiter(fd, false); }
[[nodiscard]] inline FdWaitAwaiter wait_writable(int fd) { return FdWaitAwaiter(fd, true); }

}  // namespace weft

#endif  // WEFT_CORE_FD_WAIT_H_
