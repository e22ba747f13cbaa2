// What only the blocking runner promises: the loop runs during calls and pauses
// between them.
#include "runners/blocking_runner.h"

#include <string>
#include <vector>

#include "core/backend_registry.h"
#include "core/errors.h"
#include "core/sleep.h"
#include "core/spawn.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"

namespace weft {
namespace {

using namespace std::chrono_literals;

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

INSTANTIATE_TEST_SUITE_P(AllBackends, BlockingRunnerTest,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
