// A host application's loop on a thread of its own, with weft as its guest: poll() on the
// GuestReactor's fd for at most its timeout, then step(). The smallest host there is; the
// GLib host (examples/glib/) is the realistic one.
#ifndef WEFT_TESTS_TESTING_HOST_LOOP_H_
#define WEFT_TESTS_TESTING_HOST_LOOP_H_

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/detail/wake_fd.h"
#include "weft/runners/guest_reactor.h"

namespace weft::testing {

// One iteration of a host that waits to the nanosecond (ppoll) on the guest's fd, for at most
// the guest's timeout() (a second if none), then steps it: the most precise host there is, the
// one that finds out whether a step at weft's deadline runs the timer.
inline void step_precise_host(GuestReactor& guest) {
  timespec wait{.tv_sec = 1, .tv_nsec = 0};
  if (auto timeout = guest.timeout()) {
    const auto ns = std::min<std::int64_t>(timeout->count(), 1'000'000'000);
    wait = timespec{.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
  }
  pollfd fd{.fd = guest.fd(), .events = POLLIN, .revents = 0};
  ppoll(&fd, 1, &wait, nullptr);
  guest.step();
}

// (backend, wait mode): suites over every backend and both ways a guest can wait.
using GuestParam = std::tuple<std::string, GuestReactor::Wait>;

inline auto guest_params() {
  return ::testing::Combine(
      ::testing::ValuesIn(backend_names()),
      ::testing::Values(GuestReactor::Wait::kAuto, GuestReactor::Wait::kHelperThread));
}

inline std::string guest_param_name(const ::testing::TestParamInfo<GuestParam>& info) {
  std::string name = std::get<0>(info.param) +
                     (std::get<1>(info.param) == GuestReactor::Wait::kAuto ? "_auto" : "_helper");
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

class HostLoopThread {
 public:
  // `clock`: a name for make_clock() (core/clock.h), e.g. "virtual".
  explicit HostLoopThread(std::string backend, GuestReactor::Wait wait = GuestReactor::Wait::kAuto,
                          std::string clock = {}) {
    thread_ = std::thread([this, backend, wait, clock] {
      // Made, stepped and destroyed on the host's thread.
      GuestReactor guest(backend, wait, make_clock(clock));
      {
        std::lock_guard lock(mu_);
        guest_ = &guest;
        cv_.notify_one();
      }
      for (;;) {
        pollfd fds[2] = {{.fd = guest.fd(), .events = POLLIN, .revents = 0},
                         {.fd = stop_.fd(), .events = POLLIN, .revents = 0}};
        int timeout_ms = -1;
        if (auto timeout = guest.timeout()) {
          timeout_ms = static_cast<int>(std::min<std::int64_t>(
              std::chrono::ceil<std::chrono::milliseconds>(*timeout).count(), INT_MAX));
        }
        poll(fds, 2, timeout_ms);
        if (fds[1].revents != 0) break;
        guest.step();
      }
      // Pairs with the destructor's lock: ThreadSanitizer does not see the descriptor as an edge,
      // and the guest (which other threads read through reactor()) is destroyed next.
      std::lock_guard lock(mu_);
    });
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return guest_ != nullptr; });
  }
  ~HostLoopThread() {
    { std::lock_guard lock(mu_); }
    stop_.signal();
    thread_.join();
  }

  Reactor& reactor() { return guest_->reactor(); }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  weft::detail::WakeFd stop_;  // an eventfd, or a pipe with the portable fallbacks forced
  std::mutex mu_;
  std::condition_variable cv_;
  GuestReactor* guest_ = nullptr;
  std::thread thread_;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_TESTING_HOST_LOOP_H_
