// weft as a guest in a host's loop, on every backend, waiting both ways (the backend's own
// descriptor where it has one, a helper thread otherwise). The test's thread is the host: it
// polls the guest's fd for at most its timeout, then steps it.
#include "weft/runners/guest_reactor.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <csignal>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runners/failing_backend.h"
#include "tests/runners/fork_child.h"
#include "tests/testing/backends.h"
#include "tests/testing/host_loop.h"
#include "weft/core/deferred.h"
#include "weft/core/fd_wait.h"
#include "weft/core/io_handle.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/runners/host_runner.h"

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

TEST_P(GuestReactorTest, AnIoHandleWhoseInterestComesAndGoesIsServedByTheHostLoop) {
  // Interest kNone keeps the backend's registration (core/backend.h); each time it comes back
  // the host, asleep on the guest's fd, must be woken by the next byte.
  Reactor& reactor = guest_.reactor();
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
  int bytes = 0;
  IoHandle handle(reactor, fds[0], [&](IoEvents) {
    char c;
    while (read(fds[0], &c, 1) == 1) ++bytes;
  });
  for (int round = 1; round <= 5; ++round) {
    handle.set_interest(IoEvents::kReadable);
    std::thread writer([&] {
      std::this_thread::sleep_for(5ms);
      EXPECT_EQ(write(fds[1], "x", 1), 1);
    });
    EXPECT_TRUE(host_until([&] { return bytes == round; })) << "round " << round;
    writer.join();
    handle.set_interest(IoEvents::kNone);
  }
  // Paused: a byte waits; given interest again, it is delivered.
  ASSERT_EQ(write(fds[1], "y", 1), 1);
  for (int i = 0; i < 3; ++i) guest_.step();
  EXPECT_EQ(bytes, 5);
  handle.set_interest(IoEvents::kReadable);
  EXPECT_TRUE(host_until([&] { return bytes == 6; }));
  handle.reset();
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

TEST_P(GuestReactorTest, TimersDueOneAfterAnotherTakeAStepOrTwoEachNotAHostSpinning) {
  // A host waking at weft's deadline, to the nanosecond (ppoll), must find the timer run by
  // that step, however the native timer lags steady_clock; else the guest reports the deadline
  // due and the host steps again at once, hundreds of times per timer.
  int ran = 0;
  const int n = 30;
  for (int i = 0; i < n; ++i) {
    guest_.reactor().call_later(std::chrono::microseconds(500 + 700 * i), [&ran] { ++ran; });
  }
  int steps = 0;
  const TimePoint limit = Clock::now() + 10s;
  while (ran < n && Clock::now() < limit) {
    testing::step_precise_host(guest_);
    ++steps;
  }
  EXPECT_EQ(ran, n);
  EXPECT_LT(steps, 10 * n) << steps << " steps for " << n << " timers";
  std::printf("%s, %s: %d steps for %d timers\n", guest_.reactor().description().c_str(),
              helper_mode() ? "helper thread" : "backend descriptor", steps, n);
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

// ---- Time at its extremes ----

TEST_P(GuestReactorTest, TimeoutIsZeroForADeadlineAtTheBeginningOfTime) {
  host_until([&] { return guest_.timeout() == std::nullopt; });  // settle
  for (TimePoint when : {TimePoint::min(), TimePoint::min() + 1ns, TimePoint{}}) {
    bool fired = false;
    guest_.reactor().call_at(when, [&] { fired = true; });
    ASSERT_TRUE(guest_.timeout().has_value());
    EXPECT_EQ(*guest_.timeout(), Duration::zero()) << "not wrapped around to the far future";
    EXPECT_TRUE(host_until([&] { return fired; }, /*honor_timeout=*/!helper_mode()));
  }
  for (Duration delay : {Duration::min(), Duration(-1s), Duration::zero()}) {
    bool fired = false;
    guest_.reactor().call_later(delay, [&] { fired = true; });
    ASSERT_TRUE(guest_.timeout().has_value());
    EXPECT_EQ(*guest_.timeout(), Duration::zero());
    EXPECT_TRUE(host_until([&] { return fired; }, /*honor_timeout=*/!helper_mode()));
  }
}

TEST_P(GuestReactorTest, TimeoutIsNeverNegativeOrWrappedForADeadlineAtTheEndOfTime) {
  host_until([&] { return guest_.timeout() == std::nullopt; });
  bool fired = false;
  std::vector<TimerHandle> timers;
  timers.push_back(guest_.reactor().call_at(TimePoint::max(), [&] { fired = true; }));
  timers.push_back(guest_.reactor().call_at(TimePoint::max() - 1ns, [&] { fired = true; }));
  timers.push_back(guest_.reactor().call_later(Duration::max(), [&] { fired = true; }));
  for (int i = 0; i < 5; ++i) {
    if (auto timeout = guest_.timeout()) {
      EXPECT_GE(*timeout, Duration::zero());
      if (*timeout > Duration::zero()) {
        EXPECT_GT(*timeout, 1min) << "a far deadline is far, not due";
      }
    }
    guest_.step();
  }
  EXPECT_FALSE(fired);
  for (TimerHandle& timer : timers) timer.cancel();
}

// ---- A failed native step ----

TEST_P(GuestReactorTest, AFailedStepLeavesCrossThreadWakeUpsReachingTheHost) {
  auto failures = std::make_shared<testing::Failures>();
  GuestReactor guest(testing::failing_backend(std::get<0>(GetParam()), failures),
                     std::get<1>(GetParam()));
  auto host_iteration = [&](int max_ms) {
    int timeout_ms = max_ms;
    if (auto timeout = guest.timeout()) {
      timeout_ms = static_cast<int>(std::min<std::int64_t>(
          std::chrono::ceil<std::chrono::milliseconds>(*timeout).count(), max_ms));
    }
    pollfd fd{.fd = guest.fd(), .events = POLLIN, .revents = 0};
    poll(&fd, 1, timeout_ms);
    guest.step();
  };
  for (int i = 0; i < 5; ++i) host_iteration(10);
  // A cross-thread call makes the host's fd readable (in helper mode the helper, having told
  // the host, now waits to be re-armed by a step). That step fails in the native loop.
  std::atomic<int> ran{0};
  guest.reactor().call_from_thread([&] { ++ran; });
  pollfd fd{.fd = guest.fd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(poll(&fd, 1, 5000), 1);
  failures->left = 1;
  EXPECT_THROW(guest.step(), std::runtime_error);
  // The host is asked to step again at once.
  EXPECT_EQ(guest.timeout(), std::optional<Duration>(Duration::zero()));
  // From here the host sleeps on the fd alone, honouring only a zero timeout: each wait must
  // end because weft made the fd readable, never by the host's own 5 s limit.
  int host_timeouts = 0;
  auto host_until_on_fd = [&](const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done() && host_timeouts == 0; ++i) {
      if (guest.timeout() != Duration::zero() && poll(&fd, 1, 5000) == 0) ++host_timeouts;
      guest.step();
    }
    return done();
  };
  EXPECT_TRUE(host_until_on_fd([&] { return ran == 1; }));
  EXPECT_EQ(host_timeouts, 0) << "the work left by the failed step waited for the host's limit";
  // A later cross-thread call still wakes the host.
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    guest.reactor().call_from_thread([&] { ++ran; });
  });
  EXPECT_TRUE(host_until_on_fd([&] { return ran == 2; }));
  other.join();
  EXPECT_EQ(host_timeouts, 0) << "the cross-thread call never woke the host";
  // And a timer added by host code after the failure still cuts the host's wait short (in
  // fd mode the host must honour timeout(); a helper thread watches the deadline itself).
  bool fired = false;
  guest.reactor().call_later(10ms, [&] { fired = true; });
  const TimePoint give_up = Clock::now() + 10s;
  while (!fired && Clock::now() < give_up) {
    if (guest.uses_helper_thread()) {
      if (guest.timeout() != Duration::zero() && poll(&fd, 1, 5000) == 0) ++host_timeouts;
    } else {
      poll(&fd, 1, 10);
    }
    guest.step();
  }
  EXPECT_TRUE(fired);
  EXPECT_EQ(host_timeouts, 0) << "the timer did not wake the host";
  EXPECT_EQ(failures->thrown.load(), 1);
}

// ---- fork ----

Task<int> sleep_an_hour() {
  co_await sleep(1h);
  co_return 0;
}

TEST_P(GuestReactorTest, InAForkedChildTheGuestRefusesToStepAndIsDestroyedWithoutHanging) {
  // The host's thread (this one) forks while another thread waits on a result of the host
  // runner, and while the helper thread (in helper mode) waits for its next wait.
  auto runner = std::make_unique<HostRunner>(guest_.reactor(), host_thread_);
  auto result = std::make_unique<EventualResult<int>>(runner->submit(sleep_an_hour()));
  EXPECT_TRUE(host_until([&] { return guest_.reactor().counts().tasks == 1; }));
  std::atomic<bool> waiting{false};
  std::thread waiter([&] {
    waiting = true;
    // By reference: the child drops the only copy left, the one this thread waits on.
    EXPECT_THROW(result->wait(), Cancelled);
  });
  while (!waiting) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);

  testing::expect_child_succeeds([&] {
    testing::ChildChecks checks;
    checks.expect_fork_usage_error([&] { guest_.step(); }, "step()");
    checks.expect_fork_usage_error([&] { (void)guest_.timeout(); }, "timeout()");
    checks.expect_fork_usage_error([&] { runner->submit(sleep_an_hour()); }, "submit()");
    checks.expect_fork_usage_error([&] { result->wait(); }, "wait()");
    // Destroying all of it returns: the runner; the guest, whose reactor destroys the task
    // and with it the task's hold on the result; then the last copy of the result, on whose
    // condition variable the parent's thread was waiting at the fork. (The child exits
    // without unwinding, so the fixture's guest is destroyed by hand.)
    runner.reset();
    guest_.~GuestReactor();
    result.reset();
    return checks.status();
  });

  // The parent's guest, runner and result are untouched.
  result->cancel();
  EXPECT_TRUE(host_until([&] { return result->ready(); }));
  waiter.join();
  bool fired = false;
  guest_.reactor().call_later(5ms, [&] { fired = true; });
  EXPECT_TRUE(host_until([&] { return fired; }));
  runner.reset();
}

INSTANTIATE_TEST_SUITE_P(AllBackends, GuestReactorTest, testing::guest_params(),
                         testing::guest_param_name);

}  // namespace
}  // namespace weft
