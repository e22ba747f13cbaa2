// GuestReactor: weft as a guest inside an event loop the host application owns (GLib, Qt, a
// game loop, ...), on any backend: trio's "guest mode".
//
// The host keeps its thread and its loop. It asks weft for three things and weft never blocks
// it:
//   fd()       a descriptor to watch for readability in the host's own poll;
//   timeout()  how long the host may sleep at most (0: step now; nullopt: until fd() is ready);
//   step()     runs what is ready (a non-blocking iteration of the backend) and returns.
// Call step() when fd() is readable or timeout() has passed (GLib: a GSource, see
// examples/glib/). All weft callbacks and tasks run inside step(), on the host's thread.
//
// How weft waits depends on the backend. If it has a pollable descriptor covering all its I/O
// (libuv's backend fd), fd() is that descriptor and no thread is added. Otherwise a helper
// thread waits (poll) for the reactor's watched fds, its deadline and its wake-ups, and makes
// fd() readable when there is work; the native loop itself only ever runs in step(), on the
// host's thread. That fd() is an eventfd on Linux, a pipe elsewhere (core/detail/wake_fd.h);
// the helper waits for a deadline to the nanosecond where the platform has ppoll
// (runners/detail/poll_until.h), so a sub-millisecond timer is not rounded up to 1 ms. A timer
// added, moved earlier or cancelled, a new fd watch, or a call_from_thread from another thread all
// cut the current wait short, so the host never sleeps through a weft deadline. Signals reach the
// reactor through a pipe it watches like any fd, so they wake the host promptly too.
//
// Errors: an exception out of the native step (a failure of the backend, an exception escaping
// a native handler) leaves step() to the host, and leaves the guest working: the host is asked
// to step again at once (fd() readable with a helper thread, timeout() zero), and later
// wake-ups, timers and fd watches reach the host as before.
//
// Time: timeout() saturates: a deadline at or near TimePoint::min() is zero, never negative
// or wrapped around.
//
// Threading: make, step() and destroy on the host's thread; reactor() follows Reactor's rules
// with the host's thread as the loop thread. fd() and timeout() are host-thread only too.
// Lifetime: the destructor stops the helper thread and destroys the reactor (see ~Reactor).
// fork: in a forked child, step() and timeout() throw UsageError; the destructor destroys the
// reactor (core's rule for inherited reactors) but abandons the helper thread (it does not
// exist in the child) without joining it, locking or poking it.
#ifndef WEFT_RUNNERS_GUEST_REACTOR_H_
#define WEFT_RUNNERS_GUEST_REACTOR_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "weft/core/backend_registry.h"
#include "weft/core/detail/fork_generation.h"
#include "weft/core/detail/wake_fd.h"
#include "weft/core/reactor.h"
#include "weft/core/time.h"
#include "weft/runners/detail/poll_until.h"

namespace weft {

class GuestReactor {
 public:
  enum class Wait {
    kAuto,          // the backend's descriptor if it covers everything, else a helper thread
    kHelperThread,  // always a helper thread (e.g. a host that cannot poll an epoll fd)
  };

  // A reactor on `backend` (empty: the default backend), driven by the host. Throws
  // UnknownNameError for an unknown backend.
  // `clock`: where the reactor reads time (core/clock.h; null: steady_clock). On virtual time
  // (core/virtual_clock.h) the clock moves at the end of a step when the reactor has nothing
  // left to run, and timeout() stays nullopt for its timers.
  explicit GuestReactor(std::string_view backend = {}, Wait wait = Wait::kAuto,
                        std::unique_ptr<ReactorClock> clock = nullptr);
  // The same on a backend given by its registry entry, registered or not (e.g. a backend of
  // the host's own, or a wrapper around a registered one).
  explicit GuestReactor(const BackendInfo& backend, Wait wait = Wait::kAuto,
                        std::unique_ptr<ReactorClock> clock = nullptr);
  ~GuestReactor();
  GuestReactor(const GuestReactor&) = delete;
  GuestReactor& operator=(const GuestReactor&) = delete;

  Reactor& reactor() { return *reactor_; }

  int fd() const { return host_fd_; }
  std::optional<Duration> timeout() const;
  // Runs what is ready; never blocks. Rethrows an exception from the native step, after
  // which the guest still works (see "Errors" above).
  void step();

  // True if a helper thread does the waiting (the backend has no complete pollable fd).
  bool uses_helper_thread() const { return helper_.joinable(); }

 private:
  class Tee;
  class StepScope;
  struct PollSpec;

  bool inherited_through_fork() const { return fork_generation_ != detail::fork_generation(); }
  void check_not_forked(const char* what) const;
  void stop_helper();  // ends and joins the helper thread, if there is one
  void close_fds();
  void arm_helper();
  void helper_loop();
  void poke() const;  // cuts the helper's current wait short; any thread
  void changed();     // the reactor asked the backend for something that may shorten the wait

  const std::uint32_t fork_generation_;
  Tee* tee_ = nullptr;  // owned by reactor_
  std::unique_ptr<Reactor> reactor_;
  int host_fd_ = -1;  // what the host polls: the backend's, or host_wake_'s
  std::unique_ptr<detail::WakeFd> host_wake_;  // helper mode: the helper's "there is work"
  std::unique_ptr<detail::WakeFd> poke_;       // helper mode: cuts the helper's wait short
  detail::PollPrecision poll_precision_ = detail::PollPrecision::kMilliseconds;
  bool stepping_ = false;

  std::mutex mu_;
  // On the heap so that a forked child can abandon it (see ~GuestReactor).
  std::unique_ptr<std::condition_variable> cv_ = std::make_unique<std::condition_variable>();
  std::unique_ptr<PollSpec> spec_;  // guarded by mu_: the next wait, handed to the helper
  bool helper_waiting_ = false;     // guarded by mu_
  bool quit_ = false;               // guarded by mu_
  std::thread helper_;
};

}  // namespace weft

#endif  // WEFT_RUNNERS_GUEST_REACTOR_H_
