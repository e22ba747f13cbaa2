// The runner-side root group on a bare reactor, on every backend: background work keeps its
// starter's context, its errors are reported with its name, and close() cancels and awaits
// all of it.
#include "weft/runners/root_group.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/context.h"
#include "weft/core/detail/exception_text.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using Log = std::vector<std::string>;
using RootGroupTest = testing::ReactorTest;

ContextVar<std::string> g_cell("cell");

Task<void> ticker(Log* log) {
  try {
    for (;;) {
      co_await sleep(1ms);
      log->push_back("[" + g_cell.value_or("?") + "] tick");
    }
  } catch (const Cancelled&) {
    log->push_back("ticker stopped");
    throw;
  }
}

Task<void> fails_soon() {
  co_await sleep(1ms);
  throw std::runtime_error("disk full");
}

TEST_P(RootGroupTest, BackgroundWorkKeepsItsStartersContextAndCloseCancelsIt) {
  Log log;
  auto group = std::make_unique<RootGroup>(reactor());
  auto cell = [](Log* log) -> Task<void> {
    g_cell.set("cell 1");
    start_background("ticker", ticker(log));
    co_return;
  };
  Deferred<void> first = spawn(reactor(), cell(&log));
  ASSERT_TRUE(run_until([&] { return log.size() >= 2; }));
  EXPECT_EQ(group->size(), 1u);
  group->close();
  ASSERT_TRUE(run_until([&] { return group->closed(); }));
  EXPECT_EQ(log.front(), "[cell 1] tick");
  EXPECT_EQ(log.back(), "ticker stopped");
  group.reset();
  first.check();
}

TEST_P(RootGroupTest, AFailureIsReportedWithTheWorksNameAndSpareTheSiblings) {
  Log log;
  std::string reported;
  reactor().set_error_handler([&](std::exception_ptr error, std::string_view where) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      reported = std::string(where) + ": " + e.what();
    }
  });
  auto group = std::make_unique<RootGroup>(reactor());
  group->start_soon("disk writer", fails_soon());
  group->start_soon("ticker", ticker(&log));
  ASSERT_TRUE(run_until([&] { return !reported.empty() && log.size() >= 3; }));
  EXPECT_EQ(reported, "background work 'disk writer': disk full");
  group->close();
  ASSERT_TRUE(run_until([&] { return group->closed(); }));
  EXPECT_THROW(group->start_soon("late", ticker(&log)), UsageError);
  group.reset();
}

TEST_P(RootGroupTest, StartBackgroundWithoutARootGroupIsAUsageError) {
  auto task = []() -> Task<void> {
    start_background("x", []() -> Task<void> { co_return; }());
    co_return;
  };
  Deferred<void> result = spawn(reactor(), task());
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), UsageError);
}

TEST_P(RootGroupTest, NothingStartedMeansNoTaskAndClosedAtOnce) {
  auto group = std::make_unique<RootGroup>(reactor());
  EXPECT_EQ(RootGroup::of(reactor()), group.get());
  EXPECT_TRUE(group->closed());
  EXPECT_FALSE(group->ever_started());
  EXPECT_EQ(reactor().counts().tasks, 0u) << "the root task starts with the first work";
  EXPECT_EQ(reactor().counts().ready, 0u);
  group.reset();
  EXPECT_EQ(RootGroup::of(reactor()), nullptr);
}

TEST_P(RootGroupTest, WorkStartedBeforeTheRootTaskRunsKeepsItsStartersContext) {
  Log log;
  auto group = std::make_unique<RootGroup>(reactor());
  Context::root().run([&] {
    g_cell.set("cell 1");
    group->start_soon("ticker 1", ticker(&log));
  });
  Context::root().run([&] {
    g_cell.set("cell 2");
    group->start_soon("ticker 2", ticker(&log));
  });
  EXPECT_THAT(group->unfinished(), ElementsAre("ticker 1", "ticker 2"));
  ASSERT_TRUE(run_until([&] { return log.size() >= 4; }));
  group->close();
  ASSERT_TRUE(run_until([&] { return group->closed(); }));
  EXPECT_TRUE(group->unfinished().empty());
  std::sort(log.begin(), log.end());
  EXPECT_TRUE(std::binary_search(log.begin(), log.end(), "[cell 1] tick"));
  EXPECT_TRUE(std::binary_search(log.begin(), log.end(), "[cell 2] tick"));
  EXPECT_FALSE(std::binary_search(log.begin(), log.end(), "[?] tick"));
  group.reset();
}

TEST_P(RootGroupTest, CloseBeforeTheRootTaskRunsDropsTheWaitingWork) {
  Log log;
  auto group = std::make_unique<RootGroup>(reactor());
  group->start_soon("ticker", ticker(&log));
  EXPECT_EQ(group->size(), 1u);
  group->close();
  EXPECT_EQ(group->size(), 0u) << "the waiting work's frame is gone, and its name";
  ASSERT_TRUE(run_until([&] { return group->closed(); }));
  EXPECT_TRUE(log.empty()) << "it never ran";
  group.reset();
}

TEST_P(RootGroupTest, ShutDownWaitsForTheCleanupAndReportsWhatIsStuck) {
  std::vector<std::string> reported;
  reactor().set_error_handler([&](std::exception_ptr error, std::string_view where) {
    reported.push_back(std::string(where) + ": " + detail::what_of(error));
  });
  bool quick_cleaned = false;
  int started = 0;
  auto sleeper = [](int* started, bool* cleaned, Duration cleanup) -> Task<void> {
    ++*started;
    bool cancelled = false;
    try {
      co_await sleep(1h);
    } catch (const Cancelled&) {
      cancelled = true;  // no co_await in a handler: the cleanup follows it
    }
    if (cancelled) {
      co_await shield([](Duration d) -> Task<void> { co_await sleep(d); }(cleanup));
      if (cleaned != nullptr) *cleaned = true;
      throw Cancelled();
    }
  };
  auto group = std::make_unique<RootGroup>(reactor());
  group->start_soon("quick", sleeper(&started, &quick_cleaned, 5ms));
  group->start_soon("stuck", sleeper(&started, nullptr, 1h));
  ASSERT_TRUE(run_until([&] { return started == 2; }));
  EXPECT_FALSE(group->shut_down(30ms, "test"));
  EXPECT_TRUE(quick_cleaned);
  EXPECT_THAT(group->unfinished(), ElementsAre("stuck"));
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0],
            "shutting down the test runner: weft: 1 piece of background work did not finish "
            "within 30 ms of the runner's shutdown cancelling it: 'stuck'");
  group.reset();
  allow_pending();  // the stuck work is destroyed with the reactor, as a runner's would be
}

TEST_P(RootGroupTest, DestroyingTheGroupLetsTheCancelledWorkWindDownInTheReactor) {
  // The host runner's case: the reactor outlives the group and keeps running.
  Log log;
  auto group = std::make_unique<RootGroup>(reactor());
  group->start_soon("ticker", ticker(&log));
  ASSERT_TRUE(run_until([&] { return !log.empty(); }));
  group.reset();
  ASSERT_TRUE(run_until([&] { return log.back() == "ticker stopped"; }));
  ASSERT_TRUE(run_until([&] { return reactor().counts().tasks == 0; }));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, RootGroupTest, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
