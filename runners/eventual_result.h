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
// Timeouts saturate: Duration::max() (or any timeout reaching past
// TimePoint::max()) waits as long as it takes; zero or negative (down to
// Duration::min()) does not wait at all and only reports whether the work is
// done.
//
// Errors nobody looks at: if the work failed and the last EventualResult for it
// is dropped without the error having been looked at (a wait() that rethrew it,
// or original_failure()), the error is reported, like a Deferred's: to the
// reactor's error handler if that happens on the loop thread, else to stderr.
// Failures the caller caused are not reported: a cancel() (also run()'s
// timeout), or RunnerShutDown from destroying the runner.
//
// With the blocking runner, wait() drives the runner's loop on the calling
// thread: a Reactor::stop() made before or during the wait ends it with
// LoopStopped (the request is consumed; the work goes on, as after a timeout).
//
// fork: an EventualResult made before fork() cannot be waited on or cancelled in
// the child (its runner's loop does not run there): wait() and cancel() throw
// UsageError; ready() and original_failure() answer from the state inherited.
//
// Threading: every member is safe from any thread, and many threads may wait at
// once, except that waiting on the loop thread of the runner's reactor throws
// UsageError rather than deadlock. With the blocking runner, wait() drives the
// runner's loop on the calling thread, so call it from the thread that uses
// that runner.
#ifndef WEFT_RUNNERS_EVENTUAL_RESULT_H_
#define WEFT_RUNNERS_EVENTUAL_RESULT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "weft/core/deferred.h"
#include "weft/core/detail/cancel_reason.h"
#include "weft/core/task.h"
#include "weft/core/time.h"

namespace weft {

class Reactor;
class Runner;

// The loop that a blocking wait was driving on the caller's thread (the
// blocking runner's) was stopped by Reactor::stop() before the work finished
// (asyncio's "Event loop stopped before Future completed"). Thrown by run()
// (which has cancelled the task) and EventualResult::wait() (the work goes on).
class LoopStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

class EventualStateBase;
class ReactorLink;  // runners/detail/reactor_link.h

// How a waiter makes progress when no other thread runs the loop (the blocking
// runner).
class EventualDriver {
 public:
  // Runs the loop on the calling thread until `state` is ready or `deadline`
  // passes (none: as long as it takes). Throws LoopStopped if a stop() of the
  // loop, made before or during the call, ends it first (consuming it).
  virtual void drive(EventualStateBase& state, std::optional<TimePoint> deadline) = 0;

 protected:
  ~EventualDriver() = default;
};

class EventualStateBase {
 public:
  // `reactor`: where the work runs; waiting from inside one of its callbacks, or on
  // `loop_thread` (the thread that runs it, if fixed), is refused. `driver`: null when another
  // thread runs the loop.
  EventualStateBase(const Reactor* reactor, std::thread::id loop_thread, EventualDriver* driver);
  EventualStateBase(const EventualStateBase&) = delete;
  EventualStateBase& operator=(const EventualStateBase&) = delete;
  // Reports a failure nobody looked at (see EventualResult above).
  virtual ~EventualStateBase();

  bool ready() const { return done_.load(std::memory_order_acquire); }
  // Blocks until ready or until `timeout` has passed (saturating; none: no
  // limit); returns ready(). Throws UsageError on the loop thread or in a forked
  // child, LoopStopped from a driver.
  bool wait(std::optional<Duration> timeout);
  // The error, without marking it looked at (for the runner's own use).
  std::exception_ptr error() const;
  // The error, marking it looked at: it will not be reported.
  std::exception_ptr observe_error();

  // Thread-safe: cancels the work through the canceller, now or as soon as it
  // is installed. Throws UsageError in a forked child.
  void cancel();
  // Loop side: how to cancel the work. If cancel() came first, runs `canceller`
  // at once.
  void set_canceller(absl::AnyInvocable<void()> canceller);
  // The same, for the built-in runners: the canceller cancels `task` (the spawned task's
  // Deferred) on the loop thread of the reactor `link` reaches, if it still does. Kept as two
  // members, not a closure: the closure would not fit AnyInvocable's inline storage, and
  // allocating it was one malloc and free per run().
  void set_canceller(std::shared_ptr<ReactorLink> link, Deferred<void> task);
  // Loop side (or shutdown): completes with an error, unless already complete.
  void fail(std::exception_ptr error);
  // Completes with `error` (unless already complete), then cancels the work: a runner giving up
  // on it (shutdown). Failing first means the cancellation cannot race in a different outcome.
  void abandon(std::exception_ptr error);

 protected:
  // Completes with `publish_value` run under the lock, unless already complete.
  template <typename Publish>
  void complete(Publish&& publish_value) {
    Canceller dropped;  // destroyed outside the lock
    {
      std::lock_guard lock(mu_);
      if (done_.load(std::memory_order_relaxed)) return;
      publish_value();
      done_.store(true, std::memory_order_release);
      dropped = std::move(canceller_);
      if (!done_cv_made_) return;  // nobody ever slept on it
    }
    done_cv_.notify_all();
  }
  // Requires ready() and an error: marks it looked at and throws it.
  [[noreturn]] void rethrow_observed_error();
  // True in a child process forked after this state was made.
  bool inherited_through_fork() const;
  // std::mutex, not absl::Mutex: ThreadSanitizer sees pthread locks.
  mutable std::mutex mu_;
  // Written under mu_ before done_ is set, never after: once ready() is true it may be read
  // without the lock (so may a state's value_).
  std::exception_ptr error_;

 private:
  [[noreturn]] void throw_inherited(const char* what) const;

  // Either of set_canceller's two forms (or none).
  struct Canceller {
    absl::AnyInvocable<void()> function;
    std::shared_ptr<ReactorLink> link;
    std::optional<Deferred<void>> task;
    // Runs it, if there is one (once: it is left empty).
    void operator()();
  };
  // Puts the canceller in place with `put(Canceller&)` (member by member: moving a whole
  // Canceller is three members' moves), or runs it at once if cancel() came first.
  template <typename Put>
  void install(Put put);

  const Reactor* reactor_;
  const std::thread::id loop_thread_;
  EventualDriver* driver_;
  const std::uint32_t fork_generation_;
  // Made by the first waiter that sleeps (a blocking runner's wait drives the loop instead and
  // never does: it skips the condition variable's atomics in notify and destroy). Destroyed by
  // hand, and not at all in a forked child: threads of the parent may have been waiting on it at
  // the fork, and destroying a condition variable waits for its waiters (glibc), which do not
  // exist in the child.
  union {
    std::condition_variable done_cv_;
  };
  bool done_cv_made_ ABSL_GUARDED_BY(mu_) = false;
  // Written under mu_ (with what it publishes), read without it by ready(): a blocking runner
  // asks it at every loop turn.
  std::atomic<bool> done_ = false;
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool error_observed_ ABSL_GUARDED_BY(mu_) = false;
  Canceller canceller_ ABSL_GUARDED_BY(mu_);
};

template <typename T>
class EventualState : public EventualStateBase {
 public:
  using EventualStateBase::EventualStateBase;

  template <typename U>
  void succeed(U&& value) {
    complete([&] { value_.emplace(std::forward<U>(value)); });
  }
  // Requires ready(): the value (a copy), or rethrows the error (marking it looked at). For the
  // runner's run(); no lock on success (see error_).
  T result() {
    if (error_ != nullptr) rethrow_observed_error();
    return *value_;
  }

 private:
  std::optional<T> value_;  // as error_: set before done_, then only read
};

template <>
class EventualState<void> : public EventualStateBase {
 public:
  using EventualStateBase::EventualStateBase;
  void succeed() {
    complete([] {});
  }
  void result() {
    if (error_ != nullptr) rethrow_observed_error();
  }
};

// Fails the state with RunnerShutDown if it is destroyed before completing: it
// is a parameter of the delivering coroutine, so it dies with the task's frame
// even if the task never ran. The coroutine disarms it once it has delivered, so a
// finished run builds no exception (nor takes the state's lock) for it.
template <typename T>
class ShutdownGuard {
 public:
  explicit ShutdownGuard(std::shared_ptr<EventualState<T>> state) : state_(std::move(state)) {}
  ShutdownGuard(ShutdownGuard&&) noexcept = default;
  ~ShutdownGuard();
  EventualState<T>& operator*() const { return *state_; }
  void disarm() { armed_ = false; }

 private:
  std::shared_ptr<EventualState<T>> state_;
  bool armed_ = true;
};

void fail_with_shutdown(EventualStateBase& state);

template <typename T>
ShutdownGuard<T>::~ShutdownGuard() {
  if (state_ != nullptr && armed_) fail_with_shutdown(*state_);
}

// Runs `task` and delivers its outcome to the state.
template <typename T>
Task<void> deliver(Task<T> task, ShutdownGuard<T> state) {
  std::exception_ptr error;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      (*state).succeed();
    } else {
      (*state).succeed(co_await std::move(task));
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error != nullptr) {
    // A task cancelled for a reason (a deadlock on virtual time) reports the reason.
    apply_cancel_reason(co_await CurrentTaskContext{}, error);
    (*state).fail(error);
  }
  state.disarm();
}

}  // namespace detail

template <typename T>
class EventualResult {
 public:
  // Returns the value (a copy) or rethrows the work's exception. Throws
  // TimeoutError if the work has not finished within `timeout` (none, or
  // Duration::max(): wait as long as it takes); the work goes on. With the
  // blocking runner, throws LoopStopped if its loop is stopped first.
  T wait(std::optional<Duration> timeout = std::nullopt) const;
  bool ready() const { return state_->ready(); }
  // Asks the loop to cancel the task (see above). Does nothing once the result
  // is ready.
  void cancel() const { state_->cancel(); }
  // The exception the work failed with, or nullptr (not ready, or succeeded).
  // Counts as looking at the error: it will not be reported.
  std::exception_ptr original_failure() const { return state_->observe_error(); }

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
  return state_->result();
}

}  // namespace weft

#endif  // WEFT_RUNNERS_EVENTUAL_RESULT_H_
