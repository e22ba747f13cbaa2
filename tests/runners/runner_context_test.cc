// Context variables and cancellation through runners, on every runner and backend: what
// Runner::run/submit carry from the calling thread, and what they must not leak.
#include "weft/core/context.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/testing/runners.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/task_group.h"
#include "weft/runners/runner.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using RunnerContext = testing::RunnerTest;

ContextVar<std::string> g_request("request");

std::string request() { return g_request.value_or("<none>"); }

Task<std::string> read_request() {
  co_await sleep(1ms);
  co_return request();
}

TEST_P(RunnerContext, RunCarriesTheCallingThreadsContextIntoTheTask) {
  auto token = g_request.set("request 1");
  EXPECT_EQ(runner().run(read_request()), "request 1");
  EXPECT_EQ(runner().submit(read_request()).wait(), "request 1");
  g_request.reset(std::move(token));
  EXPECT_EQ(runner().run(read_request()), "<none>");
}

TEST_P(RunnerContext, ContextDoesNotLeakBetweenTwoRunnerCallsOnTheSameThread) {
  auto setter = []() -> Task<std::string> {
    g_request.set("set inside call 1");
    co_await sleep(1ms);
    co_return request();
  };
  EXPECT_EQ(runner().run(setter()), "set inside call 1");
  EXPECT_EQ(runner().run(read_request()), "<none>") << "call 1's set stayed in call 1's task";
  EXPECT_EQ(request(), "<none>") << "nor did it reach the calling thread";
}

TEST_P(RunnerContext, BackgroundWorkKeepsTheContextOfTheCallThatStartedIt) {
  auto start = []() -> Task<Deferred<std::string>> {
    co_return spawn(*Reactor::current(), read_request());
  };
  Deferred<std::string> background;
  {
    auto token = g_request.set("cell 1");
    background = runner().run(start());
    g_request.reset(std::move(token));
  }
  auto token = g_request.set("cell 2");
  auto collect = [](Deferred<std::string> d) -> Task<std::string> { co_return co_await d; };
  EXPECT_EQ(runner().run(collect(background)), "cell 1");
  g_request.reset(std::move(token));
}

TEST_P(RunnerContext, RunTimeoutCancelsATaskGroupAndEveryChild) {
  auto group = []() -> Task<void> {
    co_await open_task_group([](TaskGroup& group) -> Task<void> {
      group.start_soon([]() -> Task<void> { co_await sleep(1h); }());
      group.start_soon([]() -> Task<void> { co_await sleep(1h); }());
      co_await sleep(1h);
    });
  };
  EXPECT_THROW(runner().run(group(), 10ms), TimeoutError);
  EXPECT_EQ(runner().run(read_request()), "<none>") << "the runner still serves";
}

TEST_P(RunnerContext, MoveOnAfterUnderARunner) {
  auto task = []() -> Task<bool> {
    co_return co_await move_on_after(2ms, []() -> Task<void> { co_await sleep(1h); }());
  };
  EXPECT_FALSE(runner().run(task()));
}

INSTANTIATE_TEST_SUITE_P(AllRunners, RunnerContext,
                         ::testing::ValuesIn(testing::runner_and_backend_names()),
                         testing::runner_param_name);

}  // namespace
}  // namespace weft
