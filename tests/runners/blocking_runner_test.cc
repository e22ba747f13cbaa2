// What only the blocking runner promises: the loop runs during calls and pauses
// between them.
#include "weft/runners/blocking_runner.h"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runners/cpu_time.h"
#include "tests/runners/failing_backend.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/detail/exception_text.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/runners/root_group.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using detail::what_of;

class BlockingRunnerTest : public ::testing::TestWithParam<std::string> {
 protected:
  BlockingRunner runner_{make_reactor(GetParam())};
};

TEST_P(BlockingRunnerTest, BackgroundTaskPausesBetweenCallsAndCarriesOnDuringTheNext) {
  int ticks = 0;
  auto ticker = [](int& ticks) -> Task<void> {
    for (;;) {
      co_await sleep(2ms);
      ++ticks;
    }
  };
  auto cell = [](Duration d) -> Task<void> { co_await sleep(d); };
  auto start = [&]() -> Task<void> {
    spawn(*Reactor::current(), ticker(ticks));
    co_await sleep(20ms);
  };
  runner_.run(start());
  const int after_first = ticks;
  EXPECT_GT(after_first, 0);
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(ticks, after_first) << "the loop does not run between calls";
  runner_.run(cell(20ms));
  EXPECT_GT(ticks, after_first) << "the background task carried on during the next call";
  EXPECT_EQ(runner_.reactor().counts().tasks, 1u);
}

// The rule for background work (runners/root_group.h) under this runner: it lives on the
// runner's reactor, so it runs during every later call (run(), and wait() on a result, which
// drives the loop) and is paused between calls; the destructor drives the loop once more to
// let its cancellation and cleanup run.
TEST_P(BlockingRunnerTest, BackgroundWorkRunsDuringEveryLaterCallAndPausesBetweenThem) {
  auto ticks = std::make_shared<std::atomic<int>>(0);
  auto cleaned_up = std::make_shared<bool>(false);
  auto ticker = [](std::shared_ptr<std::atomic<int>> ticks,
                   std::shared_ptr<bool> cleaned_up) -> Task<void> {
    try {
      for (;;) {
        co_await sleep(2ms);
        ++*ticks;
      }
    } catch (const Cancelled&) {
      *cleaned_up = true;
      throw;
    }
  };
  auto start = [&]() -> Task<void> {
    start_background("ticker", ticker(ticks, cleaned_up));
    co_return;
  };
  auto runner = std::make_unique<BlockingRunner>(make_reactor(GetParam()));
  runner->run(start());
  auto nap_20ms = []() -> Task<void> { co_await sleep(20ms); };
  runner->run(nap_20ms());
  const int after_run = *ticks;
  EXPECT_GT(after_run, 0) << "it ran during the next run()";
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(*ticks, after_run) << "the loop does not run between calls";
  runner->submit(nap_20ms()).wait();
  EXPECT_GT(*ticks, after_run) << "wait() on a result drives the loop too";
  EXPECT_FALSE(*cleaned_up);
  runner.reset();
  EXPECT_TRUE(*cleaned_up) << "the destructor cancelled it and ran its cleanup";
}

TEST_P(BlockingRunnerTest, RunInsideAnotherRunningLoopIsAUsageError) {
  std::unique_ptr<Reactor> other = make_reactor(GetParam());
  std::string error;
  other->call_soon([&] {
    try {
      runner_.run([]() -> Task<void> { co_return; }());
    } catch (const UsageError& e) {
      error = e.what();
    }
    other->stop();
  });
  other->run();
  EXPECT_THAT(error, ::testing::HasSubstr("cannot run inside the running loop"));
}

TEST_P(BlockingRunnerTest, SubmittedTaskRunsDuringALaterCall) {
  bool ran = false;
  auto mark = [](bool& ran) -> Task<void> {
    ran = true;
    co_return;
  };
  EventualResult<void> result = runner_.submit(mark(ran));
  EXPECT_FALSE(ran) << "nothing runs until the loop does";
  runner_.run([]() -> Task<void> { co_await sleep(1ms); }());
  EXPECT_TRUE(ran);
  EXPECT_TRUE(result.ready());
}

// ---- A stop() of the runner's reactor during a call ----

Task<int> answer() { co_return 42; }
Task<void> nap(Duration d) { co_await sleep(d); }

// Sleeps for an hour unless cancelled; records that its cleanup ran.
Task<int> sleep_for_an_hour(std::shared_ptr<bool> cleaned_up) {
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    *cleaned_up = true;
    throw;
  }
  co_return 0;
}

// After a stop, the runner must serve calls normally: no LoopStopped left over, and no
// spinning (a 200 ms sleep must cost far less than 200 ms of CPU).
void expect_runner_works_normally(BlockingRunner& runner) {
  EXPECT_EQ(runner.run(answer()), 42) << "a stop() was left pending for the next call";
  const auto cpu = testing::cpu_time_of([&] { runner.run(nap(200ms)); });
  EXPECT_LT(cpu, 100ms) << "the loop spun instead of sleeping";
}

TEST_P(BlockingRunnerTest, StopFromInsideTheTaskEndsRunWithLoopStoppedAfterTheCleanup) {
  auto cleaned_up = std::make_shared<bool>(false);
  auto stops_then_sleeps = [](std::shared_ptr<bool> cleaned_up) -> Task<int> {
    Reactor::current()->stop();
    co_return co_await sleep_for_an_hour(std::move(cleaned_up));
  };
  EXPECT_THROW(runner_.run(stops_then_sleeps(cleaned_up)), LoopStopped);
  EXPECT_TRUE(*cleaned_up) << "run() cancelled the task and ran its cleanup before throwing";
  EXPECT_EQ(runner_.reactor().counts().tasks, 0u);
  expect_runner_works_normally(runner_);
}

TEST_P(BlockingRunnerTest, StopFromACallbackEndsRunWithLoopStopped) {
  auto cleaned_up = std::make_shared<bool>(false);
  auto schedules_a_stop = [](std::shared_ptr<bool> cleaned_up) -> Task<int> {
    Reactor* reactor = Reactor::current();
    reactor->call_later(5ms, [reactor] { reactor->stop(); });
    co_return co_await sleep_for_an_hour(std::move(cleaned_up));
  };
  EXPECT_THROW(runner_.run(schedules_a_stop(cleaned_up)), LoopStopped);
  EXPECT_TRUE(*cleaned_up);
  expect_runner_works_normally(runner_);
}

TEST_P(BlockingRunnerTest, StopFromAnotherThreadEndsRunWithLoopStopped) {
  auto cleaned_up = std::make_shared<bool>(false);
  std::thread other([this] {
    std::this_thread::sleep_for(20ms);
    runner_.reactor().stop();
  });
  EXPECT_THROW(runner_.run(sleep_for_an_hour(cleaned_up)), LoopStopped);
  other.join();
  EXPECT_TRUE(*cleaned_up);
  expect_runner_works_normally(runner_);
}

TEST_P(BlockingRunnerTest, StopBeforeTheCallEndsItAtOnceLikeReactorRun) {
  runner_.reactor().stop();
  bool started = false;
  auto marks = [](bool& started) -> Task<int> {
    started = true;
    co_return 1;
  };
  EventualResult<int> result = runner_.submit(marks(started));
  EXPECT_THROW(result.wait(), LoopStopped);
  EXPECT_FALSE(started) << "the stop ended the wait before the loop ran anything";
  EXPECT_EQ(result.wait(), 1) << "the stop was consumed; the work went on at the next call";
  runner_.reactor().stop();
  EXPECT_THROW(runner_.run(answer()), LoopStopped);
  expect_runner_works_normally(runner_);
}

TEST_P(BlockingRunnerTest, StopDuringAWaitEndsItAndTheWorkGoesOn) {
  auto slow = []() -> Task<int> {
    co_await sleep(30ms);
    co_return 7;
  };
  EventualResult<int> result = runner_.submit(slow());
  std::thread other([this] {
    std::this_thread::sleep_for(5ms);
    runner_.reactor().stop();
  });
  EXPECT_THROW(result.wait(), LoopStopped);
  other.join();
  EXPECT_FALSE(result.ready()) << "a stop does not cancel what wait() waits for";
  EXPECT_EQ(result.wait(10s), 7);
  expect_runner_works_normally(runner_);
}

TEST_P(BlockingRunnerTest, StopInTheTurnTheTaskFinishesIsConsumedAndTheValueReturned) {
  auto stops_and_returns = []() -> Task<int> {
    Reactor::current()->stop();
    co_return 5;
  };
  EXPECT_EQ(runner_.run(stops_and_returns()), 5);
  expect_runner_works_normally(runner_);
}

TEST_P(BlockingRunnerTest, StopsInEveryCallNeverMakeTheLoopSpin) {
  // The defect this guards against: each stop() left pending made run_once() poll without
  // blocking, so every later call burned a core for as long as it waited.
  for (int i = 0; i < 3; ++i) {
    auto stops_then_sleeps = []() -> Task<int> {
      Reactor::current()->stop();
      co_await sleep(1h);
      co_return 0;
    };
    EXPECT_THROW(runner_.run(stops_then_sleeps()), LoopStopped);
  }
  expect_runner_works_normally(runner_);
}

// A task that stops the loop, then sleeps until cancelled; its cleanup stops the loop again and
// takes `cleanup` (shielded) before it records that it ran. `frames` counts its live frames.
Task<int> stops_twice(Duration cleanup, std::shared_ptr<bool> cleaned_up,
                      std::shared_ptr<int> frames) {
  ++*frames;
  struct Leaving {
    std::shared_ptr<int> frames;
    ~Leaving() { --*frames; }
  } leaving{frames};
  Reactor::current()->stop();
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    Reactor::current()->stop();  // a second stop, during the cleanup run() waits for
  }
  co_await shield(nap(cleanup));
  *cleaned_up = true;
  throw Cancelled();
}

TEST_P(BlockingRunnerTest, ASecondStopDuringTheCleanupEndsRunAndTheCleanupEndsDuringALaterCall) {
  auto cleaned_up = std::make_shared<bool>(false);
  auto frames = std::make_shared<int>(0);
  std::vector<std::string> errors;
  runner_.reactor().set_error_handler(
      [&errors](std::exception_ptr error, std::string_view) { errors.push_back(what_of(error)); });
  EXPECT_THROW(runner_.run(stops_twice(30ms, cleaned_up, frames)), LoopStopped);
  EXPECT_FALSE(*cleaned_up) << "the second stop ended run() before the cleanup's end";
  EXPECT_EQ(*frames, 1);
  EXPECT_EQ(runner_.reactor().counts().tasks, 1u) << "the task was left in its loop";
  runner_.run(nap(200ms));
  EXPECT_TRUE(*cleaned_up) << "the cleanup went on during the next call";
  EXPECT_EQ(*frames, 0);
  EXPECT_EQ(runner_.reactor().counts().tasks, 0u);
  EXPECT_THAT(errors, ::testing::IsEmpty()) << "run() cancelled it: its Cancelled is nobody's news";
  expect_runner_works_normally(runner_);
}

TEST_P(BlockingRunnerTest, ATaskLeftByRunIsFreedWithTheRunnerWhateverItsState) {
  for (const Duration cleanup : {Duration(20ms), Duration(1h)}) {
    auto cleaned_up = std::make_shared<bool>(false);
    auto frames = std::make_shared<int>(0);
    {
      BlockingRunner runner(make_reactor(GetParam()), /*shutdown_timeout=*/10ms);
      EXPECT_THROW(runner.run(stops_twice(cleanup, cleaned_up, frames)), LoopStopped);
      EXPECT_EQ(*frames, 1);
    }
    EXPECT_EQ(*frames, 0) << "destroying the runner destroyed the task's frame (ASan: its block)";
  }
}

// ---- A failed native step ----

TEST_P(BlockingRunnerTest, FailedNativeStepPropagatesAndLeavesTheRunnerUsable) {
  auto failures = std::make_shared<testing::Failures>();
  BlockingRunner runner(testing::make_failing_reactor(GetParam(), failures));
  auto slow = []() -> Task<int> {
    co_await sleep(5ms);
    co_return 3;
  };
  failures->left = 1;
  EXPECT_THROW(runner.run(slow(), 10s), std::runtime_error);
  EXPECT_EQ(failures->thrown.load(), 1);
  // The failed call left nothing of its own behind (its deadline alarm is gone); the task it
  // started is still in the loop and finishes during the next call.
  EXPECT_EQ(runner.run(slow(), 10s), 3);
  runner.run(nap(10ms));
  const Reactor::Counts counts = runner.reactor().counts();
  EXPECT_EQ(counts.tasks, 0u);
  EXPECT_EQ(counts.timers, 0u);
  expect_runner_works_normally(runner);
}

TEST_P(BlockingRunnerTest, AFailureOfATaskThatRunLeftOnAFailedStepGoesToTheErrorHandler) {
  auto failures = std::make_shared<testing::Failures>();
  BlockingRunner runner(testing::make_failing_reactor(GetParam(), failures));
  std::vector<std::string> errors;
  runner.reactor().set_error_handler([&errors](std::exception_ptr error, std::string_view where) {
    errors.push_back(std::string(where) + ": " + what_of(error));
  });
  auto fails_late = []() -> Task<int> {
    co_await sleep(5ms);
    throw std::logic_error("late failure");
  };
  failures->left = 1;
  EXPECT_THROW(runner.run(fails_late(), 10s), std::runtime_error);
  runner.run(nap(50ms));
  EXPECT_THAT(errors, ::testing::ElementsAre(::testing::HasSubstr("late failure")))
      << "run() did not cancel the task it left on a failed step, so its failure is news";
  EXPECT_EQ(runner.reactor().counts().tasks, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BlockingRunnerTest,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
