// The Runner conformance suite: what every runner promises, on every backend.
// Written once against runners/runner.h; instantiated over (registered runner x
// registered backend).
#include "weft/runners/runner.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runners/cpu_time.h"
#include "tests/runners/fork_child.h"
#include "tests/testing/backends.h"
#include "tests/testing/runners.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/runners/runner_registry.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using RunnerConformance = testing::RunnerTest;
// The tests whose tasks sleep and whose outcome does not depend on real time passing (no
// timeout racing the work): on real time and on virtual time, see the bottom.
using RunnerTiming = testing::RunnerTest;

Task<int> answer() { co_return 42; }

Task<int> slow_add(int a, int b, Duration delay) {
  co_await sleep(delay);
  co_return a + b;
}

// What a task of sleep_until_cancelled() saw: whether its body started (a task cancelled
// before it starts never runs it), and whether a cancellation reached it.
struct Probe {
  std::atomic<bool> started{false};
  std::atomic<bool> cancelled{false};
};

// Sleeps for an hour; records on `probe` that it started and that a cancellation reached it,
// then rethrows.
Task<int> sleep_until_cancelled(std::shared_ptr<Probe> probe) {
  probe->started.store(true);
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    probe->cancelled.store(true);
    throw;
  }
  co_return 0;
}

Task<std::string> fails_after(Duration delay) {
  co_await sleep(delay);
  throw std::runtime_error("task failed");
}

TEST_P(RunnerConformance, RunReturnsTheTaskValue) { EXPECT_EQ(runner().run(answer()), 42); }

TEST_P(RunnerTiming, RunRethrowsTheTaskException) {
  try {
    runner().run(fails_after(1ms));
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "task failed");
  }
}

TEST_P(RunnerTiming, NestedAwaitsComplete) {
  auto outer = []() -> Task<int> {
    int total = 0;
    for (int i = 0; i < 5; ++i) total += co_await slow_add(i, 1, 1ms);
    co_return total;
  };
  EXPECT_EQ(runner().run(outer()), 15);
}

TEST_P(RunnerTiming, ManySequentialRunsOnOneRunner) {
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(runner().run(slow_add(i, 1, 0ms)), i + 1);
  }
}

TEST_P(RunnerTiming, SubmitReturnsAnEventualResult) {
  EventualResult<int> result = runner().submit(slow_add(2, 3, 2ms));
  EXPECT_EQ(result.wait(), 5);
  EXPECT_TRUE(result.ready());
  EXPECT_EQ(result.wait(), 5) << "a result can be collected again";
  EXPECT_EQ(result.original_failure(), nullptr);
}

TEST_P(RunnerTiming, OriginalFailureGivesTheException) {
  EventualResult<std::string> result = runner().submit(fails_after(1ms));
  EXPECT_THROW(result.wait(), std::runtime_error);
  ASSERT_NE(result.original_failure(), nullptr);
  EXPECT_THROW(std::rethrow_exception(result.original_failure()), std::runtime_error);
}

TEST_P(RunnerConformance, TimedOutWaitDoesNotCancelTheWork) {
  EventualResult<int> result = runner().submit(slow_add(20, 22, 50ms));
  EXPECT_THROW(result.wait(1ms), TimeoutError);
  EXPECT_EQ(result.wait(), 42) << "the work went on after the timed-out wait";
}

// After run() cancelled a sleep_until_cancelled() task: its body either never started (the
// timeout came first) or ran its cleanup (the blocking runner before returning, the others on
// their loop, soon).
void expect_cleanup_unless_never_started(Runner& runner, const std::shared_ptr<Probe>& probe) {
  // A call through the loop: the task's start, queued before it, has been decided by then.
  EXPECT_EQ(runner.run(answer()), 42);
  if (!probe->started.load()) return;
  auto wait_for = [](std::shared_ptr<Probe> probe) -> Task<bool> {
    for (int i = 0; i < 5000 && !probe->cancelled.load(); ++i) co_await sleep(1ms);
    co_return probe->cancelled.load();
  };
  EXPECT_TRUE(runner.run(wait_for(probe)));
}

// Waits (driving the loop, for the blocking runner) until the task's body has started.
void wait_until_started(const EventualResult<int>& result, const Probe& probe) {
  for (int i = 0; i < 10000 && !probe.started.load(); ++i) {
    EXPECT_THROW(result.wait(1ms), TimeoutError);
  }
  ASSERT_TRUE(probe.started.load());
}

TEST_P(RunnerConformance, RunTimeoutCancelsTheTaskAndItsCleanupRuns) {
  auto probe = std::make_shared<Probe>();
  EXPECT_THROW(runner().run(sleep_until_cancelled(probe), 20ms), TimeoutError);
  expect_cleanup_unless_never_started(runner(), probe);
}

TEST_P(RunnerConformance, CancelOfASubmittedTaskIsObservedInsideIt) {
  auto probe = std::make_shared<Probe>();
  EventualResult<int> result = runner().submit(sleep_until_cancelled(probe));
  wait_until_started(result, *probe);
  result.cancel();
  EXPECT_THROW(result.wait(), Cancelled);
  EXPECT_TRUE(probe->cancelled.load());
}

TEST_P(RunnerConformance, CancelRightAfterSubmitFailsTheResultWithCancelled) {
  // The cancel may reach the task before it starts (its body never runs) or at its first
  // await; either way the result is the cancellation, not a shutdown or a value.
  auto probe = std::make_shared<Probe>();
  EventualResult<int> result = runner().submit(sleep_until_cancelled(probe));
  result.cancel();
  EXPECT_THROW(result.wait(), Cancelled);
  EXPECT_EQ(runner().run(answer()), 42);
}

TEST_P(RunnerConformance, RunOrSubmitOfAnEmptyTaskIsAUsageError) {
  Task<int> task = answer();
  EXPECT_EQ(runner().run(std::move(task)), 42);
  EXPECT_THROW(runner().run(std::move(task)), UsageError);     // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(runner().submit(std::move(task)), UsageError);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(runner().run(answer()), 42);
}

TEST_P(RunnerConformance, RunFromInsideTheRunnersOwnLoopIsAUsageError) {
  Runner* self = &runner();
  auto reentrant = [](Runner* self) -> Task<std::string> {
    try {
      self->run(answer());
    } catch (const UsageError& e) {
      co_return e.what();
    }
    co_return "no error";
  };
  EXPECT_THAT(runner().run(reentrant(self)), ::testing::HasSubstr("co_await the task instead"));
}

TEST_P(RunnerConformance, ShuttingDownFailsPendingResultsWithRunnerShutDown) {
  EventualResult<int> pending = runner().submit(slow_add(1, 1, 1h));
  EXPECT_THROW(pending.wait(2ms), TimeoutError);
  runner_.reset();
  EXPECT_TRUE(pending.ready());
  EXPECT_THROW(pending.wait(), RunnerShutDown);
}

TEST_P(RunnerConformance, DestroyedRightAfterSubmitsEveryResultFailsAndEveryFrameIsFreedOnce) {
  // Destroyed at once, the runner has some tasks not yet on the loop (the threaded and host
  // runners hand them over later), some queued to start, maybe some started: each result fails
  // with RunnerShutDown (a started one may also end Cancelled by the shutdown's cancellation),
  // and each task's frame, with what its parameters own, is destroyed exactly once.
  struct Counted {
    explicit Counted(std::atomic<int>* alive) : alive(alive) { ++*alive; }
    Counted(Counted&& other) noexcept : alive(std::exchange(other.alive, nullptr)) {}
    ~Counted() {
      if (alive != nullptr) --*alive;
    }
    std::atomic<int>* alive;
  };
  auto holds = [](Counted counted) -> Task<int> {
    co_await sleep(1h);
    co_return counted.alive != nullptr ? 1 : 0;
  };
  std::atomic<int> alive{0};
  std::vector<EventualResult<int>> results;
  for (int i = 0; i < 50; ++i) results.push_back(runner().submit(holds(Counted(&alive))));
  runner_.reset();
  host_.reset();  // the host runner's cancelled tasks wind down in the host's loop, if any
  EXPECT_EQ(alive.load(), 0) << "a frame outlived its runner";
  for (const EventualResult<int>& result : results) {
    ASSERT_TRUE(result.ready());
    EXPECT_THROW(result.wait(), RunnerShutDown);
  }
}

// ---- A stop() of the runner's reactor ----

Task<void> nap(Duration d) { co_await sleep(d); }

// A stop() of the runner's reactor may end the call it happened in (the blocking runner's
// rule) or be ignored (the others'); on no runner may it make a later call fail or spin.
template <typename T>
void run_through_a_stop(Runner& runner, Task<T> task) {
  try {
    runner.run(std::move(task), 10s);
  } catch (const LoopStopped&) {
  }
}

TEST_P(RunnerTiming, AStopOfTheReactorNeverLeavesTheRunnerSpinningOrStopped) {
  auto stops = []() -> Task<int> {
    Reactor::current()->stop();
    co_await sleep(1ms);
    co_return 1;
  };
  run_through_a_stop(runner(), stops());
  auto schedules_a_stop = []() -> Task<int> {
    Reactor* reactor = Reactor::current();
    reactor->call_soon([reactor] { reactor->stop(); });
    co_await sleep(5ms);
    co_return 1;
  };
  run_through_a_stop(runner(), schedules_a_stop());
  runner().reactor().stop();  // from another thread than the loop's (or between calls)
  run_through_a_stop(runner(), answer());
  EXPECT_EQ(runner().run(answer()), 42);
  const auto cpu = testing::cpu_time_of([&] { runner().run(nap(200ms)); });
  EXPECT_LT(cpu, 100ms) << "a loop spun instead of sleeping";
}

// ---- Time at its extremes: saturated, never wrapped around ----

TEST_P(RunnerTiming, RunWithATimeoutAtTheEndOfTimeWaitsAsLongAsItTakes) {
  EXPECT_EQ(runner().run(slow_add(1, 2, 2ms), Duration::max()), 3);
  EXPECT_EQ(runner().run(slow_add(1, 2, 2ms), Duration::max() - 1ns), 3);
  // A deadline of exactly TimePoint::max().
  EXPECT_EQ(runner().run(slow_add(1, 2, 2ms), TimePoint::max() - Clock::now()), 3);
  EXPECT_EQ(runner().run(slow_add(1, 2, 2ms), 24h * 365 * 200), 3);
}

TEST_P(RunnerConformance, RunWithATimeoutAlreadyPastCancelsTheTask) {
  // Zero, negative, and Duration::min() (whose deadline saturates to TimePoint::min()).
  for (Duration timeout :
       {Duration::zero(), Duration(-1ms), Duration::min(), Duration::min() + 1ns}) {
    auto probe = std::make_shared<Probe>();
    EXPECT_THROW(runner().run(sleep_until_cancelled(probe), timeout), TimeoutError)
        << timeout.count();
  }
  EXPECT_EQ(runner().run(answer()), 42);
}

TEST_P(RunnerTiming, WaitWithATimeoutAtTheEndOfTimeWaitsAsLongAsItTakes) {
  EXPECT_EQ(runner().submit(slow_add(2, 2, 2ms)).wait(Duration::max()), 4);
  EXPECT_EQ(runner().submit(slow_add(2, 2, 2ms)).wait(TimePoint::max() - Clock::now()), 4);
  EXPECT_EQ(runner().submit(slow_add(2, 2, 2ms)).wait(Duration::max() - 1ns), 4);
}

TEST_P(RunnerConformance, WaitWithATimeoutAlreadyPastDoesNotWaitAndTheWorkGoesOn) {
  EventualResult<int> result = runner().submit(slow_add(20, 22, 20ms));
  for (Duration timeout :
       {Duration::zero(), Duration(-1ms), Duration::min(), Duration::min() + 1ns}) {
    EXPECT_THROW(result.wait(timeout), TimeoutError) << timeout.count();
  }
  EXPECT_EQ(result.wait(Duration::max()), 42) << "the timed-out waits did not cancel the work";
  for (Duration timeout : {Duration::zero(), Duration::min(), Duration::max()}) {
    EXPECT_EQ(result.wait(timeout), 42) << "a ready result needs no time: " << timeout.count();
  }
}

// ---- Failures nobody looked at ----

Task<int> fails_now() {
  co_await sleep(0ms);
  throw std::runtime_error("the work failed");
}

// Makes the result ready without looking at it (the blocking runner needs its loop driven).
template <typename T>
void until_ready(Runner& runner, const EventualResult<T>& result) {
  for (int i = 0; i < 10000 && !result.ready(); ++i) runner.run(nap(1ms));
  ASSERT_TRUE(result.ready());
}

TEST_P(RunnerConformance, AFailedResultDroppedWithoutLookingIsReportedWithItsError) {
  ::testing::internal::CaptureStderr();
  {
    EventualResult<int> result = runner().submit(fails_now());
    until_ready(runner(), result);
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, ::testing::HasSubstr("unhandled error in a dropped EventualResult"));
  EXPECT_THAT(err, ::testing::HasSubstr("the work failed"));
}

TEST_P(RunnerConformance, AFailureDroppedBeforeItHappenedGoesToTheReactorsErrorHandler) {
  // Dropped first, the result dies with its task, on the loop thread: the reactor's error
  // handler gets it, where the program collects loop errors.
  struct Reports {
    std::mutex mu;
    std::vector<std::string> lines;
  };
  auto reports = std::make_shared<Reports>();
  auto install = [](std::shared_ptr<Reports> reports) -> Task<void> {
    Reactor::current()->set_error_handler(
        [reports](std::exception_ptr error, std::string_view where) {
          std::string what;
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            what = e.what();
          }
          std::lock_guard lock(reports->mu);
          reports->lines.push_back(std::string(where) + ": " + what);
        });
    co_return;
  };
  runner().run(install(reports));
  runner().submit(slow_add(1, 1, 5ms));  // dropped, succeeds: nothing to report
  auto fails_later = []() -> Task<int> {
    co_await sleep(5ms);
    throw std::runtime_error("failed after being dropped");
  };
  runner().submit(fails_later());
  auto reported = [&] {
    std::lock_guard lock(reports->mu);
    return !reports->lines.empty();
  };
  for (int i = 0; i < 5000 && !reported(); ++i) runner().run(nap(1ms));
  runner().run(nap(10ms));
  std::lock_guard lock(reports->mu);
  ASSERT_EQ(reports->lines.size(), 1u);
  EXPECT_THAT(reports->lines[0], ::testing::HasSubstr("EventualResult"));
  EXPECT_THAT(reports->lines[0], ::testing::HasSubstr("failed after being dropped"));
}

TEST_P(RunnerConformance, AFailureLookedAtOrCausedByTheCallerIsNotReported) {
  ::testing::internal::CaptureStderr();
  {
    // wait() rethrew it.
    EventualResult<int> result = runner().submit(fails_now());
    EXPECT_THROW(result.wait(), std::runtime_error);
  }
  {
    // original_failure() gave it.
    EventualResult<int> result = runner().submit(fails_now());
    until_ready(runner(), result);
    EXPECT_NE(result.original_failure(), nullptr);
  }
  {
    // run() rethrew it.
    EXPECT_THROW(runner().run(fails_now()), std::runtime_error);
  }
  {
    // Cancelled by the caller.
    auto probe = std::make_shared<Probe>();
    EventualResult<int> result = runner().submit(sleep_until_cancelled(probe));
    result.cancel();
    until_ready(runner(), result);
  }
  {
    // Cancelled by run()'s timeout.
    auto probe = std::make_shared<Probe>();
    EXPECT_THROW(runner().run(sleep_until_cancelled(probe), 1ms), TimeoutError);
    expect_cleanup_unless_never_started(runner(), probe);
  }
  {
    // Failed with RunnerShutDown because the caller destroyed the runner.
    EventualResult<int> pending = runner().submit(slow_add(1, 1, 1h));
    EXPECT_THROW(pending.wait(2ms), TimeoutError);
    runner_.reset();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

// ---- fork ----

TEST_P(RunnerConformance, AnInheritedRunnerRefusesEveryUseInAForkedChildAndDiesQuietly) {
  const std::string backend = std::get<1>(GetParam());
  // At the fork, a thread of the parent waits on a result (inside the loop, for the blocking
  // runner; on a condition variable, for the others).
  auto pending = std::make_shared<EventualResult<int>>(runner().submit(slow_add(1, 1, 1h)));
  EventualResult<int> ready = runner().submit(slow_add(1, 2, 0ms));
  EXPECT_EQ(ready.wait(), 3);
  std::atomic<bool> waiter_started{false};
  std::thread waiter([pending, &waiter_started] {
    waiter_started = true;
    EXPECT_THROW(pending->wait(), Cancelled);
  });
  while (!waiter_started) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);  // let it block

  testing::expect_child_succeeds([&] {
    testing::ChildChecks checks;
    checks.expect_fork_usage_error([&] { runner().run(answer()); }, "run()");
    checks.expect_fork_usage_error([&] { runner().run(answer(), 1s); }, "run(timeout)");
    checks.expect_fork_usage_error([&] { runner().submit(answer()); }, "submit()");
    checks.expect_fork_usage_error([&] { pending->wait(); }, "wait() on a pending result");
    checks.expect_fork_usage_error([&] { pending->wait(1ms); }, "wait(1ms)");
    checks.expect_fork_usage_error([&] { ready.wait(); }, "wait() on a ready result");
    checks.expect_fork_usage_error([&] { pending->cancel(); }, "cancel()");
    checks.expect(ready.ready() && !pending->ready(), "ready() answers from the inherited state");
    // Destroying the inherited runner and results returns (the parent kills a hung child).
    pending.reset();
    runner_.reset();
    // The child makes a runner of its own (blocking: a child of a multithreaded process
    // should start no threads) and uses it.
    std::unique_ptr<Runner> fresh = make_runner("blocking", {.backend = backend});
    checks.expect(fresh->run(answer()) == 42, "a runner made in the child works");
    return checks.status();
  });

  // The parent's runner is untouched by the child's teardown.
  pending->cancel();
  waiter.join();
  EXPECT_EQ(runner().run(slow_add(2, 3, 1ms), 10s), 5);
  EXPECT_EQ(runner().submit(answer()).wait(10s), 42);
}

INSTANTIATE_TEST_SUITE_P(AllRunnersAndBackends, RunnerConformance,
                         ::testing::ValuesIn(testing::runner_and_backend_names()),
                         testing::runner_param_name);
INSTANTIATE_TEST_SUITE_P(AllRunnersAndBackends, RunnerTiming,
                         ::testing::ValuesIn(testing::runner_and_backend_names()),
                         testing::runner_param_name);
INSTANTIATE_TEST_SUITE_P(VirtualTime, RunnerTiming,
                         ::testing::ValuesIn(testing::runner_and_virtual_backend_names()),
                         testing::runner_param_name);

}  // namespace
}  // namespace weft
