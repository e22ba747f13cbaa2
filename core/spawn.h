// spawn(): starts a Task on a reactor and returns its result as a Deferred
// (Twisted's ensureDeferred, asyncio's create_task).
//
// The task starts in the reactor's next turn, never inside spawn(). Its
// Deferred fires when the task finishes: with its value, or with the exception
// that escaped it. Cancelling the Deferred cancels the task: a task that has
// not started never runs its body and fails with weft::Cancelled; a started
// task is woken at its current weft await with weft::Cancelled, and every later
// await raises Cancelled too (level-triggered; cleanup that must await runs in a
// shielded CancelScope, core/cancel_scope.h); the Deferred fires when it
// finishes.
//
// Context: the task starts with the context variables current at the spawn()
// call (core/context.h); wrap the call in Context::root().run(...) to start it
// clean. A spawned task is not a child of the spawner: cancelling the spawner
// does not cancel it unless the spawner awaits its Deferred. For work that must
// not outlive its starter, use a TaskGroup (core/task_group.h).
//
// Threading: loop thread only (or before the reactor first runs). To start a
// task from another thread, use a Runner (runners/) or call spawn() inside
// call_from_thread(). Lifetime: the reactor owns the running task; destroying
// the reactor destroys unfinished tasks (see ~Reactor). Dropping the returned
// Deferred does not cancel the task.
#ifndef WEFT_CORE_SPAWN_H_
#define WEFT_CORE_SPAWN_H_

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/core/deferred.h"
#include "weft/core/detail/cancel_reason.h"
#include "weft/core/detail/recycler.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/task.h"

namespace weft {
namespace detail {

// The coroutine at the bottom of every spawned task: owns the TaskContext,
// starts the Task, fires the Deferred, and frees itself when done.
class RootTask {
 public:
  class promise_type : public RecycledFrame {
   public:
    template <typename T>
    promise_type(Reactor& reactor, Task<T>&, Deferred<T>& deferred)
        : deferred_(&deferred.state_for_detail()) {
      context_.root = std::coroutine_handle<promise_type>::from_promise(*this);
      TaskTracker::attach(reactor, context_);
    }
    ~promise_type() {
      // The canceller points at context_, which dies with this frame.
      deferred_->set_cancel_function(nullptr, nullptr);
      TaskTracker::detach(*context_.reactor, context_);
    }
    RootTask get_return_object() noexcept {
      return RootTask(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the body catches everything
    TaskContext* context() noexcept { return &context_; }

   private:
    TaskContext context_;
    DeferredStateBase* deferred_;
  };

  std::coroutine_handle<promise_type> handle() const { return handle_; }

 private:
  explicit RootTask(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  std::coroutine_handle<promise_type> handle_;
};

// Throws Cancelled if the task was cancelled before it started. Returns the task's context.
struct StartGate {
  TaskContext* context = nullptr;
  bool cancelled = false;
  bool await_ready() const noexcept { return false; }
  template <WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) noexcept {
    context = handle.promise().context();
    cancelled = context->cancelled();
    return false;
  }
  TaskContext* await_resume() const {
    if (cancelled) throw Cancelled();
    return context;
  }
};

template <typename T>
RootTask run_root(Reactor&, Task<T> task_parameter, Deferred<T> deferred) {
  // A local, not the parameter: if the reactor destroys this frame, locals die before the
  // promise (which holds the TaskContext that the task's awaiters and scopes unhook from),
  // parameter copies after it.
  Task<T> task = std::move(task_parameter);
  std::exception_ptr error;
  const TaskContext* context = nullptr;  // known once started
  if constexpr (std::is_void_v<T>) {
    try {
      context = co_await StartGate{};
      co_await std::move(task);
    } catch (...) {
      error = std::current_exception();
    }
    if (deferred.called()) co_return;  // fired by hand; nothing more to say
    apply_cancel_reason(context, error);
    if (error) {
      deferred.errback(error);
    } else {
      deferred.callback();
    }
  } else {
    std::optional<T> value;
    try {
      context = co_await StartGate{};
      value.emplace(co_await std::move(task));
    } catch (...) {
      error = std::current_exception();
    }
    if (deferred.called()) co_return;
    apply_cancel_reason(context, error);
    if (error) {
      deferred.errback(error);
    } else {
      deferred.callback(std::move(*value));
    }
  }
}

}  // namespace detail

template <typename T>
Deferred<T> spawn(Reactor& reactor, Task<T> task) {
  Deferred<T> deferred;
  detail::RootTask root = detail::run_root(reactor, std::move(task), deferred);
  detail::TaskContext* context = root.handle().promise().context();
  context->vars = detail::current_context();
  deferred.state_for_detail().set_cancel_function(
      [](void* task) { static_cast<detail::TaskContext*>(task)->request_cancel(); }, context);
  detail::NoContext no_capture;  // the task's context is installed when it starts
  reactor.call_soon([context, handle = root.handle()] { context->resume(handle); });
  return deferred;
}

}  // namespace weft

#endif  // WEFT_CORE_SPAWN_H_
