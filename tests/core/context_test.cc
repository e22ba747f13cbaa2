// Context variables on a real reactor: written once, run on every backend. Ports what
// CPython's test_context.py and asyncio's context tests (test_tasks, test_events) check.
#include "weft/core/context.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/deferred.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/task_group.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using Log = std::vector<std::string>;

ContextVar<std::string> g_cell("cell");

std::string cell() { return g_cell.value_or("<none>"); }

class ContextTest : public testing::ReactorTest {
 protected:
  void TearDown() override {
    // Tests set the variable on this thread; leave the thread clean for the next one.
    detail::clear_root_context_slow();
    testing::ReactorTest::TearDown();
  }
  template <typename T>
  Deferred<T> finish(Task<T> task) {
    Deferred<T> result = spawn(reactor(), std::move(task));
    run_until([&] { return result.called(); });
    return result;
  }
};

Task<void> log_cell_after(Duration delay, Log* log, std::string who) {
  co_await sleep(delay);
  log->push_back(who + ": " + cell());
}

TEST(ContextVar, UnsetReadsNullAndSetThenResetRestores) {
  ContextVar<int> var("var");
  EXPECT_EQ(var.get(), nullptr);
  auto first = var.set(1);
  auto second = var.set(2);
  EXPECT_EQ(*var.get(), 2);
  var.reset(std::move(second));
  EXPECT_EQ(*var.get(), 1);
  var.reset(std::move(first));
  EXPECT_EQ(var.get(), nullptr);
  EXPECT_EQ(Context::current().size(), 0u);
}

TEST(ContextVar, ThreadsInheritNothing) {
  auto token = g_cell.set("main thread");
  std::string seen;
  std::thread([&] { seen = cell(); }).join();
  EXPECT_EQ(seen, "<none>");
  EXPECT_EQ(cell(), "main thread");
  g_cell.reset(std::move(token));
}

TEST(ContextVar, ContextRunInstallsASnapshotAndDropsItsChanges) {
  auto token = g_cell.set("a");
  Context snapshot = Context::current();
  g_cell.set("b");
  std::string inside = snapshot.run([] {
    std::string seen = cell();
    g_cell.set("changed inside");
    return seen;
  });
  EXPECT_EQ(inside, "a");
  EXPECT_EQ(cell(), "b");
  EXPECT_EQ(Context::root().run(cell), "<none>");
  g_cell.reset(std::move(token));
  EXPECT_EQ(cell(), "<none>");
}

TEST_P(ContextTest, SpawnCapturesTheStartersContextAndTheChildsSetsStayItsOwn) {
  Log log;
  auto child = [](Log* log) -> Task<void> {
    log->push_back("child sees " + cell());
    g_cell.set("set by child");
    co_await sleep(1ms);
    log->push_back("child still sees " + cell());
  };
  auto parent = [&child](Log* log) -> Task<void> {
    g_cell.set("parent");
    Deferred<void> d = spawn(*Reactor::current(), child(log));
    g_cell.set("parent, later");  // after spawn: the child keeps what it captured
    co_await d;
    log->push_back("parent sees " + cell());
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("child sees parent", "child still sees set by child",
                               "parent sees parent, later"));
  EXPECT_EQ(cell(), "<none>") << "nothing leaked to the thread";
}

TEST_P(ContextTest, AwaitedTaskSharesTheAwaitersContext) {
  auto inner = []() -> Task<void> {
    g_cell.set("set by inner");
    co_return;
  };
  auto outer = [&inner]() -> Task<std::string> {
    co_await inner();
    co_return cell();
  };
  EXPECT_EQ(finish(outer()).value(), "set by inner");
}

TEST_P(ContextTest, GroupChildrenCaptureTheStartersContext) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    g_cell.set("cell 1");
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(log_cell_after(1ms, log, "first child"));
      g_cell.set("cell 2");
      group.start_soon(log_cell_after(2ms, log, "second child"));
      co_return;
    });
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("first child: cell 1", "second child: cell 2"));
}

// A child started with TaskGroup::start() (start-and-wait-ready) captures the starter's
// context too, before and after it reports ready.
Task<void> report_cell_then_log(Started<std::string> started, Log* log) {
  started(cell());
  co_await sleep(1ms);
  log->push_back("after ready: " + cell());
}

TEST_P(ContextTest, ChildStartedWithStartCapturesTheStartersContext) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    auto body = [log](TaskGroup& group) -> Task<void> {
      g_cell.set("starter");
      const std::string reported = co_await group.start<std::string>(
          [log](Started<std::string> started) { return report_cell_then_log(started, log); });
      log->push_back("reported: " + reported);
    };
    co_await open_task_group(body);
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("reported: starter", "after ready: starter"));
}

TEST_P(ContextTest, CallbacksCaptureTheContextWhenScheduled) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    Reactor& reactor = *Reactor::current();
    g_cell.set("at call_soon");
    reactor.call_soon([log] { log->push_back("call_soon: " + cell()); });
    g_cell.set("at call_later");
    reactor.call_later(1ms, [log] { log->push_back("call_later: " + cell()); });
    g_cell.set("at call_at");
    reactor.call_at(reactor.now() + 2ms, [log] { log->push_back("call_at: " + cell()); });
    g_cell.set("after scheduling");
    co_await sleep(3ms);
  };
  finish(task(&log)).check();
  EXPECT_THAT(log, ElementsAre("call_soon: at call_soon", "call_later: at call_later",
                               "call_at: at call_at"));
}

TEST_P(ContextTest, RootContextCallbacksSeeNothingWhateverTheDrivingThreadHas) {
  auto token = g_cell.set("the thread driving the loop");
  std::string seen;
  Context::root().run([&] { reactor().call_soon([&] { seen = cell(); }); });
  ASSERT_TRUE(run_until([&] { return !seen.empty(); }));
  EXPECT_EQ(seen, "<none>");
  g_cell.reset(std::move(token));
}

TEST_P(ContextTest, SetInsideARootCallbackDoesNotLeakIntoTheNext) {
  Log log;
  Context::root().run([&] {
    reactor().call_soon([] { g_cell.set("leaked?"); });
    reactor().call_soon([&] { log.push_back(cell()); });
  });
  ASSERT_TRUE(run_until([&] { return !log.empty(); }));
  EXPECT_THAT(log, ElementsAre("<none>"));
}

TEST_P(ContextTest, WatchersCaptureTheContextWhenScheduled) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  std::string seen;
  Watch watch;
  {
    auto token = g_cell.set("watcher's cell");
    watch = reactor().watch_readable(fds[0], [&] { seen = cell(); });
    g_cell.reset(std::move(token));
  }
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  ASSERT_TRUE(run_until([&] { return !seen.empty(); }));
  EXPECT_EQ(seen, "watcher's cell");
  watch.cancel();
  close(fds[0]);
  close(fds[1]);
}

TEST_P(ContextTest, TaskResumedByAnotherContextsCallbackKeepsItsOwn) {
  Deferred<int> trigger;
  auto waiter = [](Deferred<int> d) -> Task<std::string> {
    g_cell.set("waiter");
    co_await d;
    co_return cell();
  };
  Deferred<std::string> result = spawn(reactor(), waiter(trigger));
  {
    auto token = g_cell.set("the firing callback");
    reactor().call_later(1ms, [&] { trigger.callback(1); });
    g_cell.reset(std::move(token));
  }
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), "waiter");
}

TEST_P(ContextTest, CallFromThreadCarriesTheCallingThreadsContext) {
  std::string seen;
  std::thread([&] {
    g_cell.set("from the other thread");
    reactor().call_from_thread([&] { seen = cell(); });
  }).join();
  ASSERT_TRUE(run_until([&] { return !seen.empty(); }));
  EXPECT_EQ(seen, "from the other thread");
}

TEST_P(ContextTest, RootContextRunStartsALongLivedTaskClean) {
  Log log;
  auto starter = [](Log* log) -> Task<void> {
    g_cell.set("cell 1");
    Deferred<void> pinned = spawn(*Reactor::current(), log_cell_after(0ms, log, "pinned"));
    Deferred<void> clean = Context::root().run(
        [&] { return spawn(*Reactor::current(), log_cell_after(1ms, log, "service")); });
    co_await pinned;
    co_await clean;
  };
  finish(starter(&log)).check();
  EXPECT_THAT(log, ElementsAre("pinned: cell 1", "service: <none>"));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ContextTest, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
