// wait_readable() / wait_writable(): suspend the current task until an fd is
// ready.
//
// `co_await weft::wait_readable(fd)` resumes the task when fd is readable
// (one-shot: the watcher is removed before the task resumes). For an fd waited
// on in a tight loop, a persistent Reactor::watch_readable() costs fewer system
// calls. If the task is cancelled while waiting, the watcher is removed and the
// task resumes next turn with weft::Cancelled. The errors of
// Reactor::watch_readable() (a second reader, an fd epoll cannot watch) are
// thrown from the co_await.
//
// Threading: inside a task, on its reactor's loop thread.
#ifndef WEFT_CORE_FD_WAIT_H_
#define WEFT_CORE_FD_WAIT_H_

#include <coroutine>

#include "core/detail/task_context.h"
#include "core/task.h"
#include "core/watch.h"

namespace weft {

class FdWaitAwaiter {
 public:
  FdWaitAwaiter(int fd, bool writable) : fd_(fd), writable_(writable) {}
  FdWaitAwaiter(const FdWaitAwaiter&) = delete;
  FdWaitAwaiter& operator=(const FdWaitAwaiter&) = delete;
  ~FdWaitAwaiter();

  bool await_ready() const noexcept { return false; }
  template <detail::WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    return suspend(handle, *handle.promise().context());
  }
  void await_resume() const;

 private:
  bool suspend(std::coroutine_handle<> handle, detail::TaskContext& context);
  static void cancel(void* self);

  int fd_;
  bool writable_;
  std::coroutine_handle<> handle_;
  detail::TaskContext* context_ = nullptr;
  Watch watch_;
  bool suspended_ = false;
  bool cancelled_ = false;
};

[[nodiscard]] inline FdWaitAwaiter wait_readable(int fd) { return FdWaitAwaiter(fd, false); }
[[nodiscard]] inline FdWaitAwaiter wait_writable(int fd) { return FdWaitAwaiter(fd, true); }

}  // namespace weft

#endif  // WEFT_CORE_FD_WAIT_H_
