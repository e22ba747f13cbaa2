// Background work and the runner's root group, on every runner and backend: work started
// with start_background() outlives the call that started it, keeps that call's context,
// reports its failure by name, and is cancelled and awaited (bounded) when the runner shuts
// down, with what did not finish reported by name.
#include "weft/runners/root_group.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "tests/testing/host_loop.h"
#include "tests/testing/runners.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/context.h"
#include "weft/core/detail/exception_text.h"
#include "weft/core/sleep.h"
#include "weft/runners/host_runner.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::Each;
using ::testing::HasSubstr;
using RunnerBackground = testing::RunnerTest;

ContextVar<std::string> g_cell("cell");

// What background work and the reactor's error handler record; shared, because the work
// and the handler may outlive the test's locals (the host's reactor outlives the runner).
struct Record {
  std::mutex mu;
  std::vector<std::string> lines;
  std::vector<std::string> reports;
  std::atomic<int> ticks{0};
  std::atomic<int> started{0};
  std::atomic<int> cleanups{0};

  void line(std::string text) {
    std::lock_guard lock(mu);
    lines.push_back(std::move(text));
  }
  std::vector<std::string> lines_copy() {
    std::lock_guard lock(mu);
    return lines;
  }
  std::vector<std::string> reports_copy() {
    std::lock_guard lock(mu);
    return reports;
  }
};

// Installs an error handler on the runner's reactor (loop thread) that records each report.
Task<void> record_reports(std::shared_ptr<Record> record) {
  Reactor::current()->set_error_handler([record](std::exception_ptr error, std::string_view where) {
    std::lock_guard lock(record->mu);
    record->reports.push_back(std::string(where) + ": " + detail::what_of(error));
  });
  co_return;
}

// Awaits until `done()` or `limit`; true if done. Under the blocking runner, this is what
// lets background work run.
Task<bool> wait_until(std::function<bool()> done, Duration limit = 20s) {
  const TimePoint deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) co_return false;
    co_await sleep(1ms);
  }
  co_return true;
}

// Ticks every millisecond, recording the cell it belongs to, until cancelled.
Task<void> ticker(std::shared_ptr<Record> record) {
  for (;;) {
    co_await sleep(1ms);
    record->line("[" + g_cell.value_or("no cell") + "] tick");
    ++record->ticks;
  }
}

Task<void> start(std::string name, std::shared_ptr<Record> record) {
  start_background(std::move(name), ticker(std::move(record)));
  co_return;
}

Task<void> fails_soon() {
  co_await sleep(1ms);
  throw std::runtime_error("disk full");
}

// Sleeps until cancelled, then cleans up by awaiting `cleanup` in a shield.
Task<void> nap(Duration d) { co_await sleep(d); }

Task<void> sleeper_with_cleanup(std::shared_ptr<Record> record, Duration cleanup) {
  ++record->started;
  bool cancelled = false;
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    cancelled = true;  // no co_await in a handler: the cleanup follows it
  }
  if (cancelled) {
    co_await shield(nap(cleanup));
    ++record->cleanups;
    throw Cancelled();
  }
}

// Remakes the runner under test with `options` (the backend and the host filled in).
void remake(testing::RunnerTest& test, std::unique_ptr<Runner>& runner,
            std::unique_ptr<testing::HostLoopThread>& host, RunnerOptions options) {
  const auto& [runner_name, backend] = test.GetParam();
  options.backend = backend;
  if (host != nullptr) {
    options.host = &host->reactor();
    options.host_thread = host->thread_id();
  }
  runner.reset();
  runner = make_runner(runner_name, options);
}

TEST_P(RunnerBackground, WorkOutlivesTheCallThatStartedItAndGoesOnInLaterCalls) {
  auto record = std::make_shared<Record>();
  runner().run(start("ticker", record));
  // Under the blocking runner the ticker runs only during calls: this one.
  const int now = record->ticks;
  EXPECT_TRUE(runner().run(wait_until([&] { return record->ticks >= now + 3; })));
}

TEST_P(RunnerBackground, WorkKeepsTheContextOfTheCallThatStartedIt) {
  auto record = std::make_shared<Record>();
  Context::root().run([&] {
    g_cell.set("cell 1");
    runner().run(start("ticker", record));
  });
  Context::root().run([&] {
    g_cell.set("cell 2");
    auto cell_2 = [](std::shared_ptr<Record> record) -> Task<void> {
      const int now = record->ticks;
      co_await wait_until([&] { return record->ticks >= now + 3; });
      record->line("[" + g_cell.value_or("no cell") + "] cell 2 done");
    };
    runner().run(cell_2(record));
  });
  std::vector<std::string> lines = record->lines_copy();
  EXPECT_EQ(std::erase(lines, "[cell 2] cell 2 done"), 1u);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_THAT(lines, Each(std::string("[cell 1] tick")))
      << "the ticker's lines printed while cell 2 ran still name cell 1";
}

TEST_P(RunnerBackground, WorkStartedInARootContextCarriesNothing) {
  auto record = std::make_shared<Record>();
  auto starts_clean = [](std::shared_ptr<Record> record) -> Task<void> {
    g_cell.set("cell 1");
    Context::root().run([&] { start_background("service", ticker(record)); });
    co_return;
  };
  runner().run(starts_clean(record));
  EXPECT_TRUE(runner().run(wait_until([&] { return record->ticks >= 2; })));
  EXPECT_THAT(record->lines_copy(), Each(std::string("[no cell] tick")));
}

TEST_P(RunnerBackground, AFailureIsReportedWithTheWorksNameAndTheSiblingsGoOn) {
  auto record = std::make_shared<Record>();
  runner().run(record_reports(record));
  auto starts_both = [](std::shared_ptr<Record> record) -> Task<void> {
    start_background("ticker", ticker(record));
    start_background("disk writer", fails_soon());
    co_return;
  };
  runner().run(starts_both(record));
  ASSERT_TRUE(runner().run(wait_until([&] { return !record->reports_copy().empty(); })));
  const int after_failure = record->ticks;
  EXPECT_TRUE(runner().run(wait_until([&] { return record->ticks >= after_failure + 3; })))
      << "a failure in background work does not cancel the rest";
  EXPECT_THAT(record->reports_copy(),
              ::testing::ElementsAre("background work 'disk writer': disk full"));
}

TEST_P(RunnerBackground, ShutdownCancelsTheWorkAndWaitsForItsCleanup) {
  auto record = std::make_shared<Record>();
  auto starts = [](std::shared_ptr<Record> record) -> Task<void> {
    for (int i = 0; i < 3; ++i) {
      start_background("sleeper " + std::to_string(i), sleeper_with_cleanup(record, 20ms));
    }
    co_return;
  };
  runner().run(record_reports(record));
  runner().run(starts(record));
  ASSERT_TRUE(runner().run(wait_until([&] { return record->started == 3; })));
  const TimePoint before = Clock::now();
  runner_.reset();
  EXPECT_EQ(record->cleanups, 3) << "every cleanup ran before the runner was gone";
  EXPECT_GE(Clock::now() - before, 20ms) << "the shielded cleanups took 20 ms";
  EXPECT_THAT(record->reports_copy(), ::testing::IsEmpty());
}

TEST_P(RunnerBackground, ShutdownIsBoundedAndReportsWhatDidNotFinishByName) {
  remake(*this, runner_, host_, RunnerOptions{.shutdown_timeout = 50ms});
  auto record = std::make_shared<Record>();
  auto starts = [](std::shared_ptr<Record> record) -> Task<void> {
    start_background("quick", sleeper_with_cleanup(record, 0ms));
    start_background("stuck", sleeper_with_cleanup(record, 1h));
    co_return;
  };
  runner().run(record_reports(record));
  runner().run(starts(record));
  ASSERT_TRUE(runner().run(wait_until([&] { return record->started == 2; })));
  const TimePoint before = Clock::now();
  runner_.reset();
  const Duration took = Clock::now() - before;
  EXPECT_GE(took, 50ms) << "the runner waited for its bound";
  EXPECT_LT(took, 1h) << "and no longer";
  // The host runner's report comes from the host's loop, at the bound.
  const TimePoint limit = Clock::now() + 20s;
  while (record->reports_copy().empty() && Clock::now() < limit) std::this_thread::sleep_for(1ms);
  const std::vector<std::string> reports = record->reports_copy();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_THAT(reports[0], HasSubstr("shutting down the " + std::get<0>(GetParam()) + " runner"));
  EXPECT_THAT(reports[0], HasSubstr("1 piece of background work did not finish within 50 ms"));
  EXPECT_THAT(reports[0], HasSubstr("'stuck'"));
  EXPECT_THAT(reports[0], ::testing::Not(HasSubstr("'quick'")));
  EXPECT_EQ(record->cleanups, 1) << "the quick one cleaned up";
}

TEST_P(RunnerBackground, NoBackgroundWorkMeansNoWaitAtShutdown) {
  remake(*this, runner_, host_, RunnerOptions{.shutdown_timeout = 1h});
  EXPECT_EQ(runner().run([]() -> Task<int> { co_return 1; }()), 1);
  runner_.reset();  // would hang for an hour if it waited for nothing
}

TEST_P(RunnerBackground, StartBackgroundRefusesNewWorkOnceTheGroupIsClosing) {
  // The work itself, cancelled at shutdown, tries to start more in its cleanup.
  auto record = std::make_shared<Record>();
  auto restarts = [](std::shared_ptr<Record> record) -> Task<void> {
    ++record->started;
    try {
      co_await sleep(1h);
    } catch (const Cancelled&) {
      try {
        start_background("too late", ticker(record));
      } catch (const UsageError& e) {
        record->line(e.what());
      }
      throw;
    }
  };
  auto starts = [restarts](std::shared_ptr<Record> record) -> Task<void> {
    start_background("restarter", restarts(record));
    co_return;
  };
  runner().run(starts(record));
  ASSERT_TRUE(runner().run(wait_until([&] { return record->started == 1; })));
  runner_.reset();
  // UsageError: the group is closing (or, for the host runner, already gone).
  EXPECT_THAT(record->lines_copy(), ::testing::ElementsAre(HasSubstr("'too late'")));
}

TEST_P(RunnerBackground, ThousandPiecesOfWorkAreAllCancelledAndCleanedUp) {
  auto record = std::make_shared<Record>();
  auto starts = [](std::shared_ptr<Record> record) -> Task<void> {
    for (int i = 0; i < 1000; ++i) {
      start_background("sleeper", sleeper_with_cleanup(record, 0ms));
    }
    co_return;
  };
  runner().run(starts(record));
  ASSERT_TRUE(runner().run(wait_until([&] { return record->started == 1000; })));
  runner_.reset();
  EXPECT_EQ(record->cleanups, 1000);
}

INSTANTIATE_TEST_SUITE_P(AllRunners, RunnerBackground,
                         ::testing::ValuesIn(testing::runner_and_backend_names()),
                         testing::runner_param_name);

// ---- What only the host runner does: destroyed on the host's own thread ----

using HostRunnerBackground = ::testing::TestWithParam<std::string>;

TEST_P(HostRunnerBackground, DestroyedOnTheHostsThreadItCancelsAndTheCleanupRunsInTheHostLoop) {
  testing::HostLoopThread host(GetParam());
  auto record = std::make_shared<Record>();
  auto runner = std::make_unique<HostRunner>(host.reactor(), host.thread_id(), 5s);
  auto starts = [](std::shared_ptr<Record> record) -> Task<void> {
    start_background("sleeper", sleeper_with_cleanup(record, 10ms));
    co_return;
  };
  runner->run(starts(record));
  ASSERT_TRUE(runner->run(wait_until([&] { return record->started == 1; })));
  std::atomic<bool> destroyed{false};
  // The host's thread cannot wait for the cleanup (its loop must run it): the destructor
  // returns at once, and the cleanup finishes in the host's loop afterwards.
  host.reactor().call_from_thread([&] {
    runner.reset();
    record->line(record->cleanups == 0 ? "destroyed before the cleanup" : "cleanup first");
    destroyed = true;
  });
  const TimePoint limit = Clock::now() + 20s;
  while ((!destroyed || record->cleanups == 0) && Clock::now() < limit) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(record->cleanups, 1);
  EXPECT_THAT(record->lines_copy(), ::testing::ElementsAre("destroyed before the cleanup"));
  // ThreadSanitizer cannot see the eventfd through which ~HostLoopThread stops the host, so
  // the host's thread takes a lock this thread releases after its last wake-up of the host's
  // reactor: that wake-up is then seen to happen before the reactor's destruction.
  std::mutex handoff_mu;
  std::condition_variable handoff_cv;
  bool handed = false;
  bool taken = false;
  host.reactor().call_from_thread([&] {
    std::unique_lock lock(handoff_mu);
    handoff_cv.wait(lock, [&] { return handed; });
    taken = true;
    handoff_cv.notify_all();
  });
  std::unique_lock lock(handoff_mu);
  handed = true;
  handoff_cv.notify_all();
  handoff_cv.wait(lock, [&] { return taken; });
}

INSTANTIATE_TEST_SUITE_P(AllBackends, HostRunnerBackground,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
