// Task groups on a real reactor: written once, run on every backend. Ports the behaviours
// trio's test_run.py (nurseries, nursery.start) and asyncio's test_taskgroups.py check.
#include "weft/core/task_group.h"

#include <memory>
#include <stdexcept>
#include <string>
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
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using Log = std::vector<std::string>;

class TaskGroupTest : public testing::ReactorTest {
 protected:
  // Spawns `task` and runs the loop until it has finished.
  template <typename T>
  Deferred<T> finish(Task<T> task) {
    Deferred<T> result = spawn(reactor(), std::move(task));
    run_until([&] { return result.called(); });
    return result;
  }
};

Task<void> sleep_then_log(Duration delay, Log* log, std::string what) {
  co_await sleep(delay);
  log->push_back(std::move(what));
}

Task<void> fail_later(Duration delay, std::string message) {
  co_await sleep(delay);
  throw std::runtime_error(message);
}

Task<void> sleep_until_cancelled(Log* log, std::string name) {
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    log->push_back(name + " cancelled");
    throw;
  }
}

TEST_P(TaskGroupTest, ChildrenFinishBeforeTheGroupReturns) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(sleep_then_log(30ms, log, "slow child"));
      group.start_soon(sleep_then_log(1ms, log, "fast child"));
      log->push_back("body done");
      co_return;
    });
    log->push_back("group closed");
  };
  Deferred<void> result = finish(parent(&log));
  result.check();
  EXPECT_THAT(log, ElementsAre("body done", "fast child", "slow child", "group closed"));
}

TEST_P(TaskGroupTest, ChildrenStartInTheNextTurnNotInsideStartSoon) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(sleep_then_log(0ms, log, "child"));
      log->push_back("after start_soon");
      co_return;
    });
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("after start_soon", "child"));
}

TEST_P(TaskGroupTest, FirstErrorCancelsSiblingsAndIsRethrownAsItself) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(sleep_until_cancelled(log, "sibling 1"));
      group.start_soon(sleep_until_cancelled(log, "sibling 2"));
      group.start_soon(fail_later(1ms, "boom"));
      co_return;
    });
    log->push_back("not reached");
  };
  Deferred<void> result = finish(parent(&log));
  EXPECT_THAT(log, UnorderedElementsAre("sibling 1 cancelled", "sibling 2 cancelled"));
  try {
    result.check();
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
    EXPECT_EQ(dynamic_cast<const TaskGroupError*>(&e), nullptr) << "one error comes back bare";
  }
}

Task<void> fail_when_cancelled(std::string message) {
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
  }
  throw std::runtime_error(message);
}

TEST_P(TaskGroupTest, TwoErrorsComeBackTogetherAsOneGroupError) {
  auto parent = []() -> Task<void> {
    co_await open_task_group([](TaskGroup& group) -> Task<void> {
      group.start_soon(fail_when_cancelled("second"));  // fails while being cancelled
      group.start_soon(fail_later(1ms, "first"));
      co_return;
    });
  };
  Deferred<void> result = finish(parent());
  try {
    result.check();
    FAIL() << "no error";
  } catch (const TaskGroupError& e) {
    ASSERT_EQ(e.errors().size(), 2u);
    EXPECT_THAT(e.what(), HasSubstr("2 errors"));
    EXPECT_THAT(e.what(), HasSubstr("[1] first"));
    EXPECT_THAT(e.what(), HasSubstr("[2] second"));
  }
}

TEST_P(TaskGroupTest, BodyFailureCancelsTheChildren) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(sleep_until_cancelled(log, "child"));
      co_await sleep(1ms);
      throw std::logic_error("body failed");
    });
  };
  Deferred<void> result = finish(parent(&log));
  EXPECT_THROW(result.check(), std::logic_error);
  EXPECT_THAT(log, ElementsAre("child cancelled"));
}

TEST_P(TaskGroupTest, ChildFailureCancelsTheBodyWaitingInside) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(fail_later(1ms, "child failed"));
      co_await sleep_until_cancelled(log, "body");
    });
  };
  Deferred<void> result = finish(parent(&log));
  EXPECT_THROW(result.check(), std::runtime_error);
  EXPECT_THAT(log, ElementsAre("body cancelled"));
}

Task<void> spawn_grandchildren(TaskGroup* group, Log* log, int depth) {
  log->push_back("level " + std::to_string(depth));
  if (depth < 3) group->start_soon(spawn_grandchildren(group, log, depth + 1));
  co_await sleep(0ms);
}

TEST_P(TaskGroupTest, ChildrenStartFurtherChildrenInTheSameGroup) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(spawn_grandchildren(&group, log, 1));
      co_return;
    });
    log->push_back("closed");
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("level 1", "level 2", "level 3", "closed"));
}

TEST_P(TaskGroupTest, CancelByHandCancelsBodyAndChildrenAndReturnsNormally) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(sleep_until_cancelled(log, "child"));
      co_await sleep(1ms);
      group.cancel();
      co_await sleep_until_cancelled(log, "body");
    });
    log->push_back("returned normally");
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("body cancelled", "child cancelled", "returned normally"));
}

TEST_P(TaskGroupTest, ChildOfACancelledGroupNeverRunsItsBody) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(sleep_then_log(0ms, log, "child ran"));
      group.cancel();  // before the child's first turn
      co_return;
    });
    log->push_back("closed");
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("closed"));
}

TEST_P(TaskGroupTest, OuterCancellationReachesEveryChildAndRaisesCancelled) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(sleep_until_cancelled(log, "child 1"));
      group.start_soon(sleep_until_cancelled(log, "child 2"));
      co_return;
    });
    log->push_back("not reached");
  };
  Deferred<void> result = spawn(reactor(), parent(&log));
  ASSERT_TRUE(run_until_suspended());
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), Cancelled);
  EXPECT_THAT(log, UnorderedElementsAre("child 1 cancelled", "child 2 cancelled"));
}

TEST_P(TaskGroupTest, GroupInsideACancelledScopeIsCancelledAndTheScopeAbsorbsIt) {
  Log log;
  auto parent = [](Log* log) -> Task<bool> {
    auto group_task = [](Log* log) -> Task<void> {
      co_await open_task_group([log](TaskGroup& group) -> Task<void> {
        group.start_soon(sleep_until_cancelled(log, "child"));
        co_await sleep_until_cancelled(log, "body");
      });
    };
    co_return co_await move_on_after(2ms, group_task(log));
  };
  Deferred<bool> result = finish(parent(&log));
  EXPECT_FALSE(result.value()) << "move_on_after absorbed the cancellation";
  EXPECT_THAT(log, UnorderedElementsAre("body cancelled", "child cancelled"));
}

TEST_P(TaskGroupTest, CancelAfterTheGroupFinishedDoesNothing) {
  TaskGroup* leaked = nullptr;
  auto parent = [](TaskGroup** leaked) -> Task<int> {
    co_await open_task_group([leaked](TaskGroup& group) -> Task<void> {
      *leaked = &group;
      co_return;
    });
    co_return 7;
  };
  Deferred<int> result = finish(parent(&leaked));
  EXPECT_EQ(result.value(), 7);
  result.cancel();  // the task finished: nothing happens
  EXPECT_EQ(result.value(), 7);
}

Task<void> listener(Started<int> started, Log* log) {
  co_await sleep(1ms);
  log->push_back("listening");
  started(8080);
  co_await sleep(2ms);
  log->push_back("served");
}

TEST_P(TaskGroupTest, StartWaitsUntilTheChildReportsReadyThenItKeepsRunning) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      int port = co_await group.start<int>([log](Started<int> s) { return listener(s, log); });
      log->push_back("started on " + std::to_string(port));
    });
    log->push_back("closed");
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("listening", "started on 8080", "served", "closed"));
}

Task<void> fails_before_ready(Started<> /*started*/) {
  co_await sleep(1ms);
  throw std::runtime_error("could not bind");
}

Task<void> never_reports(Started<> /*started*/) { co_return; }

TEST_P(TaskGroupTest, StartRaisesAnErrorFromBeforeReadyAndTheGroupCarriesOn) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      group.start_soon(sleep_then_log(50ms, log, "sibling finished"));
      try {
        co_await group.start(fails_before_ready);
      } catch (const std::runtime_error& e) {
        log->push_back(e.what());
      }
      try {
        co_await group.start(never_reports);
      } catch (const UsageError& e) {
        log->push_back("usage error");
      }
    });
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("could not bind", "usage error", "sibling finished"));
}

Task<void> slow_to_start(Started<> started, Log* log) {
  try {
    co_await sleep(1h);
  } catch (const Cancelled&) {
    log->push_back("starting child cancelled");
    throw;
  }
  started();
}

TEST_P(TaskGroupTest, CancellingTheTaskWaitingInStartCancelsTheChild) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& group) -> Task<void> {
      co_await group.start([log](Started<> s) { return slow_to_start(s, log); });
    });
  };
  Deferred<void> result = spawn(reactor(), parent(&log));
  ASSERT_TRUE(run_until_suspended());
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), Cancelled);
  EXPECT_THAT(log, ElementsAre("starting child cancelled"));
}

TEST_P(TaskGroupTest, TenThousandChildrenInOneGroup) {
  constexpr int kChildren = 10'000;
  auto parent = [](int* finished) -> Task<void> {
    co_await open_task_group([finished](TaskGroup& group) -> Task<void> {
      for (int i = 0; i < kChildren; ++i) {
        group.start_soon([](int* finished, int i) -> Task<void> {
          co_await sleep(std::chrono::microseconds(i % 100));
          ++*finished;
        }(finished, i));
      }
      EXPECT_EQ(group.size(), static_cast<std::size_t>(kChildren));
      co_return;
    });
  };
  int finished = 0;
  finish(parent(&finished)).check();
  EXPECT_EQ(finished, kChildren);
  EXPECT_EQ(reactor().counts().tasks, 0u);
}

TEST_P(TaskGroupTest, NestedGroupsCloseInnermostFirst) {
  Log log;
  auto parent = [](Log* log) -> Task<void> {
    co_await open_task_group([log](TaskGroup& outer) -> Task<void> {
      outer.start_soon(sleep_then_log(30ms, log, "outer child"));
      co_await open_task_group([log](TaskGroup& inner) -> Task<void> {
        inner.start_soon(sleep_then_log(1ms, log, "inner child"));
        co_return;
      });
      log->push_back("inner closed");
    });
    log->push_back("outer closed");
  };
  finish(parent(&log)).check();
  EXPECT_THAT(log, ElementsAre("inner child", "inner closed", "outer child", "outer closed"));
}

TEST_P(TaskGroupTest, DestroyingTheReactorDestroysAnOpenGroupsChildren) {
  allow_pending();
  auto log = std::make_shared<Log>();
  auto child = [](std::shared_ptr<Log> log) -> Task<void> {
    struct Cleanup {
      Log& log;
      ~Cleanup() { log.push_back("child frame destroyed"); }
    } cleanup{*log};
    co_await sleep(1h);
  };
  auto parent = [&child](std::shared_ptr<Log> log) -> Task<void> {
    // The body is named, not a temporary of the co_await expression: GCC 12 destroys such
    // temporaries twice when the frame is destroyed while suspended in that expression.
    auto body = [log, &child](TaskGroup& group) -> Task<void> {
      group.start_soon(child(log));
      group.start_soon(child(log));
      co_return;
    };
    co_await open_task_group(body);
    log->push_back("not reached");
  };
  Deferred<void> result = spawn(reactor(), parent(log));
  reactor().run_once(false);
  reactor().run_once(false);
  EXPECT_EQ(reactor().counts().tasks, 3u);
  reactor_.reset();
  EXPECT_THAT(*log, ElementsAre("child frame destroyed", "child frame destroyed"));
  EXPECT_FALSE(result.called());
  EXPECT_EQ(log.use_count(), 1) << "no frame leaked";
}

INSTANTIATE_TEST_SUITE_P(AllBackends, TaskGroupTest, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
