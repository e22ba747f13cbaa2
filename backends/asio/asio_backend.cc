#include "weft/backends/asio/asio_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/basic_stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>
#include <boost/version.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "weft/backends/detail/file_flags_guard.h"
#include "weft/backends/detail/native_fd_scope.h"
#include "weft/backends/detail/timer_fd.h"
#include "weft/core/backend.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"

static_assert(BOOST_VERSION >= 108100, "weft's Asio backend needs Boost 1.81 or later");

#if !defined(BOOST_ASIO_HAS_POSIX_STREAM_DESCRIPTOR)
#error "weft's Asio backend watches fds with posix::stream_descriptor, which this platform lacks"
#endif

// What Asio waits with, chosen the way boost/asio/detail/reactor.hpp chooses its reactor.
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define WEFT_ASIO_MECHANISM "io_uring"
#elif defined(BOOST_ASIO_HAS_EPOLL)
#define WEFT_ASIO_MECHANISM "epoll"
#define WEFT_ASIO_EPOLL 1
#include <sys/epoll.h>
#elif defined(BOOST_ASIO_HAS_KQUEUE)
#define WEFT_ASIO_MECHANISM "kqueue"
#elif defined(BOOST_ASIO_HAS_DEV_POLL)
#define WEFT_ASIO_MECHANISM "/dev/poll"
#else
#define WEFT_ASIO_MECHANISM "select"
#endif

namespace weft::asio {
namespace {

namespace net = boost::asio;

// weft's timer is Asio's own steady_timer whatever WEFT_TIMER says (backends/detail/timer_fd.h):
// Asio already waits for its earliest timer with a timerfd of its own on Linux (armed when the
// earliest deadline changes) and with nanosecond timeouts elsewhere, and checks steady_clock
// before running a timer, so it is precise and never early as it is. The variable is still
// checked, so that a typo fails the same way on every backend.
void check_timer_source() { (void)backends::detail::use_timer_fd("asio"); }

constexpr const char* kMechanism = WEFT_ASIO_MECHANISM;

// The descriptors an io_context's reactor opens (measured with Boost 1.81's epoll reactor:
// epoll set, eventfd interrupter, timerfd).
constexpr int kDescriptorsNeeded = 3;

// I/O objects bound to io_context's own executor type: no type-erased any_io_executor.
using Executor = net::io_context::executor_type;
using WorkGuard = net::executor_work_guard<Executor>;
using SteadyTimer =
    net::basic_waitable_timer<std::chrono::steady_clock,
                              net::wait_traits<std::chrono::steady_clock>, Executor>;
using Descriptor = net::posix::basic_stream_descriptor<Executor>;

// weft's deadlines go to the timer unconverted.
static_assert(std::is_same_v<SteadyTimer::time_point, TimePoint>);

[[noreturn]] void throw_error(const boost::system::error_code& ec, const std::string& what) {
  throw std::system_error(std::error_code(ec), absl::StrCat("weft: asio: ", what));
}

// Runs `f`, turning the boost::system::system_error that Asio throws (making its reactor,
// running, re-making it after fork) into the std::system_error the Backend contract promises.
template <typename F>
decltype(auto) translating_errors(const char* what, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const boost::system::system_error& e) {
    throw_error(e.code(), what);
  }
}

// An fd of the backend's own, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

class AsioBackend final : public Backend {
 public:
  // Owns a fresh context if `adopted` is null; otherwise runs on the host's.
  AsioBackend(LoopHooks& hooks, net::io_context* adopted)
      : hooks_(hooks),
        // Hint 1: one thread runs the context, so Asio can queue handlers posted from it
        // without locking; other threads (wake()) still may post.
        owned_context_(adopted == nullptr ? std::make_unique<net::io_context>(1) : nullptr),
        context_(adopted == nullptr ? *owned_context_ : *adopted),
        timer_(context_.get_executor()),
        // A non-owning handle whose weak copies let queued handlers see that the backend is
        // gone: on a host's context they can outlive it.
        alive_(this, [](AsioBackend*) {}),
        weak_(alive_) {
    // An owned context never runs out of work, so it never stops and run_one() waits in the
    // kernel when idle. A host's context only gets a guard while weft drives it (run_once).
    if (owned_context_ != nullptr) owned_guard_.emplace(context_.get_executor());
  }

  ~AsioBackend() override {
    // From here on, handlers of weft's still queued in a host's context do nothing (they hold
    // a weak pointer); those in weft's own context are destroyed with it, never run.
    alive_.reset();
    timer_.cancel();
    fds_.clear();  // releases each descriptor: weft's fds stay open
    owned_guard_.reset();
    // The members go in reverse order: the timer before the owned context, whose destruction
    // destroys every handler still queued in it without running it.
  }

  net::io_context& context() { return context_; }

  std::string description() const override {
    std::string version = absl::StrCat(BOOST_VERSION / 100000, ".", BOOST_VERSION / 100 % 1000);
    if (BOOST_VERSION % 100 != 0) absl::StrAppend(&version, ".", BOOST_VERSION % 100);
    return absl::StrCat("Boost.Asio ", version, " (", kMechanism, ")");
  }

  // One native step. Blocking: run_one() (which waits in the kernel only if nothing is
  // queued), then everything else that was ready, up to a marker the step's first handler
  // posts (on weft's own context: posted after that handler, and only if something else can
  // be ready). Non-blocking: everything that was queued, plus one pass of Asio's reactor over the
  // kernel and everything that pass found, up to a marker posted after it (see below). Turns
  // requested during the step, and I/O found by a later reactor pass, wait for the next step,
  // so a callback that keeps requesting turns or a watcher that never drains cannot keep
  // run_once() from returning, and a stop() is seen after at most what was ready when the
  // step began. Running all of that (not one handler) matters to hosts that step weft once
  // per readiness they see and then wait again (GuestReactor).
  void run_once(bool may_block) override {
    // An io_context that ran out of work (a host's) or that someone stopped (native_context()
    // gives out weft's own) returns at once until restarted. Asking takes the context's lock,
    // so weft's own context is asked only after a step in which Asio ran nothing, which is
    // how a stopped context shows.
    if (owned_context_ == nullptr || ran_nothing_) {
      ran_nothing_ = false;
      if (context_.stopped()) context_.restart();
    }
    std::optional<WorkGuard> guard;
    if (owned_context_ == nullptr) guard.emplace(context_.get_executor());
    step_.id++;
    step_.active = true;
    step_.marker_posted = false;
    step_.marker_ran = false;
    step_.handler_ran = false;
    // Ends the step however it ends, and posts the turn requested during it.
    struct EndStep {
      AsioBackend& self;
      ~EndStep() {
        self.step_.active = false;
        if (self.turn_deferred_) {
          self.turn_deferred_ = false;
          self.post_turn();
        }
      }
    } end_step{*this};
    translating_errors("run_once", [&] {
      if (may_block) {
        const std::size_t ran = context_.run_one();
        if (ran == 0) ran_nothing_ = true;
        if (ran == 0 || !step_.handler_ran) return;  // nothing, or a handler not of weft's
        if (!step_.marker_posted) {
          // On weft's own context the end marker is posted only now, and only if something
          // else can be ready: reaching it takes Asio another pass over the kernel (its
          // reactor "task" sits ahead of the marker in the handler queue), which the raw
          // library's run_one() does not make. With no fd watched, no timer armed and no
          // turn or wake-up queued, nothing can be.
          if (!anything_else_queued()) return;
          step_.marker_posted = true;
          post_end_marker();
        }
      } else if (owned_context_ != nullptr && !anything_else_queued()) {
        // Nothing of weft's is queued or watched: one pass over the kernel, as the raw
        // library's poll() makes, instead of the two below.
        if (context_.poll_one() == 0) ran_nothing_ = true;
        return;
      } else {
        // Asio's reactor pass (its "task") sits in the handler queue behind what was queued
        // before its last pass, and puts what it finds at the back. A marker posted now runs
        // after this step's pass; the end marker it posts then lands behind what that pass
        // found. Ending at the first marker instead would leave readiness that was there
        // before the step (a signal, data on a pipe) for a second step whenever a handler
        // (a turn) was queued ahead of the pass.
        step_.marker_posted = true;
        net::post(context_, guarded([id = step_.id](AsioBackend& self) {
                    if (self.step_.active && self.step_.id == id) self.post_end_marker();
                  }));
      }
      while (!step_.marker_ran) {
        if (context_.poll_one() == 0) {
          ran_nothing_ = true;
          break;
        }
      }
    });
  }

  void request_turn() override {
    if (turn_posted_) return;
    turn_posted_ = true;
    // Inside a step, the turn waits for the step's end: posted now, it could land ahead of the
    // step's end marker and run in this same step.
    if (step_.active) {
      turn_deferred_ = true;
    } else {
      post_turn();
    }
  }

  void wake() override {
    // One wake-up handler queued at a time: later calls ride along, because the handler clears
    // the flag before the turn, which then sees whatever those callers queued before calling.
    if (wake_posted_.exchange(true, std::memory_order_acq_rel)) return;
    net::post(context_, guarded([](AsioBackend& self) {
                self.begin_handler();
                self.wake_posted_.exchange(false, std::memory_order_acq_rel);
                self.hooks_.run_turn();
              }));
  }

  void set_timer(TimePoint deadline) override {
    // expires_at() cancels the pending wait; its handler, and that of a wait that completed
    // but has not run yet, sees a stale generation and does nothing. Asio's timer queue
    // saturates its own arithmetic: TimePoint::min() is due, TimePoint::max() never is.
    translating_errors("set_timer", [&] { timer_.expires_at(deadline); });
    const std::uint64_t generation = timer_wait_ = next_generation_++;
    timer_.async_wait(guarded([generation](AsioBackend& self, const boost::system::error_code& ec) {
      self.begin_handler();
      if (generation != self.timer_wait_ || ec == net::error::operation_aborted) return;
      self.timer_wait_ = 0;
      self.hooks_.timer_expired();
    }));
  }

  void clear_timer() override {
    timer_wait_ = 0;
    translating_errors("clear_timer", [&] { timer_.cancel(); });
  }

  void set_fd_interest(int fd, IoEvents events) override {
    auto it = fds_.find(fd);
    // kNone cancels the waits below and keeps the descriptor registered (Asio registers it
    // once, for every event) until release_fd().
    if (events == IoEvents::kNone && it == fds_.end()) return;
    FdWatch* watch;
    if (it == fds_.end()) {
      auto fresh = make_fd_watch(fd);
      watch = fresh.get();
      fds_.emplace(fd, std::move(fresh));
    } else {
      watch = it->second.get();
    }
    const bool removed =
        (static_cast<unsigned>(watch->interest) & ~static_cast<unsigned>(events)) != 0;
    watching_ += static_cast<int>(events != IoEvents::kNone) -
                 static_cast<int>(watch->interest != IoEvents::kNone);
    watch->interest = events;
    if (removed) {
      // Asio cancels a descriptor's waits all together; the direction that stays is re-armed
      // below (re-arming loses nothing: a wait on a ready fd completes at once).
      boost::system::error_code ignored;
      watch->descriptor.cancel(ignored);
      watch->read_wait = 0;
      watch->write_wait = 0;
    }
    arm(fd, *watch);
  }

  void release_fd(int fd) override {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return;
    if (it->second->interest != IoEvents::kNone) --watching_;
    fds_.erase(it);  // ~FdWatch cancels the waits and releases the fd
  }

  void after_fork_in_child() override {
    // Asio re-creates its epoll/kqueue set and its interrupter in the child and re-registers
    // the descriptors it knows, so releasing them afterwards leaves the parent's set alone.
    // It closes the old descriptors first, so it needs no more room than the parent had.
    std::optional<backends::detail::NativeFdScope> scope;
    if (!backends::detail::NativeFdScope::standard_fds_open()) scope.emplace(0, "weft: asio");
    translating_errors("notify_fork",
                       [&] { context_.notify_fork(net::execution_context::fork_child); });
  }

 private:
  // One watched fd. The descriptor is weft's duplicate, which the reactor closes itself.
  struct FdWatch {
    explicit FdWatch(net::io_context& context) : descriptor(context.get_executor()) {}
    ~FdWatch() {
      // release(), not close(): deregisters the fd and cancels its waits, leaves it open.
      if (descriptor.is_open()) descriptor.release();
    }
    FdWatch(const FdWatch&) = delete;
    FdWatch& operator=(const FdWatch&) = delete;

    Descriptor descriptor;
    IoEvents interest = IoEvents::kNone;
    // Generation of the pending wait in each direction; 0: none pending.
    std::uint64_t read_wait = 0;
    std::uint64_t write_wait = 0;
    // The step (Step::id) in which each direction was last delivered.
    std::uint64_t read_step = 0;
    std::uint64_t write_step = 0;
  };

  // The run_once() in progress, if any.
  struct Step {
    std::uint64_t id = 0;
    bool active = false;
    bool marker_posted = false;
    bool marker_ran = false;
    bool handler_ran = false;  // a handler of weft's ran in this step
  };

  // A handler that calls `f(backend, args...)`, or does nothing once the backend is gone. On
  // weft's own context it holds a plain pointer: the context is the backend's, and destroying
  // it destroys its queued handlers without running them. On a host's context handlers can
  // outlive the backend, so they hold a weak pointer and lock it (two atomic operations more
  // per handler, and two for the copy).
  template <typename F>
  struct Guarded {
    AsioBackend* owner;  // null on a host's context
    std::weak_ptr<AsioBackend> weak;
    F f;
    template <typename... Args>
    void operator()(Args&&... args) {
      if (owner != nullptr) {
        f(*owner, std::forward<Args>(args)...);
      } else if (std::shared_ptr<AsioBackend> self = weak.lock()) {
        f(*self, std::forward<Args>(args)...);
      }
    }
  };
  template <typename F>
  Guarded<F> guarded(F f) {
    if (owned_context_ != nullptr) return Guarded<F>{this, {}, std::move(f)};
    return Guarded<F>{nullptr, weak_, std::move(f)};
  }

  // Called first by every handler of weft's. On a host's context the first of a blocking step
  // posts the marker that ends it: from inside a handler, the marker goes before anything the
  // handler queues, and Asio recycles its memory. On weft's own context run_once() decides
  // after the handler whether a marker is needed at all.
  void begin_handler() {
    if (!step_.active) return;
    step_.handler_ran = true;
    // On weft's own context a blocking step decides after its first handler (run_once).
    if (step_.marker_posted || owned_context_ != nullptr) return;
    step_.marker_posted = true;
    post_end_marker();
  }

  // Whether a handler of weft's other than the one that just ran may be queued, or found by
  // Asio's next pass over the kernel. (An owned context holds no one else's handlers.)
  // A turn requested during the step is not queued yet (it is posted when the step ends).
  bool anything_else_queued() const {
    return watching_ != 0 || timer_wait_ != 0 || (turn_posted_ && !turn_deferred_) ||
           wake_posted_.load(std::memory_order_acquire);
  }

  void post_end_marker() {
    net::post(context_, guarded([id = step_.id](AsioBackend& self) {
                if (self.step_.active && self.step_.id == id) self.step_.marker_ran = true;
              }));
  }

  void post_turn() {
    net::post(context_, guarded([](AsioBackend& self) {
                self.begin_handler();
                self.turn_posted_ = false;
                self.hooks_.run_turn();
              }));
  }

  std::unique_ptr<FdWatch> make_fd_watch(int fd) {
    check_pollable(fd);
    auto watch = std::make_unique<FdWatch>(context_);
    boost::system::error_code ec;
    watch->descriptor.assign(fd, ec);
    if (ec) throw_error(ec, absl::StrCat("cannot watch fd ", fd));
    // Asio switches a descriptor to non-blocking mode before its first wait, unless it has
    // recorded that it did so already. Let Asio do it now, then put the flags back: Asio will
    // not touch them again.
    {
      backends::detail::FileFlagsGuard keep(fd);
      watch->descriptor.native_non_blocking(true, ec);
    }
    if (ec) throw_error(ec, absl::StrCat("cannot watch fd ", fd));
    return watch;
  }

  // Asio's epoll reactor accepts an fd that epoll refuses (a regular file, /dev/null) and only
  // fails its waits later, asynchronously; ask epoll directly so that watching it throws.
  void check_pollable([[maybe_unused]] int fd) {
#if defined(WEFT_ASIO_EPOLL)
    // Sockets and pipes, the common case, always can be (one fstat instead of an add and a
    // delete); anything else is asked.
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              absl::StrCat("weft: asio: cannot watch fd ", fd));
    }
    if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode)) return;
    if (probe_.get() < 0) {
      probe_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
      if (probe_.get() < 0) {
        throw std::system_error(errno, std::generic_category(), "weft: asio: epoll_create1");
      }
    }
    epoll_event event{};
    if (epoll_ctl(probe_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              absl::StrCat("weft: asio: cannot watch fd ", fd));
    }
    epoll_ctl(probe_.get(), EPOLL_CTL_DEL, fd, &event);
#endif
  }

  // Starts a wait in each direction of interest that has none pending.
  void arm(int fd, FdWatch& watch) {
    if (any(watch.interest & IoEvents::kReadable) && watch.read_wait == 0) {
      start_fd_wait(fd, watch, IoEvents::kReadable);
    }
    if (any(watch.interest & IoEvents::kWritable) && watch.write_wait == 0) {
      start_fd_wait(fd, watch, IoEvents::kWritable);
    }
  }

  void start_fd_wait(int fd, FdWatch& watch, IoEvents direction) {
    const bool read = direction == IoEvents::kReadable;
    const std::uint64_t generation = next_generation_++;
    (read ? watch.read_wait : watch.write_wait) = generation;
    watch.descriptor.async_wait(
        read ? Descriptor::wait_read : Descriptor::wait_write,
        guarded(
            [fd, generation, direction](AsioBackend& self, const boost::system::error_code& ec) {
              self.on_fd_wait(fd, generation, direction, ec);
            }));
  }

  void on_fd_wait(int fd, std::uint64_t generation, IoEvents direction,
                  const boost::system::error_code& ec) {
    begin_handler();
    auto it = fds_.find(fd);
    if (it == fds_.end()) return;  // interest removed: the fd was released
    FdWatch& watch = *it->second;
    std::uint64_t& pending = direction == IoEvents::kReadable ? watch.read_wait : watch.write_wait;
    if (pending != generation) return;  // cancelled or superseded since
    pending = 0;
    if (ec == net::error::operation_aborted) return;
    // A non-blocking step runs two reactor passes (see run_once); an fd that stays ready is
    // found by both, and a completion left by the previous step's second pass runs before
    // this step's first. Deliver one per step and direction, as libuv and libevent do, and
    // just re-arm for the other: the next step's pass finds the fd again if it is still ready.
    std::uint64_t& delivered =
        direction == IoEvents::kReadable ? watch.read_step : watch.write_step;
    if (step_.active && delivered == step_.id) {
      arm(fd, watch);
      return;
    }
    if (step_.active) delivered = step_.id;
    // Any other error is reported as readiness: the watcher's own I/O call will say what it is.
    hooks_.fd_ready(fd, direction);
    // The watcher may have changed the interest or dropped the fd. Asio re-registers the fd
    // for each wait, and the kernel then reports it again if it is still ready: weft's watchers
    // see level-triggered readiness.
    auto again = fds_.find(fd);
    if (again != fds_.end()) arm(fd, *again->second);
  }

  LoopHooks& hooks_;
  std::unique_ptr<net::io_context> owned_context_;  // null on a host's context
  net::io_context& context_;
  std::optional<WorkGuard> owned_guard_;
  SteadyTimer timer_;
  std::uint64_t timer_wait_ = 0;  // generation of the pending timer wait; 0: none
  absl::flat_hash_map<int, std::unique_ptr<FdWatch>> fds_;
  int watching_ = 0;  // fds_ entries with some interest (the others are kept for later)
  std::uint64_t next_generation_ = 1;
  bool turn_posted_ = false;    // a turn is requested and has not run yet
  bool turn_deferred_ = false;  // ... and is to be posted when the current step ends
  std::atomic<bool> wake_posted_{false};
  bool ran_nothing_ = false;  // Asio ran no handler in some step since the last restart check
  Step step_;
  UniqueFd probe_;  // an epoll instance for check_pollable(), made on first use
  std::shared_ptr<AsioBackend> alive_;
  const std::weak_ptr<AsioBackend> weak_;
};

const BackendRegistration kRegistration(BackendInfo{
    .name = "asio",
    .mechanism = kMechanism,
    .preference = 30,
    .factory = [](LoopHooks& hooks) -> std::unique_ptr<Backend> {
      check_timer_source();
      // Asio makes its reactor here, with the timer: 3 descriptors (epoll set, eventfd
      // interrupter, timerfd). It reports a shortage itself, as boost::system::system_error
      // (translated below), but only after making some of them; checking first (NativeFdScope)
      // refuses cleanly, before Asio is touched, and keeps its descriptors above 2: a closed
      // standard stream must not become Asio's wake-up descriptor.
      backends::detail::NativeFdScope scope(kDescriptorsNeeded,
                                            "weft: asio: cannot make an io_context");
      return translating_errors("cannot make an io_context",
                                [&] { return std::make_unique<AsioBackend>(hooks, nullptr); });
    },
});

}  // namespace

net::io_context& native_context(Reactor& reactor) {
  auto* backend = dynamic_cast<AsioBackend*>(&reactor.backend());
  if (backend == nullptr) {
    throw UsageError(absl::StrCat("weft::asio::native_context: reactor '", reactor.name(),
                                  "' does not run on Asio"));
  }
  return backend->context();
}

std::unique_ptr<Reactor> adopt(net::io_context& context) {
  return std::make_unique<Reactor>("asio", [&context](LoopHooks& hooks) {
    check_timer_source();
    // The host's context may not have made its reactor yet: that happens here.
    return translating_errors("cannot use the host's io_context",
                              [&] { return std::make_unique<AsioBackend>(hooks, &context); });
  });
}

}  // namespace weft::asio
