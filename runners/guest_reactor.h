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
// host's thread. A timer added, moved earlier or cancelled, a new fd watch, or a call_from_thread
// from another thread all cut the current wait short, so the host never sleeps through a weft
// deadline. Signals: delivered promptly where the backend exposes a descriptor for them (see
// Backend::wait_fd); otherwise the helper re-checks every 10 ms while a signal is watched.
//
// Threading: make, step() and destroy on the host's thread; reactor() follows Reactor's rules
// with the host's thread as the loop thread. fd() and timeout() are host-thread only too.
// Lifetime: the destructor stops the helper thread and destroys the reactor (see ~Reactor).
#ifndef WEFT_RUNNERS_GUEST_REACTOR_H_
#define WEFT_RUNNERS_GUEST_REACTOR_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "core/reactor.h"
#include "core/time.h"

namespace weft {

class GuestReactor {
 public:
  enum class Wait {
    kAuto,          // the backend's descriptor if it covers everything, else a helper thread
    kHelperThread,  // always a helper thread (e.g. a host that cannot poll an epoll fd)
  };

  // A reactor on `backend` (empty: the default backend), driven by the host. Throws
  // UnknownNameError for an unknown backend.
  explicit GuestReactor(std::string_view backend = {}, Wait wait = Wait::kAuto);
  ~GuestReactor();
  GuestReactor(const GuestReactor&) = delete;
  GuestReactor& operator=(const GuestReactor&) = delete;

  Reactor& reactor() { return *reactor_; }

  int fd() const { return host_fd_; }
  std::optional<Duration> timeout() const;
  void step();

  // True if a helper thread does the waiting (the backend has no complete pollable fd).
  bool uses_helper_thread() const { return helper_.joinable(); }

 private:
  class Tee;
  struct PollSpec;

  void arm_helper();
  void helper_loop();
  void poke() const;  // cuts the helper's current wait short; any thread
  void changed();     // the reactor asked the backend for something that may shorten the wait

  Tee* tee_ = nullptr;  // owned by reactor_
  std::unique_ptr<Reactor> reactor_;
  int host_fd_ = -1;  // what the host polls
  bool own_host_fd_ = false;
  int poke_fd_ = -1;  // what the helper polls beside the watched fds
  bool stepping_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<PollSpec> spec_;  // guarded by mu_: the next wait, handed to the helper
  bool helper_waiting_ = false;     // guarded by mu_
  bool quit_ = false;               // guarded by mu_
  std::thread helper_;
};

}  // namespace weft

#endif  // WEFT_RUNNERS_GUEST_REACTOR_H_
