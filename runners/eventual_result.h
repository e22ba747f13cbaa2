// EventualResult<T>: the result of work submitted to a Runner, for synchronous
// code to collect later (Crochet's EventualResult).
//
// wait(timeout) blocks until the work finishes and returns its value or
// rethrows its exception; past the timeout it throws TimeoutError and the work
// goes on (a later wait can still get the result; only Runner::run(task,
// timeout) cancels on timeout). cancel() asks the loop to cancel the task: it
// is woken at its current await with weft::Cancelled, and the result is
// whatever the task then finishes with (normally Cancelled). If the runner
// shuts down first, the result fails with RunnerShutDown: no waiter is left
// blocked forever.
//
// Threading: every member is safe from any thread, and many threads may wait at
// once, except that waiting on the loop thread of the runner's reactor throws
// UsageError rather than deadlock. With the blocking runner, wait() drives the
// runner's loop on the calling thread, so call it from the thread that uses
// that runner.
#ifndef WEFT_RUNNERS_EVENTUAL_RESULT_H_
#define WEFT_RUNNERS_EVENTUAL_RESULT_H_

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "core/task.h"
#include "core/time.h"

namespace weft {

class Reactor;
class Runner;

namespace detail {

class EventualStateBase;

// How a waiter makes progress when no other thread runs the loop (the blocking
// runner).
class EventualDriver {
 public:
  // Runs the loop on the calling thread until `state` is ready or `deadline`
  // passes.
  virtual void drive(EventualStateBase& state, std::optional<TimePoint> deadline) = 0;

 protected:
  ~EventualDriver() = default;
};

class EventualStateBase {
 public:
  // `reactor`: where the work runs; waiting from inside one of its callbacks, or on
  // `loop_thread` (the thread that runs it, if fixed), is refused. `driver`: null when another
  // thread runs the loop.
  EventualStateBase(const Reactor* reactor, std::thread::id loop_thread, EventualDriver* driver)
      : reactor_(reactor), loop_thread_(loop_thread), driver_(driver) {}
  EventualStateBase(const EventualStateBase&) = delete;
  EventualStateBase& operator=(const EventualStateBase&) = delete;
  virtual ~EventualStateBase() = default;

  bool ready() const;
  // Blocks until ready or until `timeout` has passed; returns ready().
  bool wait(std::optional<Duration> timeout);
  std::exception_ptr error() const;

  // Thread-safe: cancels the work through the canceller, now or as soon as it
  // is installed.
  void cancel();
  // Loop side: how to cancel the work. If cancel() came first, runs `canceller`
  // at once.
  void set_canceller(absl::AnyInvocable<void()> canceller);
  // Loop side (or shutdown): completes with an error, unless already complete.
  void fail(std::exception_ptr error);
  // Completes with `error` (unless already complete), then cancels the work: a runner giving up
  // on it (shutdown). Failing first means the cancellation cannot race in a different outcome.
  void abandon(std::exception_ptr error);

 protected:
  // Completes with `publish_value` run under the lock, unless already complete.
  template <typename Publish>
  void complete(Publish&& publish_value) {
    absl::AnyInvocable<void()> dropped;  // destroyed outside the lock
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      publish_value();
      done_ = true;
      dropped = std::move(canceller_);
    }
    done_cv_.notify_all();
  }
  // std::mutex, not absl::Mutex: ThreadSanitizer sees pthread locks.
  mutable std::mutex mu_;

 private:
  const Reactor* reactor_;
  const std::thread::id loop_thread_;
  EventualDriver* driver_;
  std::condition_variable done_cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::exception_ptr error_ ABSL_GUARDED_BY(mu_);
  absl::AnyInvocable<void()> canceller_ ABSL_GUARDED_BY(mu_);
};

template <typename T>
class EventualState : public EventualStateBase {
 public:
  using EventualStateBase::EventualStateBase;

  template <typename U>
  void succeed(U&& value) {
    complete([&] { value_.emplace(std::forward<U>(value)); });
  }
  // Requires ready() and no error.
  T value() const {
    std::lock_guard lock(mu_);
    return *value_;
  }

 private:
  std::optional<T> value_ ABSL_GUARDED_BY(mu_);
};

template <>
class EventualState<void> : public EventualStateBase {
 public:
  using EventualStateBase::EventualStateBase;
  void succeed() {
    complete([] {});
  }
  void value() const {}
};

// Fails the state with RunnerShutDown if it is destroyed before completing: it
// is a parameter of the delivering coroutine, so it dies with the task's frame
// even if the task never ran.
template <typename T>
class ShutdownGuard {
 public:
  explicit ShutdownGuard(std::shared_ptr<EventualState<T>> state) : state_(std::move(state)) {}
  ShutdownGuard(ShutdownGuard&&) noexcept = default;
  ~ShutdownGuard();
  EventualState<T>& operator*() const { return *state_; }

 private:
  std::shared_ptr<EventualState<T>> state_;
};

void fail_with_shutdown(EventualStateBase& state);

template <typename T>
ShutdownGuard<T>::~ShutdownGuard() {
  if (state_ != nullptr) fail_with_shutdown(*state_);
}

// Runs `task` and delivers its outcome to the state.
template <typename T>
Task<void> deliver(Task<T> task, ShutdownGuard<T> state) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      (*state).succeed();
    } else {
      (*state).succeed(co_await std::move(task));
    }
  } catch (...) {
    (*state).fail(std::current_exception());
  }
}

}  // namespace detail

template <typename T>
class EventualResult {
 public:
  // Returns the value (a copy) or rethrows the work's exception. Throws
  // TimeoutError if the work has not finished within `timeout` (none: wait as
  // long as it takes); the work goes on.
  T wait(std::optional<Duration> timeout = std::nullopt) const;
  bool ready() const { return state_->ready(); }
  // Asks the loop to cancel the task (see above). Does nothing once the result
  // is ready.
  void cancel() const { state_->cancel(); }
  // The exception the work failed with, or nullptr (not ready, or succeeded).
  std::exception_ptr original_failure() const { return state_->error(); }

 private:
  friend class Runner;
  explicit EventualResult(std::shared_ptr<detail::EventualState<T>> state)
      : state_(std::move(state)) {}
  std::shared_ptr<detail::EventualState<T>> state_;
};

[[noreturn]] void throw_wait_timeout(Duration timeout);

template <typename T>
T EventualResult<T>::wait(std::optional<Duration> timeout) const {
  if (!state_->wait(timeout)) throw_wait_timeout(*timeout);
  if (std::exception_ptr error = state_->error()) std::rethrow_exception(error);
  return state_->value();
}

}  // namespace weft

#endif  // WEFT_RUNNERS_EVENTUAL_RESULT_H_
