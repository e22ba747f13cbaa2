// Task<T>: a lazy coroutine returning T, awaited with co_await (Python's `async
// def`).
//
// A Task does nothing until it is awaited by another task or started by spawn()
// (or a Runner), which gives it the reactor it runs on. `co_await
// std::move(task)` runs it to completion and returns its value or rethrows its
// exception. Nested awaits use symmetric transfer, so a deep chain of awaits
// does not grow the stack. Inside a task, weft's awaitables (sleep(), Deferred,
// wait_readable(), ...) find the reactor themselves: no reactor argument is
// needed.
//
// Cancellation: a task shares one cancellation state with everything it awaits,
// through the spawned root (core/spawn.h) and the cancel scopes it opens
// (core/cancel_scope.h). A cancellation wakes the task at its current weft await
// with weft::Cancelled and is level-triggered: every later weft await inside the
// cancelled scope raises Cancelled too, until the scope is left (cleanup that
// must await runs in a shield). Awaiting a Task is not itself a cancellation
// point; the awaits inside it are.
//
// Threading: a task runs on its reactor's loop thread only. A Task object may
// be created on any thread and handed over before it starts. Destroying an
// unstarted Task destroys its frame.
#ifndef WEFT_CORE_TASK_H_
#define WEFT_CORE_TASK_H_

#include <cassert>
#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/core/detail/recycler.h"
#include "weft/core/detail/task_context.h"

namespace weft {

template <typename T = void>
class Task;

namespace detail {

class TaskPromiseBase : public RecycledFrame {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      // A Task runs because something awaited it (its continuation) or because spawn() started
      // it, and then its Deferred takes the outcome.
      TaskPromiseBase& promise = self.promise();
      if (promise.continuation_) [[likely]] {
        return promise.continuation_;
      }
      return promise.context_->spawned->finished(*promise.context_);
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  // The spawned task this coroutine belongs to (set when it is awaited).
  TaskContext* context() const noexcept { return context_; }

  // For the owner of a root frame (a spawned task, core/spawn.h; a runner's submitted task):
  // makes this frame the root of `context`, which the context's SpawnedRoot ends; and, once it
  // has finished, its error (null if it returned).
  void adopt_as_root(TaskContext& context) noexcept { context_ = &context; }
  std::exception_ptr& error() noexcept { return error_; }

 protected:
  template <typename>
  friend class weft::Task;
  std::coroutine_handle<> continuation_;
  TaskContext* context_ = nullptr;
  std::exception_ptr error_;
};

template <typename T>
class TaskPromise : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <typename U>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }
  T take() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  // For a root frame's owner: the value, once it has returned one.
  std::optional<T>& value() noexcept { return value_; }

 private:
  std::optional<T> value_;
};

template <>
class TaskPromise<void> : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (error_) std::rethrow_exception(error_);
  }
};

// Anything weft can await from: its promise exposes the task's context.
template <typename Promise>
concept WeftPromise = requires(Promise& promise) {
  { promise.context() } -> std::same_as<TaskContext*>;
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Task {
  static_assert(!std::is_reference_v<T>, "Task<T&> is not supported; return a value or pointer");

 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  ~Task() {
    if (handle_) handle_.destroy();
  }

  // False for a moved-from Task.
  bool valid() const noexcept { return static_cast<bool>(handle_); }

  // For spawn(): gives up the frame to the caller.
  std::coroutine_handle<promise_type> release_for_detail() && noexcept {
    return std::exchange(handle_, {});
  }

  class Awaiter {
   public:
    bool await_ready() const noexcept { return false; }
    template <detail::WeftPromise Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> parent) noexcept {
      promise_type& promise = handle_.promise();
      promise.context_ = parent.promise().context();
      promise.continuation_ = parent;
      return handle_;
    }
    T await_resume() { return handle_.promise().take(); }

   private:
    friend class Task;
    explicit Awaiter(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
    std::coroutine_handle<promise_type> handle_;
  };

  // Runs the task to completion; the Task keeps owning (and later frees) the
  // frame.
  Awaiter operator co_await() && noexcept {
    assert(handle_ && "co_await on an empty Task");
    return Awaiter(handle_);
  }

 private:
  friend class detail::TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  std::coroutine_handle<promise_type> handle_;
};

namespace detail {
template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace weft

#endif  // WEFT_CORE_TASK_H_
