// weft as a guest in a host's loop, on every backend, waiting both ways (the backend's own
// descriptor where it has one, a helper thread otherwise). The test's thread is the host: it
// polls the guest's fd for at most its timeout, then steps it.
#include "runners/guest_reactor.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <csignal>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/deferred.h"
#include "core/fd_wait.h"
#include "core/sleep.h"
#include "core/spawn.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "tests/testing/host_loop.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using Param = testing::GuestParam;

class GuestReactorTest : public ::testing::TestWithParam<Param> {
 protected:
  GuestReactor guest_{std::get<0>(GetParam()), std::get<1>(GetParam())};
  const std::thread::id host_thread_ = std::this_thread::get_id();

  // One turn of the host's loop. `honor_timeout` false: a host that sleeps on the fd alone
  // (fine with a helper thread, which watches the deadline itself).
  void host_iteration(bool honor_timeout = true) {
    int timeout_ms = 1000;  // the test's own safety net, not a weft deadline
    if (honor_timeout) {
      if (auto timeout = guest_.timeout()) {
        timeout_ms = static_cast<int>(std::min<std::int64_t>(
            std::chrono::ceil<std::chrono::milliseconds>(*timeout).count(), timeout_ms));
      }
    }
    pollfd fd{.fd = guest_.fd(), .events = POLLIN, .revents = 0};
    poll(&fd, 1, timeout_ms);
    guest_.step();
  }
  bool host_until(const std::function<bool()>& done, bool honor_timeout = true) {
    const TimePoint deadline = Clock::now() + 20s;
    while (!done() && Clock::now() < deadline) host_iteration(honor_timeout);
    return done();
  }
  bool helper_mode() const { return guest_.uses_helper_thread(); }
};

TEST_P(GuestReactorTest, WaitsTheWayTheBackendAllows) {
  if (std::get<1>(GetParam()) == GuestReactor::Wait::kHelperThread) {
    EXPECT_TRUE(helper_mode());
  }
  EXPECT_GE(guest_.fd(), 0);
  std::printf("%s: %s\n", guest_.reactor().description().c_str(),
              helper_mode() ? "helper thread" : "backend descriptor");
}

TEST_P(GuestReactorTest, TasksTimersFdsAndCrossThreadCallsCompleteInsideTheHostLoop) {
  Reactor& reactor = guest_.reactor();
  std::vector<std::string> done;
  std::atomic<bool> wrong_thread{false};
  auto on_host = [&] {
    if (std::this_thread::get_id() != host_thread_) wrong_thread = true;
  };
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  auto sleeper = [&]() -> Task<void> {
    const TimePoint start = Clock::now();
    co_await sleep(20ms);
    on_host();
    EXPECT_GE(Clock::now() - start, 20ms);
    done.push_back("sleep");
  };
  auto reader = [&]() -> Task<void> {
    co_await wait_readable(fds[0]);
    on_host();
    char c;
    EXPECT_EQ(read(fds[0], &c, 1), 1);
    done.push_back("fd");
  };
  spawn(reactor, sleeper());
  spawn(reactor, reader());
  reactor.call_later(5ms, [&] {
    on_host();
    done.push_back("timer");
  });
  std::thread other([&] {
    std::this_thread::sleep_for(10ms);
    reactor.call_from_thread([&] {
      on_host();
      done.push_back("cross-thread");
    });
    std::this_thread::sleep_for(10ms);
    EXPECT_EQ(write(fds[1], "x", 1), 1);
  });
  EXPECT_TRUE(host_until([&] { return done.size() == 4; }));
  other.join();
  EXPECT_THAT(done, ::testing::UnorderedElementsAre("sleep", "fd", "timer", "cross-thread"));
  EXPECT_FALSE(wrong_thread) << "a weft callback ran off the host's thread";
  close(fds[0]);
  close(fds[1]);
}

TEST_P(GuestReactorTest, TimerAddedByHostCodeCutsTheHostsWaitShort) {
  // The host is waiting for a far deadline, then host code adds an earlier timer: the host's
  // next wait must end by the new deadline, whether it honours timeout() or only the fd.
  TimerHandle far = guest_.reactor().call_later(1h, [] {});
  host_iteration();
  bool fired = false;
  guest_.reactor().call_later(15ms, [&] { fired = true; });
  if (!helper_mode()) {
    ASSERT_TRUE(guest_.timeout().has_value());
    EXPECT_LE(*guest_.timeout(), 15ms);
  }
  EXPECT_TRUE(host_until([&] { return fired; }, /*honor_timeout=*/!helper_mode()));
  far.cancel();
}

TEST_P(GuestReactorTest, CallFromAnotherThreadWakesAHostSleepingOnTheFd) {
  host_iteration();
  std::atomic<bool> ran{false};
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    guest_.reactor().call_from_thread([&] { ran = true; });
  });
  // The host sleeps on the fd only: the cross-thread call alone must make it readable.
  pollfd fd{.fd = guest_.fd(), .events = POLLIN, .revents = 0};
  const TimePoint deadline = Clock::now() + 10s;
  while (!ran && Clock::now() < deadline) {
    poll(&fd, 1, guest_.timeout() == Duration::zero() ? 0 : 10'000);
    guest_.step();
  }
  other.join();
  EXPECT_TRUE(ran);
}

TEST_P(GuestReactorTest, SignalReachesAWatcherInTheGuest) {
  int calls = 0;
  Watch watch = guest_.reactor().watch_signal(SIGUSR1, [&] { ++calls; });
  host_iteration();
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  EXPECT_TRUE(host_until([&] { return calls == 1; }));
  watch.cancel();
}

TEST_P(GuestReactorTest, StepNeverBlocksEvenWithNothingToDo) {
  // Nothing pending and nothing ready: step() must return (a host calls it whenever it likes);
  // a step that blocked would hang here until the test's timeout.
  bool ran = false;
  guest_.reactor().call_later(1h, [&] { ran = true; });
  for (int i = 0; i < 100; ++i) guest_.step();
  EXPECT_FALSE(ran);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, GuestReactorTest, testing::guest_params(),
                         testing::guest_param_name);

}  // namespace
}  // namespace weft
