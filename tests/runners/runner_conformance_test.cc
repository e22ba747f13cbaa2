// The Runner conformance suite: what every runner promises, on every backend.
// Written once against runners/runner.h; instantiated over (registered runner x
// registered backend).
#include "runners/runner.h"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/backend_registry.h"
#include "core/errors.h"
#include "core/sleep.h"
#include "core/spawn.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runners/runner_registry.h"
#include "tests/testing/backends.h"
#include "tests/testing/runners.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using RunnerConformance = testing::RunnerTest;

Task<int> answer() { co_return 42; }

Task<int> slow_add(int a, int b, Duration delay) {
  co_await sleep(delay);
  co_return a + b;
}

// Sleeps for an hour; records on `cancelled` that a cancellation reached it, then rethrows.
Task<int> sleep_until_cancelled(std::shared_ptr<std::atomic<bool>> cancelled) {
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    cancelled->store(true);
    throw;
  }
  co_return 0;
}

Task<std::string> fails_after(Duration delay) {
  co_await sleep(delay);
  throw std::runtime_error("task failed");
}

TEST_P(RunnerConformance, RunReturnsTheTaskValue) { EXPECT_EQ(runner().run(answer()), 42); }

TEST_P(RunnerConformance, RunRethrowsTheTaskException) {
  try {
    runner().run(fails_after(1ms));
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "task failed");
  }
}

TEST_P(RunnerConformance, NestedAwaitsComplete) {
  auto outer = []() -> Task<int> {
    int total = 0;
    for (int i = 0; i < 5; ++i) total += co_await slow_add(i, 1, 1ms);
    co_return total;
  };
  EXPECT_EQ(runner().run(outer()), 15);
}

TEST_P(RunnerConformance, ManySequentialRunsOnOneRunner) {
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(runner().run(slow_add(i, 1, 0ms)), i + 1);
  }
}

TEST_P(RunnerConformance, SubmitReturnsAnEventualResult) {
  EventualResult<int> result = runner().submit(slow_add(2, 3, 2ms));
  EXPECT_EQ(result.wait(), 5);
  EXPECT_TRUE(result.ready());
  EXPECT_EQ(result.wait(), 5) << "a result can be collected again";
  EXPECT_EQ(result.original_failure(), nullptr);
}

TEST_P(RunnerConformance, OriginalFailureGivesTheException) {
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

TEST_P(RunnerConformance, RunTimeoutCancelsTheTaskAndItsCleanupRuns) {
  auto cleaned_up = std::make_shared<std::atomic<bool>>(false);
  EXPECT_THROW(runner().run(sleep_until_cancelled(cleaned_up), 20ms), TimeoutError);
  // The cleanup ran (the blocking runner before returning, others on their
  // loop).
  auto wait_for = [](std::shared_ptr<std::atomic<bool>> flag) -> Task<bool> {
    for (int i = 0; i < 5000 && !flag->load(); ++i) co_await sleep(1ms);
    co_return flag->load();
  };
  EXPECT_TRUE(runner().run(wait_for(cleaned_up)));
}

TEST_P(RunnerConformance, CancelOfASubmittedTaskIsObservedInsideIt) {
  auto observed = std::make_shared<std::atomic<bool>>(false);
  EventualResult<int> result = runner().submit(sleep_until_cancelled(observed));
  EXPECT_THROW(result.wait(5ms), TimeoutError);
  result.cancel();
  EXPECT_THROW(result.wait(), Cancelled);
  EXPECT_TRUE(observed->load());
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

INSTANTIATE_TEST_SUITE_P(AllRunnersAndBackends, RunnerConformance,
                         ::testing::ValuesIn(testing::runner_and_backend_names()),
                         testing::runner_param_name);

}  // namespace
}  // namespace weft
