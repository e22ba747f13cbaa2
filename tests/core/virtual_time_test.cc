// Virtual time (core/virtual_clock.h): advance and jump_to walk through every timer at its own
// deadline, autojump, what stops it (an fd watched, an expected cross-thread call), deadlock
// detection, saturation, and the clock by name on every runner. On every backend.
#include "weft/core/virtual_clock.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "tests/testing/host_loop.h"
#include "tests/testing/runners.h"
#include "weft/core/backend_registry.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/clock.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/fd_wait.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/runners/root_group.h"
#include "weft/runners/runner_registry.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class VirtualTime : public ::testing::TestWithParam<std::string> {
 protected:
  void make(VirtualClock::Options options) {
    auto clock = std::make_unique<VirtualClock>(options);
    clock_ = clock.get();
    reactor_ = make_reactor(GetParam(), std::move(clock));
    start_ = clock_->now();
  }
  void SetUp() override { make({}); }
  void TearDown() override {
    if (reactor_ == nullptr) return;
    const Reactor::Counts counts = reactor_->counts();
    EXPECT_EQ(counts.ready, 0u);
    EXPECT_EQ(counts.timers, 0u);
    EXPECT_EQ(counts.tasks, 0u);
    EXPECT_EQ(counts.watches, 0u);
  }
  Reactor& reactor() { return *reactor_; }
  VirtualClock& clock() { return *clock_; }
  // Time since the test's clock started.
  Duration t() const { return clock_->now() - start_; }
  // Runs the loop until time has reached the clock's target and nothing is left to run there.
  void catch_up() {
    testing::run_until(reactor(), [&] {
      return clock().now() == clock().target() && reactor().counts().ready == 0;
    });
  }

  std::unique_ptr<Reactor> reactor_;
  VirtualClock* clock_ = nullptr;
  TimePoint start_;
};

// ---- advance and jump_to ----

TEST_P(VirtualTime, AdvanceRunsEachTimerAtItsOwnDeadlineInOrder) {
  make({.autojump = false});
  std::vector<std::pair<int, Duration>> fired;
  for (int ms : {1000, 100, 500}) {
    reactor().call_later(std::chrono::milliseconds(ms),
                         [this, &fired, ms] { fired.emplace_back(ms, t()); });
  }
  reactor().run_once(false);
  EXPECT_TRUE(fired.empty()) << "time moves only when told";
  clock().advance(1s);
  catch_up();
  EXPECT_EQ(fired, (std::vector<std::pair<int, Duration>>{{100, 100ms}, {500, 500ms}, {1000, 1s}}));
  EXPECT_EQ(t(), 1s);
}

TEST_P(VirtualTime, FollowUpsOfATimerRunInLaterTurnsBeforeTimeMovesOn) {
  make({.autojump = false});
  std::vector<std::string> log;
  auto note = [&](const char* what) { log.push_back(absl::StrCat(what, "@", t() / 1ms)); };
  reactor().call_later(100ms, [&] {
    note("timer");
    reactor().call_soon([&] { note("soon"); });
    reactor().call_later(50ms, [&] { note("follow-up"); });
    reactor().call_later(0ms, [&] { note("zero"); });
  });
  reactor().call_later(500ms, [&] { note("later"); });
  clock().advance(1s);
  catch_up();
  EXPECT_THAT(log, ::testing::ElementsAre("timer@100", "soon@100", "zero@100", "follow-up@150",
                                          "later@500"));
}

TEST_P(VirtualTime, AdvancesAddUpAndTimeNeverGoesBack) {
  make({.autojump = false});
  clock().advance(1s);
  clock().advance(1s);
  EXPECT_EQ(clock().target() - start_, 2s);
  clock().jump_to(start_ + 500ms);  // before the target: nothing
  clock().advance(-5s);
  clock().advance(Duration::zero());
  EXPECT_EQ(clock().target() - start_, 2s);
  catch_up();
  EXPECT_EQ(t(), 2s);
  EXPECT_EQ(reactor().now(), clock().now());
  clock().jump_to(start_ + 1s);  // the past: nothing
  EXPECT_EQ(clock().target(), clock().now());
  clock().jump_to(start_ + 3s);
  catch_up();
  EXPECT_EQ(t(), 3s);
}

TEST_P(VirtualTime, AdvanceFromAnotherThreadWakesTheWaitingLoop) {
  make({.autojump = false});
  bool fired = false;
  // (Less than run_until's own limit, a timer on the same clock.)
  reactor().call_later(10s, [&] { fired = true; });
  std::thread advancer([&] {
    std::this_thread::sleep_for(10ms);
    clock().advance(10s);
  });
  testing::run_until(reactor(), [&] { return fired; });
  advancer.join();
  EXPECT_EQ(t(), 10s);
}

TEST_P(VirtualTime, AdvanceByDurationMaxSaturatesAndLeavesNeverTimersPending) {
  make({.autojump = false});
  bool far_fired = false;
  bool never_fired = false;
  reactor().call_later(std::chrono::hours(24 * 365 * 100), [&] { far_fired = true; });
  TimerHandle never = reactor().call_later(Duration::max(), [&] { never_fired = true; });
  clock().advance(Duration::max());
  clock().advance(Duration::max());  // again, from the end: no overflow
  EXPECT_EQ(clock().target(), VirtualClock::kEnd);
  catch_up();
  EXPECT_TRUE(far_fired);
  EXPECT_FALSE(never_fired);
  EXPECT_EQ(clock().now(), VirtualClock::kEnd);
  // At the end of time every new delay saturates to "never".
  TimerHandle later = reactor().call_later(1ns, [] {});
  EXPECT_EQ(later.deadline(), TimePoint::max());
  reactor().run_once(false);
  EXPECT_TRUE(never.pending());
  EXPECT_TRUE(never.cancel());
  EXPECT_TRUE(later.cancel());
}

TEST_P(VirtualTime, ClockMadeAtTheEndOfTimeStaysThere) {
  make({.start = TimePoint::max(), .autojump = false});
  EXPECT_EQ(clock().now(), VirtualClock::kEnd);
  clock().advance(1h);
  EXPECT_EQ(clock().target(), VirtualClock::kEnd);
}

// ---- autojump ----

TEST_P(VirtualTime, AutojumpMakesLongSleepsExactAndInstant) {
  auto sleeper = [](Reactor& reactor) -> Task<Duration> {
    const TimePoint begin = reactor.now();
    co_await sleep(1h);
    co_await sleep(250ms);
    co_return reactor.now() - begin;
  };
  const auto real_begin = std::chrono::steady_clock::now();
  Deferred<Duration> slept = spawn(reactor(), sleeper(reactor()));
  ASSERT_TRUE(testing::run_until(reactor(), [&] { return slept.called(); }));
  EXPECT_EQ(slept.value(), 1h + 250ms);
  EXPECT_LT(std::chrono::steady_clock::now() - real_begin, 1s);
}

TEST_P(VirtualTime, AutojumpWaitsWhileAnFdIsWatched) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  bool readable = false;
  bool timer = false;
  Watch watch = reactor().watch_readable(sv[0], [&] { readable = true; });
  reactor().call_later(1s, [&] { timer = true; });
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    ASSERT_EQ(write(sv[1], "x", 1), 1);
  });
  ASSERT_TRUE(testing::run_until(reactor(), [&] { return readable; }));
  writer.join();
  EXPECT_EQ(t(), Duration::zero()) << "the fd could still make work: no jump";
  EXPECT_FALSE(timer);
  watch.cancel();
  ASSERT_TRUE(testing::run_until(reactor(), [&] { return timer; }));
  EXPECT_EQ(t(), 1s);
  close(sv[0]);
  close(sv[1]);
}

TEST_P(VirtualTime, AutojumpWaitsForAnExpectedCrossThreadCall) {
  bool delivered = false;
  bool timer = false;
  reactor().call_later(1s, [&] { timer = true; });
  Reactor::ExpectedCall expected = reactor().expect_call_from_thread();
  std::thread worker([&, guard = std::move(expected)]() mutable {
    std::this_thread::sleep_for(20ms);
    reactor().call_from_thread([&] { delivered = true; });
    guard.release();
  });
  ASSERT_TRUE(testing::run_until(reactor(), [&] { return delivered; }));
  worker.join();
  EXPECT_EQ(t(), Duration::zero());
  EXPECT_FALSE(timer);
  ASSERT_TRUE(testing::run_until(reactor(), [&] { return timer; }));
  EXPECT_EQ(t(), 1s);
}

TEST_P(VirtualTime, CancelScopeDeadlinesFollowVirtualTime) {
  auto body = [](Reactor& reactor) -> Task<Duration> {
    const TimePoint begin = reactor.now();
    std::optional<int> value = co_await move_on_after(1500ms, []() -> Task<int> {
      co_await sleep(1h);
      co_return 1;
    }());
    EXPECT_FALSE(value.has_value());
    co_return reactor.now() - begin;
  };
  Deferred<Duration> done = spawn(reactor(), body(reactor()));
  ASSERT_TRUE(testing::run_until(reactor(), [&] { return done.called(); }));
  EXPECT_EQ(done.value(), 1500ms);
}

// ---- deadlock detection ----

Task<int> wait_for(Deferred<int> never) { co_return co_await never; }

TEST_P(VirtualTime, TaskWaitingOnWhatNothingCanFireFailsWithDeadlock) {
  Deferred<int> never;
  std::vector<std::string> cleanup;
  auto waiter = [](Deferred<int> d, std::vector<std::string>& log) -> Task<int> {
    co_await sleep(2s);
    try {
      co_return co_await d;
    } catch (const Cancelled&) {
      log.push_back("cancelled");
      throw;
    }
  };
  Deferred<int> result = spawn(reactor(), waiter(never, cleanup));
  const auto real_begin = std::chrono::steady_clock::now();
  // run() would hang forever on real time; here the task fails and the loop goes on.
  result.add_done([&] { reactor().stop(); });
  reactor().run();
  EXPECT_LT(std::chrono::steady_clock::now() - real_begin, 1s);
  ASSERT_TRUE(result.failed());
  try {
    result.check();
    FAIL() << "no Deadlock";
  } catch (const Deadlock& error) {
    EXPECT_THAT(error.what(), HasSubstr("deadlock"));
    EXPECT_THAT(error.what(), HasSubstr("virtual time 2 s"));
    EXPECT_THAT(error.what(), HasSubstr("1 task waits"));
  }
  EXPECT_THAT(cleanup, ::testing::ElementsAre("cancelled"));
  EXPECT_TRUE(never.called()) << "the awaited Deferred was cancelled with its task";
  EXPECT_EQ(t(), 2s);
}

TEST_P(VirtualTime, NoDeadlockWhileATimerCanStillFire) {
  // Only the timer's callback can fire the Deferred: the task must wait for it, not fail.
  Deferred<int> later;
  reactor().call_later(1h, [&] { later.callback(42); });
  Deferred<int> result = spawn(reactor(), wait_for(later));
  ASSERT_TRUE(testing::run_until(reactor(), [&] { return result.called(); }));
  EXPECT_EQ(result.value(), 42);
  EXPECT_EQ(t(), 1h);
}

TEST_P(VirtualTime, NoDeadlockWhileDetectionIsOffOrTimeIsManual) {
  for (bool autojump : {false, true}) {
    SCOPED_TRACE(autojump);
    make({.autojump = autojump, .detect_deadlocks = false});
    Deferred<int> never;
    Deferred<int> result = spawn(reactor(), wait_for(never));
    // The loop waits (as on real time) until something else fires it.
    std::thread firer([&] {
      std::this_thread::sleep_for(20ms);
      reactor().call_from_thread([&] { never.callback(7); });
    });
    ASSERT_TRUE(testing::run_until(reactor(), [&] { return result.called(); }));
    firer.join();
    EXPECT_EQ(result.value(), 7);
  }
}

TEST_P(VirtualTime, RunOnceReturningControlIsNotADeadlock) {
  // The caller of run_once(false) can still fire the Deferred itself between iterations.
  Deferred<int> mine;
  Deferred<int> result = spawn(reactor(), wait_for(mine));
  for (int i = 0; i < 5; ++i) reactor().run_once(false);
  EXPECT_FALSE(result.called());
  mine.callback(3);
  ASSERT_TRUE(testing::run_until(reactor(), [&] { return result.called(); }));
  EXPECT_EQ(result.value(), 3);
}

// ---- the clock by name, and misuse ----

TEST_P(VirtualTime, ClockNamesAndMisuse) {
  EXPECT_EQ(make_clock(""), nullptr);
  EXPECT_EQ(make_clock("steady"), nullptr);
  EXPECT_NE(dynamic_cast<VirtualClock*>(make_clock("virtual").get()), nullptr);
  try {
    make_clock("sundial");
    FAIL() << "no error";
  } catch (const UnknownNameError& error) {
    EXPECT_THAT(error.what(), HasSubstr("steady, virtual"));
  }
  std::unique_ptr<Reactor> real = make_reactor(GetParam());
  EXPECT_EQ(VirtualClock::find(*real), nullptr);
  EXPECT_THROW(VirtualClock::of(*real), UsageError);
  EXPECT_EQ(&VirtualClock::of(reactor()), &clock());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, VirtualTime, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

// ---- every runner on virtual time ----

// RunnerTest (tests/testing/runners.h) on "BACKEND@virtual" parameters: the runner's clock is
// virtual, and a host runner's host loop runs on the same virtual clock.
using VirtualTimeRunner = testing::RunnerTest;

TEST_P(VirtualTimeRunner, SleepsAreExactAndInstant) {
  auto cell = []() -> Task<std::vector<Duration>> {
    Reactor& reactor = *Reactor::current();
    const TimePoint begin = reactor.now();
    std::vector<Duration> stamps;
    reactor.call_later(100ms, [&] { stamps.push_back(reactor.now() - begin); });
    co_await sleep(500ms);
    stamps.push_back(reactor.now() - begin);
    co_await sleep(500ms);
    stamps.push_back(reactor.now() - begin);
    co_return stamps;
  };
  const auto real_begin = std::chrono::steady_clock::now();
  EXPECT_EQ(runner_->run(cell(), 10s), (std::vector<Duration>{100ms, 500ms, 1s}));
  EXPECT_LT(std::chrono::steady_clock::now() - real_begin, 1s);
}

TEST_P(VirtualTimeRunner, DeadlockFailsTheCallInsteadOfHanging) {
  auto stuck = []() -> Task<int> {
    Deferred<int> never;
    co_return co_await never;
  };
  EXPECT_THROW(runner_->run(stuck(), 10s), Deadlock);
  // The runner serves the next call normally.
  auto fine = []() -> Task<int> {
    co_await sleep(1h);
    co_return 5;
  };
  EXPECT_EQ(runner_->run(fine(), 10s), 5);
}

TEST_P(VirtualTimeRunner, ManualTimeWaitsForAdvance) {
  VirtualClock& clock = VirtualClock::of(runner_->reactor());
  if (std::get<0>(GetParam()) == "blocking") {
    GTEST_SKIP() << "the blocking runner's loop runs only inside the caller's call: with manual "
                    "time the caller would have to advance from inside the task";
  }
  clock.set_autojump(false);
  auto sleeper = []() -> Task<Duration> {
    const TimePoint begin = Reactor::current()->now();
    co_await sleep(3s);
    co_return Reactor::current()->now() - begin;
  };
  EventualResult<Duration> result = runner_->submit(sleeper());
  EXPECT_THROW(result.wait(20ms), TimeoutError);
  clock.advance(2s);
  EXPECT_THROW(result.wait(20ms), TimeoutError);
  clock.advance(1s);
  EXPECT_EQ(result.wait(10s), 3s);
}

// Makes `fd` readable after `bound` of real time unless disarmed first: a test whose runner
// would wait forever ends (and fails on its assertions) instead of hanging.
class Unsticker {
 public:
  Unsticker(int fd, Duration bound)
      : thread_([this, fd, bound] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, bound, [this] { return disarmed_; })) {
            unstuck_ = true;
            EXPECT_EQ(write(fd, "x", 1), 1);
          }
        }) {}
  ~Unsticker() {
    {
      std::lock_guard lock(mu_);
      disarmed_ = true;
      cv_.notify_one();
    }
    thread_.join();
  }
  // Whether the bound passed and it had to write.
  bool unstuck() {
    std::lock_guard lock(mu_);
    return unstuck_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  bool unstuck_ = false;
  std::thread thread_;  // last: started once the rest is ready
};

// issue: the blocking runner measured run()'s timeout on the reactor's clock, so on virtual
// time a task waiting on an fd (the loop blocks in the kernel; no autojump while an fd is
// watched) outlived any timeout.
TEST_P(VirtualTimeRunner, RunTimeoutIsRealTimeWhileTheTaskWaitsOnAnFd) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto stuck = [](int fd) -> Task<void> { co_await wait_readable(fd); };
  const TimePoint virtual_begin = runner_->reactor().now();
  const auto real_begin = std::chrono::steady_clock::now();
  {
    Unsticker unsticker(sv[1], 10s);
    EXPECT_THROW(runner_->run(stuck(sv[0]), 200ms), TimeoutError);
    EXPECT_FALSE(unsticker.unstuck()) << "the timeout did not end the call";
  }
  const auto took = std::chrono::steady_clock::now() - real_begin;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
  // Virtual time did not move: the fd was watched all along.
  auto elapsed = [](TimePoint begin) -> Task<Duration> {
    co_return Reactor::current()->now() - begin;
  };
  EXPECT_EQ(runner_->run(elapsed(virtual_begin), 10s), Duration::zero());
  close(sv[0]);
  close(sv[1]);
}

// The shutdown bound is real time too: background cleanup stuck on an fd cannot hold the
// runner's destructor past it.
TEST_P(VirtualTimeRunner, ShutdownBoundIsRealTimeWhileCleanupWaitsOnAnFd) {
  const auto& [runner_name, param] = GetParam();
  RunnerOptions options{
      .backend = testing::backend_of(param), .shutdown_timeout = 200ms, .clock = "virtual"};
  if (host_ != nullptr) {
    options.host = &host_->reactor();
    options.host_thread = host_->thread_id();
  }
  runner_ = make_runner(runner_name, options);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::atomic<bool> waiting{false};
  auto starter = [](int fd, std::atomic<bool>* waiting) -> Task<void> {
    Deferred<void> started;
    start_background(
        "stuck cleanup",
        [](int fd, std::atomic<bool>* waiting, Deferred<void> started) -> Task<void> {
          started.callback();
          try {
            co_await sleep(1h);  // over at once (autojump), or cancelled
          } catch (const Cancelled&) {
          }
          waiting->store(true);
          co_await shield([](int fd) -> Task<void> { co_await wait_readable(fd); }(fd));
        }(fd, waiting, started));
    co_await started;  // running: the shutdown has it to wait for
  };
  runner_->run(starter(sv[0], &waiting), 10s);
  const auto real_begin = std::chrono::steady_clock::now();
  {
    Unsticker unsticker(sv[1], 10s);
    runner_.reset();
    EXPECT_FALSE(unsticker.unstuck()) << "the shutdown bound did not end the wait";
  }
  EXPECT_TRUE(waiting.load()) << "the cleanup never reached its wait";
  EXPECT_LT(std::chrono::steady_clock::now() - real_begin, 5s);
  close(sv[0]);
  close(sv[1]);
}

INSTANTIATE_TEST_SUITE_P(AllRunners, VirtualTimeRunner,
                         ::testing::ValuesIn(testing::runner_and_virtual_backend_names()),
                         testing::runner_param_name);

TEST(VirtualTimeRunnerOptions, HostRunnerRefusesAClockItsHostDoesNotHave) {
  testing::HostLoopThread host(default_backend_name());
  try {
    make_runner("host",
                {.host = &host.reactor(), .host_thread = host.thread_id(), .clock = "virtual"});
    FAIL() << "no error";
  } catch (const UsageError& error) {
    EXPECT_THAT(error.what(), HasSubstr("real time"));
  }
  EXPECT_THROW(make_runner("blocking", {.clock = "sundial"}), UnknownNameError);
}

}  // namespace
}  // namespace weft
