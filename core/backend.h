// Backend: the contract between weft's Reactor and one event-loop library.
//
// The Reactor keeps all of weft's own state (ready queue, timer heap, watcher
// tables, cross-thread queue) and asks a backend for only what an event loop
// uniquely provides: a way to wait for the kernel, one timer, a cross-thread
// wake-up and fd interest. A backend calls back into the
// reactor through LoopHooks. Each backend lives in its own folder under
// backends/ and registers a factory in the backend registry; the core never
// includes a backend header.
//
// Threading: every hook is called on the loop thread (the thread running the
// reactor), except Backend::wake(), which any thread may call. No hook may call
// back into LoopHooks synchronously: a backend delivers events only from inside
// run_once() (or from inside a host's own loop iteration, for a backend that
// adopts a host loop).
#ifndef WEFT_CORE_BACKEND_H_
#define WEFT_CORE_BACKEND_H_

#include <cstdint>
#include <string>

#include "weft/core/time.h"

namespace weft {

// Readiness of a file descriptor, as a bit set.
enum class IoEvents : std::uint8_t {
  kNone = 0,
  kReadable = 1,
  kWritable = 2,
  kBoth = 3,
};
constexpr IoEvents operator|(IoEvents a, IoEvents b) {
  return static_cast<IoEvents>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr IoEvents operator&(IoEvents a, IoEvents b) {
  return static_cast<IoEvents>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
constexpr bool any(IoEvents e) { return e != IoEvents::kNone; }

// What the reactor offers its backend. Loop thread only; the backend calls
// these from its native callbacks. Each may run arbitrary user code, including
// code that calls back into the Backend (to change fd interest, arm the timer,
// request a turn), so a backend must not hold locks or iterators across these
// calls.
class LoopHooks {
 public:
  // Runs one weft turn: the ready batch, cross-thread callbacks, due timers
  // (see docs/architecture.md, "One loop turn"). Called for request_turn() and
  // wake().
  virtual void run_turn() = 0;
  // The native timer armed with set_timer() fired. The backend's timer is
  // disarmed by firing.
  virtual void timer_expired() = 0;
  // fd became ready for `events`. fd is the descriptor the backend was given by
  // set_fd_interest(); an event for an fd whose interest was removed must not
  // be delivered.
  virtual void fd_ready(int fd, IoEvents events) = 0;

 protected:
  ~LoopHooks() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // What the backend is, for listings and error messages: e.g. "libuv (epoll)".
  virtual std::string description() const = 0;

  // Runs one iteration of the native loop and returns: waits for the kernel if
  // `may_block` and nothing is pending (no turn requested, no due timer), then
  // delivers whatever became ready. A blocked wait must end when wake() is
  // called from another thread or the armed timer is due. Owned loops only; a
  // backend adopting a host loop may throw UsageError.
  virtual void run_once(bool may_block) = 0;

  // Asks for one run_turn() soon, from the next iteration of the native loop,
  // without blocking in between. Requests made while one is pending may be
  // merged into one call.
  virtual void request_turn() = 0;

  // Thread-safe: asks for one run_turn() soon and wakes a loop blocked in the
  // kernel. Calls from many threads may be merged into one run_turn(). Must not
  // be lost if it races the start of run_once() on the loop thread.
  virtual void wake() = 0;

  // Arms the backend's one timer to call timer_expired() at or after `deadline`
  // (replacing any earlier arming). Firing late is allowed (native clocks
  // round); firing early is tolerated: the reactor re-arms if nothing is due
  // yet. A step that ends past the deadline without the native timer firing
  // is the reactor's business: it then clears the timer and delivers the
  // expiry itself (Reactor::step_backend).
  virtual void set_timer(TimePoint deadline) = 0;
  virtual void clear_timer() = 0;

  // Sets the events the backend should report for `fd`. kNone stops the reports; the backend
  // may keep what it holds for the fd (its handle, its registration), so that interest that
  // comes and goes (an IoHandle between reads) costs what the native library's start and stop
  // cost, not a new handle each time. fd stays open until release_fd(fd). Throws
  // std::system_error if the fd cannot be watched (e.g. a regular file on epoll); the backend
  // then holds nothing new for it.
  virtual void set_fd_interest(int fd, IoEvents events) = 0;

  // The reactor is done with `fd` (it closes it next, or gives it back to its owner): stop
  // watching it and release everything held for it. Called once for each fd that was given a
  // non-kNone interest since it was last released, at any interest; also after a first
  // set_fd_interest() for the fd threw, when there is nothing to release (do nothing). An fd
  // the backend holds nothing for is not an error. The default suits a
  // backend whose kNone already releases; a backend that keeps anything on kNone overrides it,
  // and a backend that wraps another forwards it.
  virtual void release_fd(int fd) { set_fd_interest(fd, IoEvents::kNone); }

  // Signals are not part of the contract: the reactor owns the process's signal dispositions
  // (core/detail/signal_fan_out.h) and receives signals through a pipe it watches with
  // set_fd_interest(), so that every reactor of every backend gets each signal.

  // The process forked and this is the child: the native loop shares kernel objects with the
  // parent (an epoll or kqueue set, an eventfd). Replace or drop them so that what follows
  // (the reactor's teardown: removing fd interest, closing handles) changes nothing the parent
  // sees (libuv: uv_loop_fork; libevent: event_reinit; Asio: notify_fork). Called once, on the
  // thread that destroys the reactor in the child, before any other call there. Must not
  // block or wait for threads (the parent's threads do not exist in the child). Throws
  // std::system_error if the native library cannot do it; the reactor then abandons the
  // backend without tearing it down.
  virtual void after_fork_in_child() = 0;

  // Optional, for hosts that drive the loop from their own (runners/guest_reactor.h): a
  // descriptor that becomes readable when run_once(false) has native work to deliver.
  // `complete` says it covers everything the backend waits for (libuv's backend fd does); if
  // not, it covers at least what the fd interest, the timer and wake() cannot show (an
  // internal pipe of the backend's own), and weft waits on it beside the watched fds. fd -1:
  // the backend has none. Loop thread.
  struct WaitFd {
    int fd = -1;
    bool complete = false;
  };
  virtual WaitFd wait_fd() const { return {}; }
};

}  // namespace weft

#endif  // WEFT_CORE_BACKEND_H_
