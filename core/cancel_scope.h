// CancelScope: a region of a task that can be cancelled as a unit, by hand or at a deadline,
// optionally shielded from cancellation outside it (trio's CancelScope, move_on_after,
// fail_after; asyncio.timeout; corral's timeout).
//
//   std::optional<Reply> reply = co_await weft::move_on_after(2s, fetch());  // nullopt: gave up
//   Reply reply = co_await weft::fail_after(2s, fetch());  // TimeoutError at the deadline
//   co_await weft::shield(flush());                        // not cancelled from outside
//
//   weft::CancelScope scope;            // by hand; the deadline may move while it is open
//   scope.set_deadline_after(5s);       //   (from this task or any other on the loop)
//   std::optional<Reply> reply = co_await scope.run(fetch());
//
// A scope covers the Task passed to run(), which runs in the awaiting task (no new task, no
// new frame besides the Task's own). Cancellation is level-triggered (docs/architecture.md,
// "Cancellation"): once a scope is cancelled, every weft await inside it raises
// weft::Cancelled, at once, until the Task returns to run(). run() then absorbs that
// Cancelled and returns nullopt (false for Task<void>) if this scope was cancelled and no
// enclosing scope is (an enclosing cancellation always wins: an inner timeout never
// swallows an outer cancel, asyncio's long-standing bug); otherwise the Cancelled goes on
// up. A Task that finishes despite a cancellation returns its value.
//
// Shield: a shielded scope is not cancelled by cancellation outside it (its own cancel() and
// deadline still apply). Cleanup that must await after a cancellation runs in one, ideally
// with its own deadline: CancelScope({.deadline = ..., .shield = true}).
//
// Completion contract: run()'s Task is started inside the co_await and its outcome returned
// exactly once, when it finishes. A deadline fires from a reactor timer, never early.
//
// Threading: loop thread only. A scope is entered once (run() twice throws UsageError).
// Lifetime: the scope must outlive its run(); destroying an open scope (its task's frame is
// being destroyed) leaves it silently.
#ifndef WEFT_CORE_CANCEL_SCOPE_H_
#define WEFT_CORE_CANCEL_SCOPE_H_

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/core/clock.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/errors.h"
#include "weft/core/task.h"
#include "weft/core/time.h"
#include "weft/core/timer_handle.h"

namespace weft {

// What a scope's run() returns: the Task's value, or nothing if the scope absorbed a
// cancellation (for Task<void>: true if it finished).
template <typename T>
using ScopeResult = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

namespace detail {
template <typename T, bool kFail>
class ScopeAwaiter;

// now + delay, saturating; a delay of zero or less is TimePoint::min(): "already past", which
// a scope applies at once (without reading the clock again).
inline TimePoint deadline_after(Duration delay) {
  return delay <= Duration::zero() ? TimePoint::min() : add_saturating(loop_time(), delay);
}
}  // namespace detail

class CancelScope {
 public:
  struct Options {
    TimePoint deadline = TimePoint::max();  // max: none
    bool shield = false;
  };

  CancelScope() = default;
  explicit CancelScope(Options options);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  // Runs `task` inside the scope: `co_await scope.run(task)` (see above).
  template <typename T>
  [[nodiscard]] detail::ScopeAwaiter<T, false> run(Task<T> task);

  // Cancels the scope: now if it is open (tasks suspended in it wake next turn with
  // Cancelled), or as soon as it is entered. Idempotent.
  void cancel();
  // True once cancel() was called or the deadline passed.
  bool cancel_called() const { return node_.cancelled; }
  // True if run() absorbed a Cancelled (it returned nullopt/false).
  bool cancelled_caught() const { return caught_; }
  // True if the scope was cancelled by its deadline rather than by cancel().
  bool deadline_expired() const { return deadline_expired_; }

  // The deadline (TimePoint::max(): none). A deadline in the past when the scope is entered
  // cancels it in the next turn (TimePoint::min(), and the *_after helpers given a delay of
  // zero or less: at once, so the first await inside raises). Moving it while the scope is
  // open re-arms the timer, earlier or later; moving it into the past cancels at once. Once
  // cancelled, a scope stays cancelled: moving the deadline later does not undo it.
  TimePoint deadline() const { return deadline_; }
  void set_deadline(TimePoint when);
  // set_deadline(now + delay), saturating.
  void set_deadline_after(Duration delay) { set_deadline(add_saturating(loop_time(), delay)); }

  bool shield() const { return node_.shield; }
  bool is_open() const { return task_ != nullptr; }

 private:
  template <typename T, bool kFail>
  friend class detail::ScopeAwaiter;

  // Opens the scope in `task` (throws UsageError if it was entered before).
  void enter(detail::TaskContext& task);
  // Closes it; returns whether a Cancelled leaving the scope's Task belongs to this scope.
  bool leave() noexcept;
  void arm();
  void on_deadline();

  detail::CancelNode node_;
  TimePoint deadline_ = TimePoint::max();
  TimerHandle timer_;
  detail::TaskContext* task_ = nullptr;     // while open
  detail::CancelNode* previous_ = nullptr;  // the task's innermost scope before this one
  bool entered_ = false;
  bool caught_ = false;
  bool deadline_expired_ = false;
};

namespace detail {

// The awaiter behind CancelScope::run and the helpers below. kFail: an absorbed cancellation
// caused by the deadline becomes TimeoutError, and the value is returned bare.
template <typename T, bool kFail>
class [[nodiscard]] ScopeAwaiter {
 public:
  using Result = std::conditional_t<kFail, T, ScopeResult<T>>;

  ScopeAwaiter(CancelScope& scope, Task<T> task)
      : scope_(scope), task_(std::move(task)), inner_(std::move(task_).operator co_await()) {}
  ScopeAwaiter(const ScopeAwaiter&) = delete;
  ScopeAwaiter& operator=(const ScopeAwaiter&) = delete;

  bool await_ready() const noexcept { return false; }
  template <WeftPromise Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> parent) {
    scope_.enter(*parent.promise().context());
    return inner_.await_suspend(parent);
  }
  Result await_resume() {
    const bool mine = scope_.leave();
    try {
      if constexpr (std::is_void_v<T>) {
        inner_.await_resume();
        if constexpr (!kFail) return true;
      } else {
        return Result(inner_.await_resume());
      }
    } catch (const Cancelled&) {
      if (!mine) throw;
      scope_.caught_ = true;
      if constexpr (kFail) {
        throw TimeoutError("weft: deadline exceeded; the work was cancelled");
      } else {
        return Result();
      }
    }
  }

 private:
  CancelScope& scope_;
  Task<T> task_;
  typename Task<T>::Awaiter inner_;
};

// A scope and the Task it covers, for the one-line helpers; awaited once, as a temporary.
template <typename T, bool kFail>
class [[nodiscard]] ScopedTask {
 public:
  ScopedTask(CancelScope::Options options, Task<T> task)
      : scope_(options), task_(std::move(task)) {}
  ScopedTask(const ScopedTask&) = delete;
  ScopedTask& operator=(const ScopedTask&) = delete;
  ScopeAwaiter<T, kFail> operator co_await() && { return {scope_, std::move(task_)}; }

 private:
  CancelScope scope_;
  Task<T> task_;
};

}  // namespace detail

template <typename T>
detail::ScopeAwaiter<T, false> CancelScope::run(Task<T> task) {
  return detail::ScopeAwaiter<T, false>(*this, std::move(task));
}

// Runs `task`; at `when` (or `delay` from now) cancels it and returns nullopt (false for
// Task<void>) instead of its value. trio's move_on_at / move_on_after.
template <typename T>
detail::ScopedTask<T, false> move_on_at(TimePoint when, Task<T> task) {
  return {CancelScope::Options{.deadline = when}, std::move(task)};
}
template <typename T>
detail::ScopedTask<T, false> move_on_after(Duration delay, Task<T> task) {
  return move_on_at(detail::deadline_after(delay), std::move(task));
}

// Runs `task`; at `when` (or `delay` from now) cancels it and throws weft::TimeoutError.
// trio's fail_at / fail_after, asyncio.timeout.
template <typename T>
detail::ScopedTask<T, true> fail_at(TimePoint when, Task<T> task) {
  return {CancelScope::Options{.deadline = when}, std::move(task)};
}
template <typename T>
detail::ScopedTask<T, true> fail_after(Duration delay, Task<T> task) {
  return fail_at(detail::deadline_after(delay), std::move(task));
}

// Runs `task` shielded from cancellation outside it (its value returned as is).
template <typename T>
detail::ScopedTask<T, true> shield(Task<T> task) {
  return {CancelScope::Options{.shield = true}, std::move(task)};
}

}  // namespace weft

#endif  // WEFT_CORE_CANCEL_SCOPE_H_
