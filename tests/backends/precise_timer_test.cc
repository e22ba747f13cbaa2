// weft's one native timer, on every backend and both timer sources (backends/detail/timer_fd.h):
// "auto" (a timerfd on Linux) and "native" (the library's own timer, the portable fallback,
// forced with WEFT_TIMER=native). Written once, instantiated for every pair. The promise under
// test is "never early": a timer never runs before its deadline, whatever the deadline (sub-
// millisecond ones included) and whatever the loop is doing. Precision itself is measured in
// bench/timer_lateness_benchmarks.cc, never asserted here; the only durations asserted are
// lower bounds and generous limits that turn a hang into a failure.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/backends/timer_checks.h"
#include "tests/core/run_in_child.h"
#include "tests/testing/backend_step.h"
#include "tests/testing/backends.h"
#include "tests/testing/host_loop.h"
#include "weft/core/backend.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/timer.h"
#include "weft/runners/guest_reactor.h"

namespace weft {
namespace {

using namespace std::chrono_literals;

using testing::ScopedEnv;

// (backend name, WEFT_TIMER value)
using Param = std::tuple<std::string, std::string>;

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

auto all_pairs() {
  return ::testing::Combine(
      ::testing::ValuesIn(testing::backend_names()),
      ::testing::ValuesIn(std::vector<std::string>(std::begin(testing::kTimerSources),
                                                   std::end(testing::kTimerSources))));
}

// Deadlines from -200 us to 8 ms, a third of them under a millisecond, at nanosecond
// resolution: the rounding of a millisecond timer is exercised at every offset.
std::vector<Duration> random_offsets(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int64_t> sub_ms(-200'000, 999'999);
  std::uniform_int_distribution<std::int64_t> longer(1'000'000, 8'000'000);
  std::vector<Duration> offsets;
  for (int i = 0; i < n; ++i) offsets.push_back(Duration(i % 3 == 0 ? sub_ms(rng) : longer(rng)));
  return offsets;
}

// ---- The Backend contract, directly: timer_expired() never comes before the deadline ----

// Records when the backend reported its timer; may re-arm from inside, like the reactor does.
class TimingHooks final : public LoopHooks {
 public:
  void run_turn() override { ++turns; }
  void timer_expired() override {
    expiries.push_back(Clock::now());
    if (on_expiry) on_expiry();
  }
  void fd_ready(int, IoEvents) override { ++ready; }

  std::vector<TimePoint> expiries;
  std::function<void()> on_expiry;
  int turns = 0;
  int ready = 0;
};

class BackendTimer : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    fds_before_ = testing::open_fd_count();
    ScopedEnv timer("WEFT_TIMER", std::get<1>(GetParam()).c_str());
    backend_ = find_backend(std::get<0>(GetParam())).factory(hooks_);
  }
  void TearDown() override {
    backend_.reset();
    EXPECT_EQ(testing::open_fd_count(), fds_before_) << "file descriptors leaked";
  }

  // One blocking step, cut short by a wake() from another thread after `limit` if nothing else
  // ends it (a failure shows as a test failure, not a hang). Returns how long it took.
  Duration step_blocking(Duration limit = 5s) { return testing::step_blocking(*backend_, limit); }

  // Steps until `n` expiries were reported, at most `limit`.
  bool step_until_expiries(std::size_t n, Duration limit = 10s) {
    const TimePoint deadline = Clock::now() + limit;
    while (hooks_.expiries.size() < n && Clock::now() < deadline) {
      step_blocking(deadline - Clock::now());
    }
    return hooks_.expiries.size() >= n;
  }

  TimingHooks hooks_;
  std::unique_ptr<Backend> backend_;

 private:
  int fds_before_ = 0;
};

TEST_P(BackendTimer, ExpiryNeverComesBeforeTheDeadlineForRandomDeadlines) {
  for (Duration offset : random_offsets(150, 1)) {
    hooks_.expiries.clear();
    const TimePoint deadline = Clock::now() + offset;
    backend_->set_timer(deadline);
    ASSERT_TRUE(step_until_expiries(1)) << "offset " << offset.count() << " ns";
    EXPECT_GE(hooks_.expiries.front(), deadline)
        << "early by " << (deadline - hooks_.expiries.front()).count() << " ns";
  }
}

TEST_P(BackendTimer, ReplacingTheArmingWithALaterDeadlineFiresOnlyAtTheLaterOne) {
  for (Duration first : {Duration(0ns), Duration(300us), Duration(1ms), Duration(2500us)}) {
    hooks_.expiries.clear();
    backend_->set_timer(Clock::now() + first);
    // Due at once: let it expire in the kernel (or the native clock) without a step, so the
    // replacement meets an expiry that nobody has seen yet.
    if (first == Duration::zero()) std::this_thread::sleep_for(1ms);
    const TimePoint later = Clock::now() + first + 3ms;
    backend_->set_timer(later);
    ASSERT_TRUE(step_until_expiries(1));
    EXPECT_GE(hooks_.expiries.front(), later) << "first arming " << first.count() << " ns";
    // The earlier arming is gone: nothing more comes.
    for (int i = 0; i < 3; ++i) backend_->run_once(false);
    EXPECT_EQ(hooks_.expiries.size(), 1u);
  }
}

TEST_P(BackendTimer, ReplacingTheArmingWithAnEarlierDeadlineFiresAtTheEarlierOne) {
  backend_->set_timer(Clock::now() + 10s);
  backend_->run_once(false);
  const TimePoint earlier = Clock::now() + 1500us;
  backend_->set_timer(earlier);
  ASSERT_TRUE(step_until_expiries(1, 5s)) << "the 10 s arming was not replaced";
  EXPECT_GE(hooks_.expiries.front(), earlier);
}

TEST_P(BackendTimer, RearmingFromInsideTheExpiryIsNeverEarly) {
  const std::vector<Duration> offsets = random_offsets(100, 2);
  std::size_t next = 0;
  std::vector<TimePoint> deadlines;
  auto arm = [&] {
    deadlines.push_back(Clock::now() + offsets[next++]);
    backend_->set_timer(deadlines.back());
  };
  hooks_.on_expiry = [&] {
    if (next < offsets.size()) arm();
  };
  arm();
  ASSERT_TRUE(step_until_expiries(offsets.size()));
  for (std::size_t i = 0; i < deadlines.size(); ++i) {
    EXPECT_GE(hooks_.expiries[i], deadlines[i]) << "expiry " << i;
  }
}

TEST_P(BackendTimer, AfterAnExpiryWithNothingArmedABlockingStepSleeps) {
  // An expiry left readable (a timerfd not cleared) would end every later poll at once.
  backend_->set_timer(Clock::now() + 200us);
  ASSERT_TRUE(step_until_expiries(1));
  EXPECT_GE(step_blocking(30ms), 30ms) << "the loop did not sleep: something stayed ready";
  EXPECT_EQ(hooks_.expiries.size(), 1u);
}

TEST_P(BackendTimer, ClearingAnArmingThatHasExpiredUnseenLeavesNothingReady) {
  // The premise: the step after set_timer() comes before the deadline, so the expiry is left in
  // the kernel, unseen. A loaded machine can miss a short lead; a longer one is tried then.
  bool armed_unseen = false;
  for (Duration lead : {Duration(200us), Duration(2ms), Duration(20ms), Duration(200ms)}) {
    backend_->set_timer(Clock::now() + lead);
    backend_->run_once(false);
    if (hooks_.expiries.empty()) {
      std::this_thread::sleep_for(lead + 2ms);  // expired in the kernel, not yet delivered
      armed_unseen = true;
      break;
    }
    hooks_.expiries.clear();
  }
  ASSERT_TRUE(armed_unseen) << "every arming expired before the step after it";
  backend_->clear_timer();
  for (int i = 0; i < 3; ++i) backend_->run_once(false);
  EXPECT_TRUE(hooks_.expiries.empty());
  EXPECT_GE(step_blocking(30ms), 30ms) << "the loop did not sleep: something stayed ready";
  EXPECT_TRUE(hooks_.expiries.empty());
}

TEST_P(BackendTimer, ExpiriesComeWhileAnFdIsReadyInEveryStep) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  ASSERT_EQ(write(fds[1], "x", 1), 1);  // never read: ready in every step
  backend_->set_fd_interest(fds[0], IoEvents::kReadable);
  std::vector<TimePoint> deadlines;
  hooks_.on_expiry = [&] {
    if (deadlines.size() < 20) {
      deadlines.push_back(Clock::now() + 700us);
      backend_->set_timer(deadlines.back());
    }
  };
  deadlines.push_back(Clock::now() + 700us);
  backend_->set_timer(deadlines.back());
  const TimePoint limit = Clock::now() + 10s;
  while (hooks_.expiries.size() < 20 && Clock::now() < limit) backend_->run_once(true);
  EXPECT_EQ(hooks_.expiries.size(), 20u);
  EXPECT_GT(hooks_.ready, 0);
  for (std::size_t i = 0; i < hooks_.expiries.size(); ++i) {
    EXPECT_GE(hooks_.expiries[i], deadlines[i]) << "expiry " << i;
  }
  backend_->set_fd_interest(fds[0], IoEvents::kNone);
  close(fds[0]);
  close(fds[1]);
}

TEST_P(BackendTimer, DestroyingTheBackendWithATimerArmedClosesEverything) {
  // The fixture checks the descriptors; this one leaves an arming behind on purpose.
  backend_->set_timer(Clock::now() + 1h);
  backend_->run_once(false);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendTimer, all_pairs(), param_name);

// ---- Through the reactor ----

class ReactorTimer : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    fds_before_ = testing::open_fd_count();
    reactor_ = make();
  }
  void TearDown() override {
    if (reactor_ != nullptr) {
      EXPECT_EQ(reactor_->counts().timers, 0u) << "timers left";
      EXPECT_EQ(reactor_->counts().watches, 0u) << "watchers left";
    }
    reactor_.reset();
    EXPECT_EQ(testing::open_fd_count(), fds_before_) << "file descriptors leaked";
  }
  std::unique_ptr<Reactor> make() const {
    ScopedEnv timer("WEFT_TIMER", std::get<1>(GetParam()).c_str());
    return make_reactor(std::get<0>(GetParam()));
  }
  Reactor& reactor() { return *reactor_; }
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
    return testing::run_until(*reactor_, done, limit);
  }

  std::unique_ptr<Reactor> reactor_;
  int fds_before_ = 0;
};

// Counts the callbacks that ran, and those that ran before their deadline.
struct EarlyCheck {
  int ran = 0;
  int early = 0;
  Duration worst{};
  void at(TimePoint deadline) {
    ++ran;
    const TimePoint now = Clock::now();
    if (now < deadline) {
      ++early;
      worst = std::max(worst, deadline - now);
    }
  }
};

TEST_P(ReactorTimer, ManyRandomTimersNeverRunEarly) {
  EarlyCheck check;
  const std::vector<Duration> offsets = random_offsets(400, 3);
  for (Duration offset : offsets) {
    const TimePoint deadline = Clock::now() + offset;
    reactor().call_at(deadline, [&check, deadline] { check.at(deadline); });
  }
  ASSERT_TRUE(run_until([&] { return check.ran == static_cast<int>(offsets.size()); }));
  EXPECT_EQ(check.early, 0) << "worst " << check.worst.count() << " ns early";
}

TEST_P(ReactorTimer, SleepsOfSubMillisecondDelaysNeverEndEarly) {
  EarlyCheck check;
  auto sleeper = [&check]() -> Task<void> {
    std::mt19937 rng(4);
    std::uniform_int_distribution<std::int64_t> us(0, 999);
    for (int i = 0; i < 150; ++i) {
      const Duration delay = std::chrono::microseconds(us(rng));
      const TimePoint deadline = Clock::now() + delay;
      co_await sleep(delay);
      check.at(deadline);
    }
  };
  Deferred<void> done = spawn(reactor(), sleeper());
  ASSERT_TRUE(run_until([&] { return done.called(); }));
  done.check();
  EXPECT_EQ(check.early, 0) << "worst " << check.worst.count() << " ns early";
}

TEST_P(ReactorTimer, TheEarliestDeadlineMovingEarlierAndLaterIsFollowed) {
  // The steps below must each come before the deadlines they re-arm around. Each attempt checks
  // that premise; a loaded machine that missed it tries again with every delay four times longer.
  for (int scale = 1; scale <= 64; scale *= 4) {
    auto at = [&](Duration offset, TimePoint start) { return start + offset * scale; };
    std::vector<int> order;
    EarlyCheck check;
    const TimePoint start = Clock::now();
    TimerHandle far = reactor().call_at(at(40ms, start), [&, start] {
      check.at(at(40ms, start));
      order.push_back(3);
    });
    reactor().run_once(false);  // armed natively for 40 ms
    TimePoint near_deadline = at(1ms, start);
    TimerHandle near = reactor().call_at(near_deadline, [&] {
      check.at(near_deadline);
      order.push_back(1);
    });
    reactor().run_once(false);  // earlier: armed for 1 ms
    // Later again: moved past a middle timer, which becomes the earliest.
    const bool in_time_for_near = Clock::now() < at(1ms, start);
    near_deadline = at(30ms, start);
    near.reschedule(near_deadline);
    TimerHandle middle = reactor().call_at(at(10ms, start), [&, start] {
      check.at(at(10ms, start));
      order.push_back(0);
    });
    // And one armed then cancelled ahead of all of them: nothing may run for it.
    TimerHandle cancelled = reactor().call_at(at(500us, start), [&] { order.push_back(-1); });
    reactor().run_once(false);
    const bool in_time_for_cancel = cancelled.cancel();
    if (!in_time_for_near || !in_time_for_cancel || !order.empty()) {
      // Too slow for this scale: drop what is left (its callbacks point at this attempt's
      // locals) and try a longer one.
      far.cancel();
      near.cancel();
      middle.cancel();
      continue;
    }
    ASSERT_TRUE(run_until([&] { return order.size() == 3; }));
    EXPECT_EQ(order, (std::vector<int>{0, 1, 3}));
    EXPECT_EQ(check.early, 0) << "worst " << check.worst.count() << " ns early";
    EXPECT_FALSE(far.pending());
    return;
  }
  FAIL() << "the machine was too slow for the premise even at 64 times the delays";
}

TEST_P(ReactorTimer, ManyTimersAtTheSameInstantAllRunInTheOrderTheyWereAdded) {
  const TimePoint deadline = Clock::now() + 2ms;
  std::vector<int> order;
  EarlyCheck check;
  for (int i = 0; i < 200; ++i) {
    reactor().call_at(deadline, [&, i] {
      check.at(deadline);
      order.push_back(i);
    });
  }
  ASSERT_TRUE(run_until([&] { return order.size() == 200; }));
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_EQ(check.early, 0);
}

TEST_P(ReactorTimer, ATimerRearmingItselfFromItsCallbackIsNeverEarly) {
  EarlyCheck check;
  const std::vector<Duration> offsets = random_offsets(120, 5);
  std::size_t next = 0;
  TimePoint deadline;
  std::function<void()> rearm;
  Timer timer(reactor(), [&] {
    check.at(deadline);
    if (next < offsets.size()) rearm();
  });
  rearm = [&] {
    deadline = Clock::now() + offsets[next++];
    timer.start_at(deadline);
  };
  rearm();
  ASSERT_TRUE(run_until([&] { return check.ran == static_cast<int>(offsets.size()); }));
  EXPECT_EQ(check.early, 0) << "worst " << check.worst.count() << " ns early";
}

TEST_P(ReactorTimer, TimersRunOnTimeWhileFdsAreBusy) {
  // Two busy descriptors: one never drained (ready in every turn), one fed by a writer thread.
  int idle_pair[2];
  int fed_pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, idle_pair), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fed_pair), 0);
  ASSERT_EQ(write(idle_pair[1], "x", 1), 1);
  int ready_turns = 0;
  Watch always = reactor().watch_readable(idle_pair[0], [&] { ++ready_turns; });
  Watch fed = reactor().watch_readable(fed_pair[0], [&] {
    char buffer[256];
    while (read(fed_pair[0], buffer, sizeof buffer) > 0) {
    }
  });
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) {
      [[maybe_unused]] ssize_t n = write(fed_pair[1], "y", 1);
      std::this_thread::sleep_for(50us);
    }
  });
  EarlyCheck check;
  const std::vector<Duration> offsets = random_offsets(100, 6);
  for (Duration offset : offsets) {
    const TimePoint deadline = Clock::now() + offset;
    reactor().call_at(deadline, [&check, deadline] { check.at(deadline); });
  }
  const bool all = run_until([&] { return check.ran == static_cast<int>(offsets.size()); });
  stop = true;
  writer.join();
  always.cancel();
  fed.cancel();
  for (int fd : {idle_pair[0], idle_pair[1], fed_pair[0], fed_pair[1]}) close(fd);
  ASSERT_TRUE(all);
  EXPECT_GT(ready_turns, 0);
  EXPECT_EQ(check.early, 0) << "worst " << check.worst.count() << " ns early";
}

TEST_P(ReactorTimer, ADestroyedReactorWithTimersPendingLeavesNoDescriptor) {
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<Reactor> other = make();
    other->call_later(1h, [] {});
    other->call_later(100us, [] {});
    other->run_once(false);
  }
  // The fixture's own reactor is checked at TearDown; these were made and destroyed above.
}

TEST_P(ReactorTimer, AChildDestroyingAnInheritedReactorLeavesTheParentsTimerArmed) {
  bool fired = false;
  const TimePoint deadline = Clock::now() + 60ms;
  reactor().call_at(deadline, [&] { fired = true; });
  reactor().run_once(false);  // armed natively before the fork
  const int fds_before_reactor = testing::open_fd_count();
  const testing::ChildResult child = testing::run_in_child([&] {
    // Destroying it must not disarm the parent's timer, nor leave a descriptor open here.
    reactor_.reset();
    return testing::open_fd_count() == fds_before_ ? 0 : 1;
  });
  EXPECT_TRUE(child.exited_with(0)) << child.describe();
  EXPECT_EQ(testing::open_fd_count(), fds_before_reactor);
  ASSERT_TRUE(run_until([&] { return fired; }, 10s)) << "the parent's timer was lost";
  EXPECT_GE(Clock::now(), deadline);
}

TEST_P(ReactorTimer, AGuestReactorInAHostLoopRunsTimersNeverEarlyWithoutBusyStepping) {
  ScopedEnv timer("WEFT_TIMER", std::get<1>(GetParam()).c_str());
  GuestReactor guest(std::get<0>(GetParam()));
  EarlyCheck check;
  const int n = 30;
  for (int i = 0; i < n; ++i) {
    // 700 us apart, at every offset within the millisecond: a host kept stepping by a native
    // clock that lags the deadline would step hundreds of times per timer.
    const TimePoint deadline = Clock::now() + std::chrono::microseconds(500 + 700 * i);
    guest.reactor().call_at(deadline, [&check, deadline] { check.at(deadline); });
  }
  int steps = 0;
  const TimePoint limit = Clock::now() + 10s;
  while (check.ran < n && Clock::now() < limit) {
    testing::step_precise_host(guest);
    ++steps;
  }
  std::printf("%s: %d steps for %d timers\n", guest.reactor().description().c_str(), steps, n);
  EXPECT_EQ(check.ran, n);
  EXPECT_EQ(check.early, 0) << "worst " << check.worst.count() << " ns early";
  // Each timer needs a step or two (its own, and one the helper thread asks for); a host spun
  // by a native clock lagging weft's deadline steps hundreds of times per timer.
  EXPECT_LT(steps, 10 * n) << steps << " steps for " << n << " timers";
}

// A host steps when its own clock says weft's deadline has come (GuestReactor's timeout()):
// that step must run the timer, even if the library's timer is armed for a moment a little
// later (libuv's millisecond clock; Asio's timerfd, armed in whole microseconds counted from
// a clock read taken before the system call). Otherwise the host finds nothing done, is told
// the deadline is due, and steps again at once until the native timer catches up.
TEST_P(ReactorTimer, ANonBlockingStepAtTheDeadlineRunsTheTimer) {
  int late = 0;
  for (int i = 0; i < 200; ++i) {
    bool fired = false;
    const TimePoint deadline = Clock::now() + 150us + std::chrono::nanoseconds(997 * i % 1000);
    reactor().call_at(deadline, [&] { fired = true; });
    reactor().run_once(false);  // armed natively
    while (Clock::now() < deadline) {
    }
    reactor().run_once(false);
    if (!fired) {
      ++late;
      ASSERT_TRUE(run_until([&] { return fired; })) << "the timer never ran";
    }
  }
  EXPECT_EQ(late, 0) << late << " of 200 steps made at the deadline did not run its timer";
}

TEST_P(ReactorTimer, DescriptionNamesTheTimerfdOnlyWhenItIsUsed) {
  if (std::get<1>(GetParam()) == "native") {
    EXPECT_EQ(reactor().description().find("timerfd"), std::string::npos)
        << reactor().description();
  }
  std::printf("%s\n", reactor().description().c_str());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReactorTimer, all_pairs(), param_name);

// ---- Selection ----

class TimerSelection : public ::testing::TestWithParam<std::string> {};

TEST_P(TimerSelection, AnUnknownTimerSourceIsAUsageErrorNamingTheValidOnes) {
  ScopedEnv timer("WEFT_TIMER", "hourglass");
  try {
    make_reactor(GetParam());
    ADD_FAILURE() << "made a reactor with WEFT_TIMER=hourglass";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("auto, timerfd or native"), std::string::npos) << e.what();
  }
}

TEST_P(TimerSelection, EveryValidTimerSourceRunsATimer) {
  for (const char* value : {"", "auto", "native"}) {
    ScopedEnv timer("WEFT_TIMER", value);
    std::unique_ptr<Reactor> reactor = make_reactor(GetParam());
    bool ran = false;
    reactor->call_later(200us, [&] { ran = true; });
    EXPECT_TRUE(testing::run_until(
        *reactor, [&] { return ran; }, 5s))
        << "WEFT_TIMER=" << value;
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, TimerSelection, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
