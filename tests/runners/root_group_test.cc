// The runner-side root group on a bare reactor, on every backend: background work keeps its
// starter's context, its errors are reported with its name, and close() cancels and awaits
// all of it.
#include "weft/runners/root_group.h"

#include <string>
#include <vector>

#include "weft/core/context.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"

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

INSTANTIATE_TEST_SUITE_P(AllBackends, RootGroupTest, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
