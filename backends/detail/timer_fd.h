// TimerFd: a kernel timer a backend watches with its own fd watcher, for weft's one native timer.
//
// Why: libuv keeps its loop time and timers in whole milliseconds, and libevent (without
// EVENT_BASE_FLAG_PRECISE_TIMER) reads CLOCK_MONOTONIC_COARSE, whose resolution is a scheduler
// tick (4 ms on a 250 Hz kernel); their timers fire 1-5 ms late. libevent's precise flag fixes
// the clock but costs a timerfd_settime() per loop iteration on epoll. A Linux timerfd armed
// with the absolute deadline (CLOCK_MONOTONIC, which is steady_clock's clock, so weft's
// deadlines go in unconverted) fires when the deadline passes, to the kernel's hrtimer
// precision, and costs one system call when the earliest deadline changes (the reactor calls
// set_timer only then), none per loop iteration. The fd is watched like any other, so it works
// on every mechanism of every library (epoll, poll, select) and inside a host's own loop.
//
// Invariant kept by the backends: the fd is readable only while an arming has expired and not
// been handled, so a loop (or a guest's helper thread) that watches it never spins on it.
//
// Selection ($WEFT_TIMER, read when a backend is made): unset, empty or "auto": a timerfd where
// the platform has one, else the library's own timer; "native": the library's own timer, the
// portable path (selectable on Linux so that it is tested there too); "timerfd": a timerfd, or
// UsageError where there is none. Any other value is a UsageError. With the portable fallbacks
// forced ($WEFT_PORTABLE=1, core/detail/portable.h), "auto" means "native"; an explicit
// "timerfd" still wins.
//
// Threading: one backend's loop thread. Lifetime: the fd is closed with the object.
#ifndef WEFT_BACKENDS_DETAIL_TIMER_FD_H_
#define WEFT_BACKENDS_DETAIL_TIMER_FD_H_

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <string>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/core/detail/portable.h"
#include "weft/core/errors.h"
#include "weft/core/time.h"

#if defined(__linux__)
#include <sys/timerfd.h>
#endif

namespace weft::backends::detail {

// True where TimerFd works (Linux).
constexpr bool timer_fd_supported() {
#if defined(__linux__)
  return true;
#else
  return false;
#endif
}

// Whether a backend being made should use a TimerFd, from $WEFT_TIMER (see above). `backend`
// names the caller in the error message.
inline bool use_timer_fd(const char* backend) {
  const char* env = std::getenv("WEFT_TIMER");
  const std::string value = env == nullptr ? std::string() : std::string(env);
  if (value.empty() || value == "auto")
    return timer_fd_supported() && !weft::detail::force_portable_fallbacks();
  if (value == "native") return false;
  if (value == "timerfd") {
    if (timer_fd_supported()) return true;
    throw UsageError(absl::StrCat("weft: ", backend,
                                  ": WEFT_TIMER=timerfd, but this platform has no timerfd (use "
                                  "auto or native)"));
  }
  throw UsageError(absl::StrCat("weft: ", backend, ": WEFT_TIMER=", value,
                                " is not a timer source (auto, timerfd or native)"));
}

class TimerFd {
 public:
  // Opens a disarmed, non-blocking, close-on-exec timerfd numbered above 2 (weft's own
  // descriptors stay off the standard streams). Throws std::system_error (EMFILE when the
  // descriptors ran out; ENOSYS where there is no timerfd).
  TimerFd() : fd_(open_fresh()) {}
  ~TimerFd() {
    if (fd_ >= 0) close(fd_);
  }
  TimerFd(const TimerFd&) = delete;
  TimerFd& operator=(const TimerFd&) = delete;

  int fd() const { return fd_; }

  // Expires at `deadline` (replacing any arming) and clears an expiry not yet handled, so the
  // fd is readable again only once `deadline` has passed. A deadline at or before the clock's
  // epoch is due at once; TimePoint::max() never is (the kernel saturates it). Cannot fail for
  // the valid descriptor and time it is given.
  void arm(TimePoint deadline) {
#if defined(__linux__)
    const auto ns = deadline.time_since_epoch().count();
    itimerspec spec{};
    if (ns <= 0) {
      spec.it_value.tv_nsec = 1;  // zero would disarm; 1 ns after boot is long past
    } else {
      spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    timerfd_settime(fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
#else
    (void)deadline;
#endif
  }

  // Disarms and clears an expiry not yet handled: the fd is not readable afterwards.
  void disarm() {
#if defined(__linux__)
    const itimerspec spec{};
    timerfd_settime(fd_, 0, &spec, nullptr);
#endif
  }

  // In a forked child: the fd's file (and its arming) is shared with the parent. Puts a fresh,
  // disarmed timerfd under the same number, so that arming or disarming it here leaves the
  // parent's timer alone, and a native loop re-made after fork (uv_loop_fork, event_reinit)
  // registers the child's own file. Throws std::system_error.
  void replace_after_fork() {
    const int fresh = open_fresh();
    if (dup3(fresh, fd_, O_CLOEXEC) < 0) {
      const int error = errno;
      close(fresh);
      throw std::system_error(error, std::generic_category(),
                              "weft: cannot replace the timerfd in a forked child");
    }
    close(fresh);
  }

 private:
  static int open_fresh() {
#if defined(__linux__)
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) {
      throw std::system_error(errno, std::generic_category(), "weft: cannot make a timerfd");
    }
    if (fd <= STDERR_FILENO) {
      const int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
      const int error = errno;
      close(fd);
      if (moved < 0) {
        throw std::system_error(error, std::generic_category(), "weft: cannot make a timerfd");
      }
      fd = moved;
    }
    return fd;
#else
    throw std::system_error(ENOSYS, std::generic_category(), "weft: no timerfd on this platform");
#endif
  }

  int fd_;
};

}  // namespace weft::backends::detail

#endif  // WEFT_BACKENDS_DETAIL_TIMER_FD_H_
