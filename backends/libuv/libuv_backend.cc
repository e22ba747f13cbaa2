#include "weft/backends/libuv/libuv_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "weft/backends/detail/file_flags_guard.h"
#include "weft/backends/detail/native_fd_scope.h"
#include "weft/backends/detail/timer_fd.h"
#include "weft/core/backend.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"

namespace weft::libuv {
namespace {

#if defined(__linux__)
constexpr const char* kMechanism = "epoll";
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
constexpr const char* kMechanism = "kqueue";
#elif defined(_WIN32)
constexpr const char* kMechanism = "iocp";
#else
constexpr const char* kMechanism = "poll";
#endif

[[noreturn]] void throw_uv(int status, const std::string& what) {
  throw std::system_error(-status, std::generic_category(),
                          absl::StrCat("weft: libuv: ", what, ": ", uv_strerror(status)));
}

// Runs `call` (a libuv call that opens descriptors) where that is safe (NativeFdScope): libuv
// asserts that every descriptor it closes is above 2, so with a standard stream closed its
// descriptors must not take that number; and the first loop of a process makes libuv's
// process-wide signal lock pipe, which abort()s when it cannot be made.
// uv_loop_init's first call opens its epoll set, then the lock pipe: 3 descriptors get past
// the point where libuv aborts; the rest of a loop's (its signal pipe and wake-up eventfd) fail
// with an error code. Set once a loop was made: the lock pipe exists from then on.
std::atomic<bool> lock_pipe_made{false};

// Always under the scope's lock, even with nothing to reserve or hold: libuv closes its
// descriptors with a raw close syscall that ThreadSanitizer does not see, so without an order
// between the loops made on different threads, TSan takes a number's reuse by the next loop for
// a race. A loop costs about 10 us to make; the lock adds nothing measurable.
template <typename Call>
int with_native_fds(const char* what, Call call) {
  const bool first = !lock_pipe_made.load(std::memory_order_acquire);
  backends::detail::NativeFdScope scope(first ? 3 : 0, absl::StrCat("weft: libuv: ", what));
  const int r = call();
  if (r == 0) lock_pipe_made.store(true, std::memory_order_release);
  return r;
}

// libuv hands a handle's memory back only in its close callback.
template <typename Handle>
void close_and_delete(Handle* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

class LibuvBackend final : public Backend {
 public:
  // Owns a fresh loop if `adopted` is null; otherwise runs on the host's loop.
  LibuvBackend(LoopHooks& hooks, uv_loop_t* adopted)
      : hooks_(hooks),
        owned_(adopted == nullptr),
        timer_fd_(backends::detail::use_timer_fd("libuv") ? make_timer_fd() : nullptr) {
    if (owned_) {
      init_loop();
      loop_ = &loop_storage_;
    } else {
      loop_ = adopted;
    }
    // The destructor does not run for a constructor that throws: release what was made.
    try {
      init_handles();
    } catch (...) {
      close_all();
      throw;
    }
  }

  ~LibuvBackend() override { close_all(); }

  uv_loop_t* loop() const { return loop_; }

  std::string description() const override {
    return absl::StrCat("libuv ", uv_version_string(), " (", kMechanism,
                        timer_fd_ != nullptr ? ", timerfd" : "", ")");
  }

  void run_once(bool may_block) override {
    // UV_RUN_ONCE does not block in an iteration whose idle phase had work (a requested turn),
    // but libuv 1.44 runs due timers *before* its poll and may then block: with weft's timer
    // already due, it would run the timer and sleep. Poll without blocking then.
    // (A timerfd is an fd like any other: its readiness ends the poll, whatever libuv's order.)
    bool block = may_block;
    if (block && timer_ != nullptr && uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) {
      uv_update_time(loop_);
      block = uv_timer_get_due_in(timer_) > 0;
    }
    // While weft itself drives a host's loop, the wake-up handle must keep it blocking.
    if (!owned_) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
    uv_run(loop_, block ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    if (!owned_) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  }

  WaitFd wait_fd() const override { return WaitFd{.fd = uv_backend_fd(loop_), .complete = true}; }

  void request_turn() override {
    uv_idle_start(idle_, [](uv_idle_t* idle) {
      uv_idle_stop(idle);
      static_cast<LibuvBackend*>(idle->data)->hooks_.run_turn();
    });
  }

  void wake() override { uv_async_send(async_); }

  // Two ways to wait for weft's deadline (backends/detail/timer_fd.h). With a timerfd (Linux, by
  // default): the kernel timer is armed with the absolute deadline and watched by a uv_poll_t,
  // referenced only while armed, so an idle weft does not keep a host's uv_run() alive. With
  // libuv's own timer (WEFT_TIMER=native, or no timerfd): whole milliseconds, rounded so that
  // it is never early. Either way timer_expired() is called only once steady_clock has reached
  // the deadline.
  void set_timer(TimePoint deadline) override {
    armed_ = true;
    deadline_ = deadline;
    if (timer_fd_ != nullptr) {
      timer_fd_->arm(deadline);
      uv_ref(reinterpret_cast<uv_handle_t*>(timer_poll_));
    } else {
      start_native_timer();
    }
  }

  void clear_timer() override {
    armed_ = false;
    if (timer_fd_ != nullptr) {
      disarm_timer_fd();
    } else {
      uv_timer_stop(timer_);
    }
  }

  void set_fd_interest(int fd, IoEvents events) override {
    auto it = polls_.find(fd);
    if (events == IoEvents::kNone) {
      // The handle stays, stopped, for the next start (uv_poll_init costs four system calls).
      if (it != polls_.end()) uv_poll_stop(it->second);
      return;
    }
    uv_poll_t* poll;
    const bool fresh = it == polls_.end();
    if (fresh) {
      poll = new uv_poll_t;
      const int r = [&] {
        backends::detail::FileFlagsGuard keep(fd);  // uv_poll_init makes the fd non-blocking
        return uv_poll_init(loop_, poll, fd);
      }();
      if (r != 0) {
        delete poll;
        throw_uv(r, absl::StrCat("cannot watch fd ", fd));
      }
      poll->data = this;
    } else {
      poll = it->second;
    }
    int uv_events = 0;
    if (any(events & IoEvents::kReadable)) uv_events |= UV_READABLE;
    if (any(events & IoEvents::kWritable)) uv_events |= UV_WRITABLE;
    const int r = uv_poll_start(poll, uv_events, [](uv_poll_t* p, int status, int ev) {
      IoEvents ready = IoEvents::kNone;
      if (status < 0) {
        ready = IoEvents::kBoth;  // let the watchers' own I/O calls report
                                  // the error
      } else {
        if (ev & (UV_READABLE | UV_DISCONNECT)) ready = ready | IoEvents::kReadable;
        if (ev & UV_WRITABLE) ready = ready | IoEvents::kWritable;
      }
      int fd = -1;
      uv_fileno(reinterpret_cast<uv_handle_t*>(p), &fd);
      static_cast<LibuvBackend*>(p->data)->hooks_.fd_ready(fd, ready);
    });
    if (r != 0) {
      if (fresh) close_and_delete(poll);
      throw_uv(r, absl::StrCat("cannot watch fd ", fd));
    }
    if (fresh) polls_.emplace(fd, poll);
  }

  void release_fd(int fd) override {
    auto it = polls_.find(fd);
    if (it == polls_.end()) return;
    close_and_delete(it->second);  // uv_close stops it
    polls_.erase(it);
  }

  void after_fork_in_child() override {
    // The timerfd's file is the parent's too: put a fresh one under its number first, so that
    // uv_loop_fork registers the child's own and the teardown cannot disarm the parent's.
    if (timer_fd_ != nullptr) timer_fd_->replace_after_fork();
    // Re-creates the epoll set (and libuv's internal pipes) in the child and re-adds the
    // watched fds there, so closing handles afterwards leaves the parent's set alone. It
    // closes the old descriptors before making new ones, so it needs no more room than the
    // parent had; the new ones must still stay above 2.
    if (int r = with_native_fds("uv_loop_fork", [&] { return uv_loop_fork(loop_); }); r != 0) {
      throw_uv(r, "uv_loop_fork");
    }
  }

 private:
  void init_loop() {
    const int r = with_native_fds("uv_loop_init", [&] { return uv_loop_init(&loop_storage_); });
    if (r == 0) return;
    // libuv 1.44 does not close its epoll set when a later step of uv_loop_init fails (its
    // signal pipe or wake-up eventfd, e.g. at EMFILE): each failed attempt would leak it.
    // (Later versions close it and reset backend_fd to -1.) The field is 0, from uv_loop_init's
    // memset, if it failed before trying; libuv's own descriptors are above 2 (NativeFdScope).
    if (loop_storage_.backend_fd > STDERR_FILENO) close(loop_storage_.backend_fd);
    throw_uv(r, "uv_loop_init");
  }

  void init_handles() {
    idle_ = new uv_idle_t;
    uv_idle_init(loop_, idle_);
    idle_->data = this;
    if (timer_fd_ != nullptr) {
      init_timer_poll();
    } else {
      timer_ = new uv_timer_t;
      uv_timer_init(loop_, timer_);
      timer_->data = this;
    }
    auto* async = new uv_async_t;
    if (int r = uv_async_init(
            loop_, async,
            [](uv_async_t* a) { static_cast<LibuvBackend*>(a->data)->hooks_.run_turn(); });
        r != 0) {
      delete async;  // not initialised: libuv holds nothing of it
      throw_uv(r, "uv_async_init");
    }
    async_ = async;
    async_->data = this;
    // On a host's loop, an idle weft must not keep the host's uv_run() from returning.
    if (!owned_) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  }

  void init_timer_poll() {
    auto* poll = new uv_poll_t;
    if (int r = uv_poll_init(loop_, poll, timer_fd_->fd()); r != 0) {
      delete poll;  // not initialised: libuv holds nothing of it
      throw_uv(r, "cannot watch the timerfd");
    }
    timer_poll_ = poll;
    timer_poll_->data = this;
    // Watched for good (starting and stopping would each cost an epoll_ctl); referenced only
    // while armed.
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_poll_));
    if (int r = uv_poll_start(
            timer_poll_, UV_READABLE,
            [](uv_poll_t* p, int, int) { static_cast<LibuvBackend*>(p->data)->on_timer_fd(); });
        r != 0) {
      throw_uv(r, "cannot watch the timerfd");
    }
  }

  void disarm_timer_fd() {
    timer_fd_->disarm();
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_poll_));
  }

  void on_timer_fd() {
    // An expiry reported in the same poll as a callback that re-armed (which cleared it in the
    // kernel) or cleared the timer is stale; the kernel reports the new arming when it is due.
    if (!armed_ || Clock::now() < deadline_) return;
    armed_ = false;
    hooks_.timer_expired();
    // Not re-armed: clear the expiry, or the level-triggered poll would report it forever.
    if (!armed_ && timer_poll_ != nullptr) disarm_timer_fd();
  }

  // libuv's timer counts whole milliseconds from the loop's cached clock (CLOCK_MONOTONIC, like
  // steady_clock, floored to the millisecond). Aim at the deadline's millisecond rounded up,
  // relative to that cached clock, so libuv's own rounding can only make it late. Saturating: a
  // deadline before the clock's epoch is due now, and rounding up TimePoint::max() must not
  // overflow (libuv itself clamps a timeout that would pass UINT64_MAX).
  void start_native_timer() {
    const auto deadline_ns = deadline_.time_since_epoch().count();
    const std::uint64_t deadline_ms =
        deadline_ns <= 0 ? 0
                         : static_cast<std::uint64_t>(deadline_ns / 1'000'000 +
                                                      (deadline_ns % 1'000'000 != 0 ? 1 : 0));
    const std::uint64_t now_ms = uv_now(loop_);
    const std::uint64_t timeout = deadline_ms > now_ms ? deadline_ms - now_ms : 0;
    uv_timer_start(
        timer_, [](uv_timer_t* t) { static_cast<LibuvBackend*>(t->data)->on_native_timer(); },
        timeout, 0);
  }

  void on_native_timer() {
    // Never early, whatever the rounding: if steady_clock has not reached the deadline, wait
    // for the rest. That wait is at least a millisecond of libuv's clock, so it never fires in
    // this same pass over the timers.
    if (Clock::now() < deadline_) {
      start_native_timer();
      return;
    }
    armed_ = false;
    hooks_.timer_expired();
  }

  // Made under the scope's lock, like the loop: its number may be one a loop just closed on
  // another thread with a syscall TSan does not see (see with_native_fds).
  static std::unique_ptr<backends::detail::TimerFd> make_timer_fd() {
    const auto lock = backends::detail::NativeFdScope::lock_only();
    return std::make_unique<backends::detail::TimerFd>();
  }

  // Closes every handle made so far and, for an owned loop, the loop.
  void close_all() {
    if (idle_ != nullptr) close_and_delete(idle_);
    if (timer_ != nullptr) close_and_delete(timer_);
    if (timer_poll_ != nullptr) close_and_delete(timer_poll_);
    if (async_ != nullptr) close_and_delete(async_);
    for (auto& [fd, poll] : polls_) close_and_delete(poll);
    polls_.clear();
    idle_ = nullptr;
    timer_ = nullptr;
    timer_poll_ = nullptr;
    async_ = nullptr;
    // A host's loop runs the close callbacks in its next iteration.
    if (!owned_) return;
    // libuv closes its descriptors with a raw syscall: order it with the next loop's opens
    // (see with_native_fds).
    const auto lock = backends::detail::NativeFdScope::lock_only();
    // Let the close callbacks run, then close; handles a user opened on native_loop() are
    // closed too, so that uv_loop_close cannot fail with UV_EBUSY.
    uv_run(loop_, UV_RUN_DEFAULT);
    if (uv_loop_close(loop_) == UV_EBUSY) {
      uv_walk(
          loop_,
          [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
          },
          nullptr);
      uv_run(loop_, UV_RUN_DEFAULT);
      uv_loop_close(loop_);
    }
  }

  LoopHooks& hooks_;
  const bool owned_;
  uv_loop_t loop_storage_{};
  uv_loop_t* loop_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  uv_async_t* async_ = nullptr;
  // weft's one timer: a timerfd watched by timer_poll_, or libuv's own timer_.
  std::unique_ptr<backends::detail::TimerFd> timer_fd_;
  uv_poll_t* timer_poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  bool armed_ = false;
  TimePoint deadline_{};
  absl::flat_hash_map<int, uv_poll_t*> polls_;
};

const BackendRegistration kRegistration(BackendInfo{
    .name = "libuv",
    .mechanism = kMechanism,
    .preference = 10,
    .factory = [](LoopHooks& hooks) -> std::unique_ptr<Backend> {
      return std::make_unique<LibuvBackend>(hooks, nullptr);
    },
});

}  // namespace

uv_loop_t* native_loop(Reactor& reactor) {
  auto* backend = dynamic_cast<LibuvBackend*>(&reactor.backend());
  if (backend == nullptr) {
    throw UsageError(absl::StrCat("weft::libuv::native_loop: reactor '", reactor.name(),
                                  "' does not run on libuv"));
  }
  return backend->loop();
}

std::unique_ptr<Reactor> adopt(uv_loop_t* loop) {
  if (loop == nullptr) throw std::invalid_argument("weft::libuv::adopt: null loop");
  return std::make_unique<Reactor>(
      "libuv", [loop](LoopHooks& hooks) { return std::make_unique<LibuvBackend>(hooks, loop); });
}

}  // namespace weft::libuv
