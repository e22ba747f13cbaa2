// when_all / when_any on a real reactor: written once, run on every backend. Ports what
// asyncio's gather/wait tests and corral's allOf/anyOf tests check.
#include "weft/core/when_all.h"

#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
using Log = std::vector<std::string>;

class WhenAllTest : public testing::ReactorTest {
 protected:
  template <typename T>
  Deferred<T> finish(Task<T> task) {
    Deferred<T> result = spawn(reactor(), std::move(task));
    run_until([&] { return result.called(); });
    return result;
  }
};

Task<int> value_after(Duration delay, int value) {
  co_await sleep(delay);
  co_return value;
}

Task<std::string> text_after(Duration delay, std::string text) {
  co_await sleep(delay);
  co_return text;
}

Task<void> log_after(Duration delay, Log* log, std::string what) {
  co_await sleep(delay);
  log->push_back(std::move(what));
}

Task<int> fail_after_delay(Duration delay) {
  co_await sleep(delay);
  throw std::runtime_error("failed");
}

// How many sleep_until_cancelled tasks are asleep now.
int asleep = 0;

Task<int> sleep_until_cancelled(Log* log, std::string name) {
  ++asleep;
  struct Awake {
    ~Awake() { --asleep; }
  } awake;
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    log->push_back(name + " cancelled");
    throw;
  }
  co_return 0;
}

TEST_P(WhenAllTest, WhenAllReturnsEveryResultInArgumentOrder) {
  Log log;
  auto task = [](Log* log) -> Task<std::string> {
    auto [a, b, c] = co_await when_all(value_after(3ms, 1), text_after(1ms, "two"),
                                       log_after(2ms, log, "void ran"));
    static_assert(std::is_same_v<decltype(c), std::monostate>);
    co_return std::to_string(a) + " " + b;
  };
  EXPECT_EQ(finish(task(&log)).value(), "1 two");
  EXPECT_THAT(log, ElementsAre("void ran"));
}

TEST_P(WhenAllTest, WhenAllOverAVector) {
  auto task = []() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(value_after(std::chrono::milliseconds(5 - i), i));
    co_return co_await when_all(std::move(tasks));
  };
  EXPECT_THAT(finish(task()).value(), ElementsAre(0, 1, 2, 3, 4));
}

TEST_P(WhenAllTest, WhenAllOfNothingReturnsAtOnce) {
  auto task = []() -> Task<std::size_t> {
    co_return (co_await when_all(std::vector<Task<int>>())).size();
  };
  EXPECT_EQ(finish(task()).value(), 0u);
}

TEST_P(WhenAllTest, WhenAllCancelsTheRestOnTheFirstFailure) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    co_await when_all(sleep_until_cancelled(log, "a"), fail_after_delay(1ms),
                      sleep_until_cancelled(log, "b"));
  };
  Deferred<void> result = finish(task(&log));
  EXPECT_THROW(result.check(), std::runtime_error);
  EXPECT_THAT(log, UnorderedElementsAre("a cancelled", "b cancelled"));
}

TEST_P(WhenAllTest, CancellingTheAwaitingTaskCancelsEveryTask) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    co_await when_all(sleep_until_cancelled(log, "a"), sleep_until_cancelled(log, "b"));
  };
  Deferred<void> result = spawn(reactor(), task(&log));
  // Cancelled once both are asleep (a fixed delay can pass before they start on a slow machine,
  // and a task cancelled before it starts has no await to be woken at).
  ASSERT_TRUE(run_until([&] { return asleep == 2; }));
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), Cancelled);
  EXPECT_THAT(log, UnorderedElementsAre("a cancelled", "b cancelled"));
}

TEST_P(WhenAllTest, WhenAllOfAThousandTasks) {
  auto task = []() -> Task<long> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 1000; ++i) tasks.push_back(value_after(0ms, i));
    long total = 0;
    for (int v : co_await when_all(std::move(tasks))) total += v;
    co_return total;
  };
  EXPECT_EQ(finish(task()).value(), 999 * 1000 / 2);
}

TEST_P(WhenAllTest, WhenAnyReturnsTheFirstToFinishAndCancelsTheOthers) {
  Log log;
  auto task = [](Log* log) -> Task<std::string> {
    auto first = co_await when_any(sleep_until_cancelled(log, "slow"), text_after(1ms, "fast"));
    co_return first.index() == 1 ? std::get<1>(first) : "wrong winner";
  };
  EXPECT_EQ(finish(task(&log)).value(), "fast");
  EXPECT_THAT(log, ElementsAre("slow cancelled"));
}

Task<int> loser_cleaning_up(Log* log) {
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    log->push_back("loser cancelled");
  }
  co_await shield(log_after(3ms, log, "loser cleaned up"));
  co_return -1;
}

TEST_P(WhenAllTest, WhenAnyWaitsForTheLoserToCleanUpByAwaiting) {
  Log log;
  auto task = [](Log* log) -> Task<int> {
    AnyResult<int> first = co_await when_any([](Log* log) {
      std::vector<Task<int>> tasks;
      tasks.push_back(loser_cleaning_up(log));
      tasks.push_back(value_after(1ms, 7));
      return tasks;
    }(log));
    log->push_back("when_any returned");
    co_return static_cast<int>(first.index) * 100 + first.value;
  };
  EXPECT_EQ(finish(task(&log)).value(), 107);
  EXPECT_THAT(log, ElementsAre("loser cancelled", "loser cleaned up", "when_any returned"));
}

TEST_P(WhenAllTest, WhenAnyRethrowsTheFirstToFinishIfItFailed) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    co_await when_any(sleep_until_cancelled(log, "other"), fail_after_delay(1ms));
  };
  Deferred<void> result = finish(task(&log));
  EXPECT_THROW(result.check(), std::runtime_error);
  EXPECT_THAT(log, ElementsAre("other cancelled"));
}

TEST_P(WhenAllTest, WhenAnyOfAnEmptyVectorIsAnError) {
  auto task = []() -> Task<void> { co_await when_any(std::vector<Task<int>>()); };
  EXPECT_THROW(finish(task()).check(), std::invalid_argument);
}

TEST_P(WhenAllTest, WhenAnyInsideADeadline) {
  Log log;
  auto task = [](Log* log) -> Task<bool> {
    auto race = [](Log* log) -> Task<void> {
      co_await when_any(sleep_until_cancelled(log, "a"), sleep_until_cancelled(log, "b"));
    };
    co_return co_await move_on_after(1ms, race(log));
  };
  EXPECT_FALSE(finish(task(&log)).value());
  EXPECT_THAT(log, UnorderedElementsAre("a cancelled", "b cancelled"));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, WhenAllTest, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
