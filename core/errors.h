// Errors: the exception types weft throws.
//
// weft reports errors with exceptions, one model everywhere: a failed call
// throws, a failed task or Deferred carries a std::exception_ptr that co_await
// rethrows. The types below let a caller tell the cases apart; each derives
// from a standard exception so generic handlers work.
//
// Threading: plain value types; safe anywhere.
#ifndef WEFT_CORE_ERRORS_H_
#define WEFT_CORE_ERRORS_H_

#include <stdexcept>
#include <string>

namespace weft {

// A task or Deferred was cancelled (Twisted's CancelledError). Thrown from the
// co_await at which a cancelled task was suspended, and the failure of a
// cancelled Deferred.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("weft: cancelled") {}
  explicit Cancelled(const std::string& what) : std::runtime_error(what) {}
};

// A wait gave up after its timeout (Crochet's TimeoutError).
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A name (backend, runner, mechanism) that no registry entry has. The message
// lists the names that are available, so the caller can correct it.
class UnknownNameError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A call made from a thread, or in a state, where it would deadlock or break
// the threading rules: running a reactor that is already running, a blocking
// wait on the loop's own thread.
class UsageError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// A Deferred fired twice (Twisted's AlreadyCalledError).
class AlreadyCalledError : public std::logic_error {
 public:
  AlreadyCalledError() : std::logic_error("weft: Deferred already called") {}
};

// Work handed to a runner that was shut down before the work finished.
class RunnerShutDown : public std::runtime_error {
 public:
  RunnerShutDown() : std::runtime_error("weft: runner shut down") {}
};

}  // namespace weft

#endif  // WEFT_CORE_ERRORS_H_
