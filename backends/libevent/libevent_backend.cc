#include "weft/backends/libevent/libevent_backend.h"

#include <event2/event-config.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "weft/backends/detail/native_fd_scope.h"
#include "weft/backends/detail/timer_fd.h"
#include "weft/core/backend.h"
#include "weft/core/backend_registry.h"
#include "weft/core/detail/wake_fd.h"
#include "weft/core/errors.h"

namespace weft::libevent {
namespace {

// A host's base (adopt()) may be used from several threads, and weft's wake() on it is a
// cross-thread event_add(), which needs libevent's locking; that applies only to bases made
// after this call, so do it before any static object below (or any code in main) makes one.
// weft's own bases are made without locks (make_config) and woken through a WakeFd.
[[maybe_unused]] const bool kThreadsEnabled = [] {
  if (evthread_use_pthreads() != 0) {
    throw std::runtime_error("weft: libevent: evthread_use_pthreads failed");
  }
  return true;
}();

// ---- RAII for libevent's and the kernel's handles ----

struct EventDeleter {
  void operator()(event* e) const { event_free(e); }  // deletes it from its base first
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

struct BaseDeleter {
  void operator()(event_base* b) const { event_base_free(b); }
};
using BasePtr = std::unique_ptr<event_base, BaseDeleter>;

struct ConfigDeleter {
  void operator()(event_config* c) const { event_config_free(c); }
};
using ConfigPtr = std::unique_ptr<event_config, ConfigDeleter>;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error != 0 ? error : EINVAL, std::generic_category(),
                          absl::StrCat("weft: libevent: ", what));
}

// The methods libevent was built with, in its order of preference. event_get_supported_methods()
// frees and reallocates its static array on every call, so two threads calling it at once
// corrupt the heap: it is called once, here, and its names (static strings) are copied.
const std::vector<std::string>& supported_methods() {
  static const std::vector<std::string>* const methods = [] {
    auto* names = new std::vector<std::string>;
    if (const char** m = event_get_supported_methods(); m != nullptr) {
      for (; *m != nullptr; ++m) names->emplace_back(*m);
    }
    return names;
  }();
  return *methods;
}

// The descriptors a base of weft's own needs for `method` (empty: libevent's choice, so the most
// any method needs), measured on libevent 2.1.12: the method's own kernel object (epoll,
// kqueue, ...; none for poll and select) and the pipe of its signal handling (evsig_init_,
// which calls exit(1) if it cannot make it), opened by event_base_new_with_config(); then the
// backend's WakeFd (an eventfd, or a pipe), opened right after it, which is counted too so that
// on select it is numbered below FD_SETSIZE like the rest.
int descriptors_needed(const std::string& method) {
  const int wake =
      weft::detail::WakeFd::default_kind() == weft::detail::WakeFd::Kind::kEventFd ? 1 : 2;
  constexpr int kSignals = 2;
  const bool has_kernel_object = method != "poll" && method != "select";
  return (has_kernel_object ? 1 : 0) + kSignals + wake;
}

EventPtr new_event(event_base* base, evutil_socket_t fd, short what, event_callback_fn callback,
                   void* arg) {
  EventPtr ev(event_new(base, fd, what, callback, arg));
  if (ev == nullptr) throw std::bad_alloc();
  return ev;
}

// ---- The backend ----

class LibeventBackend final : public Backend {
 public:
  // Owns `owned` if it is set; otherwise runs on the host's `base`.
  LibeventBackend(LoopHooks& hooks, BasePtr owned, event_base* base)
      : hooks_(hooks),
        owned_base_(std::move(owned)),
        base_(base),
        select_(std::strcmp(event_base_get_method(base), "select") == 0) {
    turn_ = new_event(base_, -1, 0, &LibeventBackend::on_turn, this);
    if (owned_base_ != nullptr) {
      // weft's own base has no locks: wake() signals this descriptor instead of adding the turn
      // event from another thread.
      wake_fd_ = std::make_unique<weft::detail::WakeFd>();
      if (select_ && wake_fd_->fd() >= FD_SETSIZE) {
        throw std::system_error(EMFILE, std::generic_category(),
                                absl::StrCat("weft: libevent: select cannot watch its wake-up "
                                             "descriptor ",
                                             wake_fd_->fd(), " (at or above FD_SETSIZE)"));
      }
      wake_event_ =
          new_event(base_, wake_fd_->fd(), EV_READ | EV_PERSIST, &LibeventBackend::on_wake, this);
      event_add(wake_event_.get(), nullptr);  // cannot fail for a pipe or eventfd on our base
    }
    if (backends::detail::use_timer_fd("libevent")) {
      auto timer_fd = std::make_unique<backends::detail::TimerFd>();
      // select cannot watch a descriptor at or above FD_SETSIZE (see set_fd_interest): with
      // that many descriptors open, keep libevent's own timer.
      if (!select_ || timer_fd->fd() < FD_SETSIZE) {
        timer_fd_ = std::move(timer_fd);
        timer_ = new_event(base_, timer_fd_->fd(), EV_READ | EV_PERSIST,
                           &LibeventBackend::on_timer_fd, this);
        // On a base of weft's own, the event stays added (adding and deleting would each cost
        // an epoll_ctl); on a host's, it is added only while armed, so that an idle weft does
        // not keep the host's event_base_dispatch() running.
        if (owned_base_ != nullptr) add_timer_fd_event();
      }
    }
    if (timer_ == nullptr) timer_ = new_event(base_, -1, 0, &LibeventBackend::on_timer, this);
  }

  ~LibeventBackend() override {
    // The members free the remaining events, then (owned only) the base.
  }

  event_base* base() const { return base_; }

  std::string description() const override {
    return absl::StrCat("libevent ", event_get_version(), " (", event_base_get_method(base_),
                        timer_fd_ != nullptr ? ", timerfd" : "", ")");
  }

  void run_once(bool may_block) override {
    // EVLOOP_ONCE returns once callbacks of non-internal events ran, so the kernel is waited on
    // at most once before delivering (a pending turn is a due timer: that poll does not block).
    // Without EVLOOP_NO_EXIT_ON_EMPTY, a base with no events would return at once, and an idle
    // run() would spin instead of sleeping until a wake().
    const int flags =
        may_block ? EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY : EVLOOP_ONCE | EVLOOP_NONBLOCK;
    if (event_base_loop(base_, flags) < 0) {
      throw std::runtime_error(
          "weft: libevent: event_base_loop failed (is the base's loop already running?)");
    }
  }

  // Requested from one of weft's callbacks, a turn is a zero-timeout timer, not event_active():
  // libevent runs an event activated from a callback in the same pass over the active queue, so
  // a turn that requests the next turn (a self-requeuing call_soon) would loop there forever and
  // starve the poll, timers and fds. A due timer is activated only after the next poll, which it
  // keeps from blocking. Requested from outside them (work queued before the loop runs: a
  // blocking runner's task), the turn is activated directly, as raw libevent's
  // event_base_once() does: the next pass runs it without the timer's clock read and heap work,
  // and nothing can requeue it in the same pass (its own requests come from inside a callback).
  void request_turn() override {
    if (in_callback_ != 0) {
      schedule_turn();
      return;
    }
    // A pending timer serves this request too (activating the event as well would run a
    // second turn); activating an event that is already active does nothing.
    if (event_pending(turn_.get(), EV_TIMEOUT, nullptr) != 0) return;
    event_active(turn_.get(), EV_TIMEOUT, 1);
  }

  // On weft's own base: the WakeFd, whose readiness survives until the loop polls (a wake-up
  // racing the start of run_once() is not lost), and of which only the first signal() after a
  // drain writes. On a host's base: event_add() of the turn, thread-safe there
  // (evthread_use_pthreads), which wakes a loop blocked in another thread's poll when it makes
  // the earliest timeout earlier; a pending timer survives the start of event_base_loop(),
  // unlike event_base_loopbreak()'s flag.
  void wake() override {
    if (wake_fd_ != nullptr) {
      wake_fd_->signal();
    } else {
      schedule_turn();
    }
  }

  // Two ways to wait for weft's deadline (backends/detail/timer_fd.h). With a timerfd (Linux, by
  // default, every method): the kernel timer is armed with the absolute deadline and watched
  // by a persistent read event. With libevent's own timer (WEFT_TIMER=native, or no timerfd):
  // a timeout on libevent's clock, which without EVENT_BASE_FLAG_PRECISE_TIMER is
  // CLOCK_MONOTONIC_COARSE on Linux (a scheduler tick, 4 ms on a 250 Hz kernel). Not the
  // precise flag: on epoll it costs a timerfd_settime() per loop iteration (measured: half of a
  // turn's cost). Either way timer_expired() is called only once steady_clock has reached the
  // deadline.
  void set_timer(TimePoint deadline) override {
    armed_ = true;
    deadline_ = deadline;
    if (timer_fd_ != nullptr) {
      timer_fd_->arm(deadline);
      if (!timer_fd_added_) add_timer_fd_event();
    } else {
      add_native_timer();
    }
  }

  void clear_timer() override {
    armed_ = false;
    if (timer_fd_ != nullptr) {
      disarm_timer_fd();
    } else {
      event_del(timer_.get());
    }
  }

  void set_fd_interest(int fd, IoEvents events) override {
    // libevent's select method sizes its fd_sets for any descriptor, but FD_SET() on one at or
    // above FD_SETSIZE aborts the process in glibc's fortified builds (Debian's libevent is
    // one); refuse it. The reactor names the caller's fd in the message.
    if (select_ && fd >= FD_SETSIZE && events != IoEvents::kNone) {
      throw std::system_error(
          ERANGE, std::generic_category(),
          absl::StrCat("weft: libevent: select cannot watch fd ", fd,
                       ": descriptors must be below FD_SETSIZE (", FD_SETSIZE, ")"));
    }
    auto it = fds_.find(fd);
    const bool fresh = it == fds_.end();
    if (fresh) {
      if (events == IoEvents::kNone) return;
      it = fds_.try_emplace(fd).first;
    }
    FdEvents& entry = it->second;
    try {
      update_fd_event(entry.reader, entry.reading, fd, EV_READ, any(events & IoEvents::kReadable),
                      &LibeventBackend::on_readable);
      update_fd_event(entry.writer, entry.writing, fd, EV_WRITE, any(events & IoEvents::kWritable),
                      &LibeventBackend::on_writable);
    } catch (...) {
      if (fresh) fds_.erase(fd);
      throw;
    }
  }

  void release_fd(int fd) override { fds_.erase(fd); }  // event_free deletes the events

  void after_fork_in_child() override {
    // The timerfd's file is the parent's too: put a fresh one under its number first, so that
    // event_reinit registers the child's own and the teardown cannot disarm the parent's.
    if (timer_fd_ != nullptr) timer_fd_->replace_after_fork();
    // Re-creates the backend's kernel state (epoll set, signal pipe; a host's locked base: its
    // notification fd) in the child and re-adds the events, so freeing them afterwards leaves
    // the parent's set alone. The WakeFd's file stays shared with the parent: the child only
    // closes it (nothing signals it there, see the Backend contract). event_reinit closes the
    // old descriptors before making the new ones, so it needs no more room than the parent had.
    // On a host's base it takes the base's lock: if another thread of the parent was inside a
    // libevent call on that base at the fork, that lock is held for good in the child and this
    // hangs (no library can do better without the parent's help). weft's own bases have none.
    errno = 0;
    if (event_reinit(base_) != 0) throw_errno(errno, "event_reinit failed after fork");
  }

  // libevent's own descriptor (epoll's, when there is one) is not exported, and everything weft
  // waits for is in its fd interest, its timer and wake(). The timerfd is offered anyway: a
  // host's helper thread that waits on it (GuestReactor) wakes at the deadline itself, not at
  // its own millisecond rounding of it; it is readable only while an expiry waits to be run.
  WaitFd wait_fd() const override {
    return WaitFd{.fd = timer_fd_ != nullptr ? timer_fd_->fd() : -1, .complete = false};
  }

 private:
  // An fd's events, made on first interest and kept until release_fd(); added while wanted
  // (event_add and event_del on a kept event cost no allocation).
  struct FdEvents {
    EventPtr reader;
    EventPtr writer;
    bool reading = false;
    bool writing = false;
  };

  void schedule_turn() {
    // A turn already pending, or due and about to run, serves this request too.
    if (event_pending(turn_.get(), EV_TIMEOUT, nullptr) != 0) return;
    static constexpr timeval kNow{};
    event_add(turn_.get(), &kNow);  // cannot fail for a timer on our own base
  }

  void update_fd_event(EventPtr& slot, bool& added, int fd, short what, bool wanted,
                       event_callback_fn callback) {
    if (!wanted) {
      if (added) event_del(slot.get());  // safe from inside its own callback
      added = false;
      return;
    }
    if (added) return;
    if (slot == nullptr) {
      slot = new_event(base_, fd, static_cast<short>(what | EV_PERSIST), callback, this);
    }
    errno = 0;
    if (event_add(slot.get(), nullptr) != 0) {
      // e.g. epoll refuses regular files (EPERM); libevent also logs its own warning.
      throw_errno(errno, absl::StrCat("cannot watch fd ", fd));
    }
    added = true;
  }

  // Marks the time spent in one of weft's libevent callbacks (see request_turn).
  class InCallback {
   public:
    explicit InCallback(LibeventBackend& self) : self_(self) { ++self_.in_callback_; }
    ~InCallback() { --self_.in_callback_; }
    InCallback(const InCallback&) = delete;
    InCallback& operator=(const InCallback&) = delete;

   private:
    LibeventBackend& self_;
  };

  static void on_turn(evutil_socket_t, short, void* arg) {
    auto& self = *static_cast<LibeventBackend*>(arg);
    InCallback scope(self);
    self.hooks_.run_turn();
  }

  static void on_wake(evutil_socket_t, short, void* arg) {
    auto& self = *static_cast<LibeventBackend*>(arg);
    InCallback scope(self);
    self.wake_fd_->drain();  // before the turn, which then sees what the wakers queued
    self.hooks_.run_turn();
  }

  void add_timer_fd_event() {
    event_add(timer_.get(), nullptr);  // cannot fail for a timerfd on our own base
    timer_fd_added_ = true;
  }

  void disarm_timer_fd() {
    timer_fd_->disarm();
    if (owned_base_ == nullptr && timer_fd_added_) {
      event_del(timer_.get());
      timer_fd_added_ = false;
    }
  }

  void add_native_timer() {
    // libevent adds the timeout to its cached clock, which during callbacks is the time the
    // poll returned; refresh it after reading ours so the timer is not early by the callbacks'
    // time. If it still fires early (its clock is coarser than steady_clock), on_timer waits
    // for the rest. Saturating: a deadline near TimePoint::min() is due now (a wrapped-around
    // difference used to put it centuries ahead, so it never fired), and one near
    // TimePoint::max() is capped at kMaxTimeout, which libevent's timeval arithmetic and every
    // method's poll handle.
    const TimePoint now = Clock::now();
    event_base_update_cache_time(base_);
    const Duration delay =
        std::clamp(sub_saturating(deadline_, now), Duration::zero(), Duration(kMaxTimeout));
    const auto us = std::chrono::ceil<std::chrono::microseconds>(delay).count();
    const timeval timeout{.tv_sec = static_cast<time_t>(us / 1'000'000),
                          .tv_usec = static_cast<suseconds_t>(us % 1'000'000)};
    event_add(timer_.get(), &timeout);  // cannot fail for a timer on our own base
  }

  void fire() {
    armed_ = false;
    hooks_.timer_expired();
  }

  static void on_timer_fd(evutil_socket_t, short, void* arg) {
    auto& self = *static_cast<LibeventBackend*>(arg);
    InCallback scope(self);
    // An expiry reported in the same poll as a callback that re-armed (which cleared it in the
    // kernel) or cleared the timer is stale; the kernel reports the new arming when it is due.
    if (!self.armed_ || Clock::now() < self.deadline_) return;
    self.fire();
    // Not re-armed: clear the expiry, or the level-triggered poll would report it forever.
    if (!self.armed_) self.disarm_timer_fd();
  }

  static void on_timer(evutil_socket_t, short, void* arg) {
    auto& self = *static_cast<LibeventBackend*>(arg);
    InCallback scope(self);
    if (!self.armed_) return;
    // Never early: libevent's coarse clock may call this up to a tick before the deadline.
    if (Clock::now() < self.deadline_) {
      self.add_native_timer();
      return;
    }
    self.fire();
  }

  static void on_readable(evutil_socket_t fd, short, void* arg) {
    auto& self = *static_cast<LibeventBackend*>(arg);
    InCallback scope(self);
    self.hooks_.fd_ready(fd, IoEvents::kReadable);
  }

  static void on_writable(evutil_socket_t fd, short, void* arg) {
    auto& self = *static_cast<LibeventBackend*>(arg);
    InCallback scope(self);
    self.hooks_.fd_ready(fd, IoEvents::kWritable);
  }

  // The longest timeout handed to libevent.
  static constexpr std::chrono::hours kMaxTimeout{24};

  LoopHooks& hooks_;
  BasePtr owned_base_;  // null for an adopted base; declared first, so freed last
  event_base* const base_;
  const bool select_;  // the base uses the select method: fds must be below FD_SETSIZE
  EventPtr turn_;      // zero-timeout timer (or activated): a requested turn (a host's base:
                       // or a wake-up)
  // weft's own base: what wake() signals, and its persistent read event. Null on a host's.
  std::unique_ptr<weft::detail::WakeFd> wake_fd_;
  EventPtr wake_event_;
  int in_callback_ = 0;  // depth of weft's callbacks running (loop thread)
  // weft's earliest deadline: a read event on timer_fd_, or (without one) libevent's timer.
  std::unique_ptr<backends::detail::TimerFd> timer_fd_;
  EventPtr timer_;
  bool timer_fd_added_ = false;
  bool armed_ = false;
  TimePoint deadline_{};
  absl::flat_hash_map<int, FdEvents> fds_;
};

// The base configuration: `method` null for libevent's own choice, else only that method.
ConfigPtr make_config(const std::string& method) {
  ConfigPtr config(event_config_new());
  if (config == nullptr) throw std::bad_alloc();
  // One thread runs a base of weft's own, and the one call other threads make (wake()) goes
  // through a WakeFd: no lock is needed, and a locked base takes and releases its lock several
  // times per loop iteration (callgrind: about half of an idle non-blocking turn's
  // instructions). Such a base also has no notification descriptor of libevent's.
  event_config_set_flag(config.get(), EVENT_BASE_FLAG_NOLOCK);
  // Not EVENT_BASE_FLAG_PRECISE_TIMER: on epoll it costs a timerfd_settime() per loop iteration
  // (measured: half of a turn's cost). weft's timer is a timerfd of its own, armed only when the
  // earliest deadline changes (see set_timer).
  if (!method.empty()) {
    // The name asks for one method: the EVENT_NO<METHOD> variables must not override it.
    event_config_set_flag(config.get(), EVENT_BASE_FLAG_IGNORE_ENV);
    for (const std::string& m : supported_methods()) {
      if (m != method) event_config_avoid_method(config.get(), m.c_str());
    }
  }
  return config;
}

// Makes a base for `method` (empty: libevent's own choice). libevent cannot report that it ran
// out of descriptors: it calls exit(1) (see NativeFdScope), so the descriptors it will open are
// checked first and a shortage is a std::system_error (EMFILE). weft installs no
// event_set_fatal_callback(): libevent exits anyway once the callback returns, and installing
// one would replace the application's own (libevent has no getter to chain it).
BasePtr make_base(const std::string& method) {
  ConfigPtr config = make_config(method);
  const std::string what =
      absl::StrCat("cannot make an event_base", method.empty() ? "" : " with method ", method);
  BasePtr base;
  {
    // select's own descriptors must be below FD_SETSIZE too: libevent puts its notification fd
    // in the fd_set at once.
    backends::detail::NativeFdScope scope(descriptors_needed(method),
                                          absl::StrCat("weft: libevent: ", what),
                                          method == "select" ? FD_SETSIZE : INT_MAX);
    // Where select could not work, libevent's own choice must not fall back to it.
    if (method.empty() && scope.highest_reserved() >= FD_SETSIZE) {
      event_config_avoid_method(config.get(), "select");
    }
    errno = 0;
    base.reset(event_base_new_with_config(config.get()));
  }
  if (base == nullptr) throw_errno(errno != 0 ? errno : ENOMEM, what);
  if (!method.empty() && method != event_base_get_method(base.get())) {
    throw std::runtime_error(absl::StrCat("weft: libevent: asked for method ", method, ", got ",
                                          event_base_get_method(base.get())));
  }
  return base;
}

std::function<std::unique_ptr<Backend>(LoopHooks&)> factory_for(std::string method) {
  return [method = std::move(method)](LoopHooks& hooks) -> std::unique_ptr<Backend> {
    BasePtr base = make_base(method);
    event_base* raw = base.get();
    return std::make_unique<LibeventBackend>(hooks, std::move(base), raw);
  };
}

// Registers "libevent" and one "libevent:<method>" per method libevent supports here. Nothing
// here opens a descriptor: a process started with a low descriptor limit must reach main().
// libevent's own choice of method depends on the environment and on which methods initialise,
// so the registry learns it from a probe base made on first need.
struct Registrations {
  Registrations() {
    register_backend(BackendInfo{
        .name = "libevent",
        .preference = 20,
        .factory = factory_for(""),
        .find_mechanism = [] { return std::string(event_base_get_method(make_base("").get())); },
    });
    for (const std::string& method : supported_methods()) {
      // Variants such as "epoll (with changelist)" are flags on a method, not methods.
      if (method.find_first_of(" (") != std::string::npos) continue;
      register_backend(BackendInfo{
          .name = absl::StrCat("libevent:", method),
          .mechanism = method,
          .preference = 21,
          .factory = factory_for(method),
      });
    }
  }
};

const Registrations kRegistrations;

}  // namespace

event_base* native_base(Reactor& reactor) {
  auto* backend = dynamic_cast<LibeventBackend*>(&reactor.backend());
  if (backend == nullptr) {
    throw UsageError(absl::StrCat("weft::libevent::native_base: reactor '", reactor.name(),
                                  "' does not run on libevent"));
  }
  return backend->base();
}

std::unique_ptr<Reactor> adopt(event_base* base) {
  if (base == nullptr) throw std::invalid_argument("weft::libevent::adopt: null event_base");
  return std::make_unique<Reactor>("libevent", [base](LoopHooks& hooks) {
    return std::make_unique<LibeventBackend>(hooks, nullptr, base);
  });
}

}  // namespace weft::libevent
