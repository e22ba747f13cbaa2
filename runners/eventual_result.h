// EventualResult<T>: the result of work submitted to a Runner, for synchronous
// code to collect later (Crochet's EventualResult).
//
// wait(timeout) blocks until the work finishes and returns its value or
// rethrows its exception; past the timeout it throws TimeoutError and the work
// goes on (a later wait can still get the result; only Runner::run(task,
// timeout) cancels on timeout). cancel() asks the loop to cancel the task: it
// is woken at its current await with weft::Cancelled, and the result is
// whatever the task then finishes with (normally Cancelled); a task cancelled
// before it started never runs its body and fails with Cancelled (as spawn()). If the runner
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

#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

#include "weft/core/time.h"
#include "weft/runners/detail/eventual_state.h"

namespace weft {

class Runner;

// The loop that a blocking wait was driving on the caller's thread (the
// blocking runner's) was stopped by Reactor::stop() before the work finished
// (asyncio's "Event loop stopped before Future completed"). Thrown by run()
// (which has cancelled the task) and EventualResult::wait() (the work goes on).
class LoopStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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
  void cancel() const { detail::EventualStateBase::cancel(state_); }
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
