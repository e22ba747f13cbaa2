// TaskContext: what every coroutine of one spawned task shares: the reactor it
// runs on, the cancellation state, and its place in the reactor's list of live
// tasks.
//
// Cancellation is delivered once, at the await where the task is suspended
// (asyncio's and Twisted's rule, not trio's level-triggered one), so cleanup
// code may itself co_await. An awaiter that can be cancelled registers a hook
// while it is suspended; request_cancel() calls that hook, or, if the task is
// running or not yet started, leaves the request pending for the next weft
// await.
//
// Threading: loop thread only.
#ifndef WEFT_CORE_DETAIL_TASK_CONTEXT_H_
#define WEFT_CORE_DETAIL_TASK_CONTEXT_H_

#include <coroutine>

namespace weft {
class Reactor;
}

namespace weft::detail {

struct TaskContext {
  using CancelHook = void (*)(void* awaiter);

  Reactor* reactor = nullptr;

  void request_cancel() {
    if (cancel_hook_ != nullptr) {
      CancelHook hook = cancel_hook_;
      cancel_hook_ = nullptr;
      hook(cancel_arg_);
    } else {
      cancel_pending_ = true;
    }
  }
  // Called by an awaiter before suspending: true (and the request consumed) if
  // a cancellation is pending, in which case the awaiter must not suspend and
  // must throw Cancelled.
  bool take_pending_cancel() {
    const bool pending = cancel_pending_;
    cancel_pending_ = false;
    return pending;
  }
  void set_cancel_hook(CancelHook hook, void* awaiter) {
    cancel_hook_ = hook;
    cancel_arg_ = awaiter;
  }
  void clear_cancel_hook() { cancel_hook_ = nullptr; }

  // The reactor's intrusive list of live (spawned, unfinished) tasks, and the
  // root coroutine frame to destroy if the reactor is destroyed first.
  TaskContext* prev = nullptr;
  TaskContext* next = nullptr;
  std::coroutine_handle<> root;

 private:
  CancelHook cancel_hook_ = nullptr;
  void* cancel_arg_ = nullptr;
  bool cancel_pending_ = false;
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_TASK_CONTEXT_H_
