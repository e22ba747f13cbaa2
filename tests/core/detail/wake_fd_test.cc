// WakeFd (both kinds: the eventfd, and the pipe of macOS and the BSDs, which Linux makes when
// the portable fallbacks are forced) and poll_until (both precisions), the guest reactor's
// internals.
#include "weft/core/detail/wake_fd.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/core/time.h"
#include "weft/runners/detail/poll_until.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using detail::WakeFd;

bool readable(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

std::string fd_target(int fd) {
  char buffer[256];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = readlink(link.c_str(), buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

std::vector<WakeFd::Kind> supported_kinds() {
  std::vector<WakeFd::Kind> kinds;
  for (WakeFd::Kind kind : {WakeFd::Kind::kEventFd, WakeFd::Kind::kPipe}) {
    if (WakeFd::supported(kind)) kinds.push_back(kind);
  }
  return kinds;
}

class WakeFdTest : public ::testing::TestWithParam<WakeFd::Kind> {
 protected:
  WakeFd wake_{GetParam()};
};

TEST_P(WakeFdTest, IsTheKindAskedForNonBlockingCloseOnExecAndOffTheStandardStreams) {
  EXPECT_EQ(wake_.kind(), GetParam());
  EXPECT_GT(wake_.fd(), STDERR_FILENO);
  EXPECT_NE(fcntl(wake_.fd(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(fcntl(wake_.fd(), F_GETFD) & FD_CLOEXEC, 0);
  struct stat st {};
  ASSERT_EQ(fstat(wake_.fd(), &st), 0);
  if (GetParam() == WakeFd::Kind::kPipe) {
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
  } else {
    EXPECT_FALSE(S_ISFIFO(st.st_mode));
#if defined(__linux__)
    EXPECT_EQ(fd_target(wake_.fd()), "anon_inode:[eventfd]");
#endif
  }
}

TEST_P(WakeFdTest, SignalMakesItReadableUntilDrained) {
  EXPECT_FALSE(readable(wake_.fd()));
  EXPECT_FALSE(wake_.drain());
  wake_.signal();
  EXPECT_TRUE(readable(wake_.fd()));
  EXPECT_TRUE(wake_.drain());
  EXPECT_FALSE(readable(wake_.fd()));
  wake_.signal();
  EXPECT_TRUE(readable(wake_.fd())) << "a signal after a drain must write again";
  EXPECT_TRUE(wake_.drain());
}

TEST_P(WakeFdTest, ManySignalsCoalesceIntoOneDrain) {
  for (int i = 0; i < 100'000; ++i) wake_.signal();  // more than a pipe holds
  EXPECT_TRUE(readable(wake_.fd()));
  EXPECT_TRUE(wake_.drain());
  EXPECT_FALSE(readable(wake_.fd()));
}

TEST_P(WakeFdTest, SignalKeepsErrno) {
  errno = EINTR;
  wake_.signal();
  EXPECT_EQ(errno, EINTR);
  errno = 0;
}

// A signal handler may call signal(): SIGUSR1 raised on this thread, between two drains.
std::atomic<WakeFd*> g_handler_target{nullptr};

TEST_P(WakeFdTest, SignalFromASignalHandlerWakesThePoller) {
  struct sigaction action {};
  struct sigaction old {};
  action.sa_handler = [](int) {
    if (WakeFd* wake = g_handler_target.load()) wake->signal();
  };
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  g_handler_target = &wake_;
  raise(SIGUSR1);
  g_handler_target = nullptr;
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_TRUE(readable(wake_.fd()));
  EXPECT_TRUE(wake_.drain());
}

// Signals from another thread racing drains: every signal made after the poller's last drain
// started is seen, whatever the interleaving (no lost wake-up leaves the flag set and the
// descriptor empty).
TEST_P(WakeFdTest, NoWakeUpIsLostWhenSignalsRaceDrains) {
  constexpr int kRounds = 20'000;
  std::atomic<int> posted{0};
  std::thread signaller([&] {
    for (int i = 1; i <= kRounds; ++i) {
      posted.store(i, std::memory_order_release);
      wake_.signal();
    }
  });
  int seen = 0;
  while (seen < kRounds) {
    pollfd p{.fd = wake_.fd(), .events = POLLIN, .revents = 0};
    // Not a timing assertion: a lost wake-up would leave the poller here for good; 10 s
    // without a wake-up while work is posted fails the test instead of hanging it.
    ASSERT_EQ(poll(&p, 1, 10'000), 1) << "lost wake-up after " << seen << " of " << kRounds;
    wake_.drain();
    seen = posted.load(std::memory_order_acquire);
  }
  signaller.join();
}

INSTANTIATE_TEST_SUITE_P(Kinds, WakeFdTest, ::testing::ValuesIn(supported_kinds()),
                         [](const ::testing::TestParamInfo<WakeFd::Kind>& info) {
                           return std::string(info.param == WakeFd::Kind::kEventFd ? "eventfd"
                                                                                   : "pipe");
                         });

// ---- poll_until ----

std::vector<detail::PollPrecision> supported_precisions() {
  std::vector<detail::PollPrecision> precisions{detail::PollPrecision::kMilliseconds};
  if (detail::ppoll_supported()) precisions.push_back(detail::PollPrecision::kNanoseconds);
  return precisions;
}

class PollUntilTest : public ::testing::TestWithParam<detail::PollPrecision> {};

TEST_P(PollUntilTest, NeverReturnsBeforeTheDeadline) {
  WakeFd idle(WakeFd::Kind::kPipe);
  for (const Duration wait : {Duration(1us), Duration(50us), Duration(200us), Duration(900us),
                              Duration(1500us), Duration(3ms)}) {
    pollfd p{.fd = idle.fd(), .events = POLLIN, .revents = 0};
    const TimePoint deadline = Clock::now() + wait;
    int r;
    do {
      r = detail::poll_until(&p, 1, deadline, GetParam());
    } while (r < 0 && errno == EINTR);
    EXPECT_EQ(r, 0);
    EXPECT_GE(Clock::now(), deadline) << "woke early for a " << wait.count() << " ns wait";
  }
}

TEST_P(PollUntilTest, ReturnsAtOnceForReadyDescriptorsOrAPastDeadline) {
  WakeFd wake(WakeFd::Kind::kPipe);
  wake.signal();
  pollfd p{.fd = wake.fd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(detail::poll_until(&p, 1, std::nullopt, GetParam()), 1);
  EXPECT_NE(p.revents & POLLIN, 0);
  wake.drain();
  for (const TimePoint past : {TimePoint::min(), Clock::now() - 1s}) {
    p.revents = 0;
    EXPECT_EQ(detail::poll_until(&p, 1, past, GetParam()), 0);
  }
}

TEST_P(PollUntilTest, ADeadlineAtTheEndOfTimeWaitsForTheDescriptor) {
  WakeFd wake(WakeFd::Kind::kPipe);
  std::thread other([&] {
    std::this_thread::sleep_for(5ms);
    wake.signal();
  });
  pollfd p{.fd = wake.fd(), .events = POLLIN, .revents = 0};
  int r;
  do {
    r = detail::poll_until(&p, 1, TimePoint::max(), GetParam());
  } while (r < 0 && errno == EINTR);
  EXPECT_EQ(r, 1);
  other.join();
}

INSTANTIATE_TEST_SUITE_P(Precisions, PollUntilTest, ::testing::ValuesIn(supported_precisions()),
                         [](const ::testing::TestParamInfo<detail::PollPrecision>& info) {
                           return std::string(info.param == detail::PollPrecision::kNanoseconds
                                                  ? "ppoll"
                                                  : "poll");
                         });

}  // namespace
}  // namespace weft
