// Tasks, Deferreds and awaitables on a real reactor: written once, run on every
// backend.
#include "weft/core/task.h"

#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/call_handle.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/fd_wait.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/task_group.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using TaskConformance = testing::ReactorTest;

Task<int> answer() { co_return 42; }

Task<int> add(int a, int b) {
  co_await sleep(1ms);
  co_return a + b;
}

Task<std::string> fails(std::string message) {
  co_await sleep(0ms);
  throw std::runtime_error(message);
}

// A timer that must fire while an fd is watched: virtual time does not jump then (the fd could
// still make work), so these run on real time only.
constexpr char kFdTimerOnVirtualTime[] =
    "a timer must fire while an fd is watched, and virtual time does not jump then";

TEST_P(TaskConformance, SpawnedTaskDeliversItsValue) {
  Deferred<int> result = spawn(reactor(), answer());
  EXPECT_FALSE(result.called()) << "a task starts in the next turn, not inside spawn()";
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), 42);
}

TEST_P(TaskConformance, SpawnedTaskMovesItsValueOutAndFreesItsFrameWhenItEnds) {
  // The spawned frame is its own root (core/spawn.h): its value moves into the Deferred and the
  // frame (with its parameters) is freed as the task ends, while the Deferred lives on.
  auto make = [](std::shared_ptr<int> parameter) -> Task<std::unique_ptr<int>> {
    co_await sleep(Duration::zero());
    co_return std::make_unique<int>(*parameter);
  };
  auto parameter = std::make_shared<int>(7);
  Deferred<std::unique_ptr<int>> result = spawn(reactor(), make(parameter));
  EXPECT_EQ(parameter.use_count(), 2) << "the unstarted frame holds its parameter";
  EXPECT_EQ(reactor().counts().tasks, 1u);
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(*result.value(), 7);
  EXPECT_EQ(parameter.use_count(), 1) << "the frame was freed when the task ended";
  EXPECT_EQ(reactor().counts().tasks, 0u);
}

TEST_P(TaskConformance, ADeferredFiredByHandKeepsItsResultWhenTheTaskEnds) {
  Deferred<int> result = spawn(reactor(), answer());
  result.callback(1);  // before the task has run
  ASSERT_TRUE(run_until([&] { return reactor().counts().tasks == 0; }));
  EXPECT_EQ(result.value(), 1) << "the task's 42 does not replace it";
}

TEST_P(TaskConformance, ExceptionsTravelThroughCoAwait) {
  auto outer = [](std::vector<std::string>& log) -> Task<void> {
    try {
      co_await fails("inner failure");
      log.push_back("not reached");
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("caught: ") + e.what());
    }
    co_await fails("second");
  };
  std::vector<std::string> log;
  Deferred<void> result = spawn(reactor(), outer(log));
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THAT(log, ElementsAre("caught: inner failure"));
  EXPECT_TRUE(result.failed());
  EXPECT_THROW(result.check(), std::runtime_error);
}

TEST_P(TaskConformance, NestedAwaitsReturnValues) {
  auto sum_to = [](int n) -> Task<int> {
    int total = 0;
    for (int i = 1; i <= n; ++i) total += co_await add(i, 0);
    co_return total;
  };
  Deferred<int> result = spawn(reactor(), sum_to(10));
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), 55);
}

Task<int> depth(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await depth(n - 1);
}

TEST_P(TaskConformance, DeepAwaitChainsDoNotOverflowTheStack) {
  // Symmetric transfer relies on a tail call, which GCC cannot emit in
  // sanitized code; there the chain is only checked for correctness.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr int kDepth = 1'000;
#else
  constexpr int kDepth = 100'000;
#endif
  Deferred<int> result = spawn(reactor(), depth(kDepth));
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), kDepth);
}

TEST_P(TaskConformance, SleepResumesNoEarlierThanItsDuration) {
  auto timed = []() -> Task<Duration> {
    const TimePoint start = Reactor::current()->now();
    co_await sleep(15ms);
    co_return Reactor::current()->now() - start;
  };
  Deferred<Duration> result = spawn(reactor(), timed());
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  expect_elapsed(result.value(), 15ms);
}

TEST_P(TaskConformance, SleepOfZeroYieldsToCallbacksQueuedBeforeIt) {
  std::vector<std::string> order;
  auto yielder = [](std::vector<std::string>& order) -> Task<void> {
    order.push_back("task start");
    Reactor::current()->call_soon([&order] { order.push_back("callback"); });
    co_await sleep(0ms);
    order.push_back("task resumed");
  };
  Deferred<void> result = spawn(reactor(), yielder(order));
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THAT(order, ElementsAre("task start", "callback", "task resumed"));
}

// Task starts and resumptions share the ready queue with call_soon callbacks (as plain
// entries, core/detail/ready_queue.h): one FIFO order, and cancelling a callback between them
// skips only that callback.
TEST_P(TaskConformance, TaskStartsAndResumptionsKeepCallSoonOrderWithCallbacks) {
  std::vector<std::string> order;
  auto task = [](std::vector<std::string>& order, std::string name) -> Task<void> {
    order.push_back(name + " start");
    co_await sleep(0ms);
    order.push_back(name + " resumed");
  };
  reactor().call_soon([&] { order.push_back("callback 1"); });
  Deferred<void> a = spawn(reactor(), task(order, "a"));
  CallHandle cancelled = reactor().call_soon([&] { order.push_back("cancelled"); });
  reactor().call_soon([&] { order.push_back("callback 2"); });
  Deferred<void> b = spawn(reactor(), task(order, "b"));
  reactor().call_soon([&] {
    order.push_back("callback 3");
    reactor().call_soon([&] { order.push_back("callback 4"); });
  });
  EXPECT_TRUE(cancelled.cancel());
  EXPECT_FALSE(cancelled.pending());
  ASSERT_TRUE(run_until([&] { return a.called() && b.called() && order.size() == 8; }));
  EXPECT_THAT(order, ElementsAre("callback 1", "a start", "callback 2", "b start", "callback 3",
                                 "a resumed", "b resumed", "callback 4"));
}

TEST_P(TaskConformance, CancelWakesASleepingTaskWithCancelledAndItsCleanupRuns) {
  std::vector<std::string> log;
  auto sleeper = [](std::vector<std::string>& log) -> Task<int> {
    struct Cleanup {
      std::vector<std::string>& log;
      ~Cleanup() { log.push_back("cleanup"); }
    } cleanup{log};
    co_await sleep(1h);
    log.push_back("not reached");
    co_return 1;
  };
  Deferred<int> result = spawn(reactor(), sleeper(log));
  ASSERT_TRUE(run_until_suspended());
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THAT(log, ElementsAre("cleanup"));
  EXPECT_THROW(result.check(), Cancelled);
}

TEST_P(TaskConformance, SpawningOrStartingAnEmptyTaskIsAUsageError) {
  auto value = []() -> Task<int> { co_return 1; };
  Task<int> task = value();
  Deferred<int> first = spawn(reactor(), std::move(task));
  EXPECT_THROW(spawn(reactor(), std::move(task)), UsageError);  // NOLINT(bugprone-use-after-move)
  auto group_body = [](TaskGroup& group) -> Task<void> {
    Task<int> moved = []() -> Task<int> { co_return 2; }();
    group.start_soon(std::move(moved));
    try {
      group.start_soon(std::move(moved));  // NOLINT(bugprone-use-after-move)
    } catch (const UsageError&) {
      co_return;
    }
    throw std::runtime_error("no UsageError");
  };
  Deferred<void> grouped = spawn(reactor(), open_task_group(group_body));
  ASSERT_TRUE(run_until([&] { return first.called() && grouped.called(); }));
  EXPECT_EQ(first.value(), 1);
  EXPECT_NO_THROW(grouped.check());
}

TEST_P(TaskConformance, TaskCancelledBeforeItStartsNeverRunsItsBody) {
  bool body_ran = false;
  auto body = [](bool& ran) -> Task<void> {
    ran = true;
    co_return;
  };
  Deferred<void> result = spawn(reactor(), body(body_ran));
  result.cancel();
  EXPECT_FALSE(result.called()) << "the task's Deferred fires when the task is done";
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_FALSE(body_ran);
  EXPECT_THROW(result.check(), Cancelled);
}

TEST_P(TaskConformance, CancellationRepeatsAtEveryAwaitUntilTheTaskEnds) {
  // Pinned choice (trio): cancellation is level-triggered. Catching Cancelled does not
  // uncancel the task; the next await raises again, without suspending.
  auto stubborn = []() -> Task<std::string> {
    std::string log;
    for (int i = 0; i < 3; ++i) {
      try {
        co_await sleep(1h);
        log += "slept;";
      } catch (const Cancelled&) {
        log += "cancelled;";
      }
    }
    co_return log;
  };
  Deferred<std::string> result = spawn(reactor(), stubborn());
  ASSERT_TRUE(run_until_suspended());
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), "cancelled;cancelled;cancelled;");
}

TEST_P(TaskConformance, CleanupThatAwaitsAfterCancellationRunsInAShield) {
  auto task = []() -> Task<std::string> {
    try {
      co_await sleep(1h);
    } catch (const Cancelled&) {
    }
    auto cleanup = []() -> Task<std::string> {
      co_await sleep(2ms);  // asynchronous cleanup: not cancelled inside the shield
      co_return "cleaned up after cancel";
    };
    std::string done = co_await shield(cleanup());
    try {
      co_await sleep(0ms);  // outside the shield the task is still cancelled
    } catch (const Cancelled&) {
      done += ", then cancelled again";
    }
    co_return done;
  };
  Deferred<std::string> result = spawn(reactor(), task());
  ASSERT_TRUE(run_until_suspended());
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), "cleaned up after cancel, then cancelled again");
}

TEST_P(TaskConformance, CancelWhileRunningIsDeliveredAtTheNextAwait) {
  Deferred<int>* self = nullptr;
  auto task = [](Deferred<int>*& self) -> Task<int> {
    self->cancel();  // the task cancels itself while running
    int reached = 1;
    try {
      co_await sleep(1ms);
      reached = 2;
    } catch (const Cancelled&) {
      reached = 3;
    }
    co_return reached;
  };
  Deferred<int> result = spawn(reactor(), task(self));
  self = &result;
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), 3);
}

TEST_P(TaskConformance, CancellingAnOuterTaskCancelsTheDeferredItAwaits) {
  Deferred<int> inner;
  bool inner_cancelled = false;
  inner.add_errback([&](std::exception_ptr) { inner_cancelled = true; });
  auto outer = [](Deferred<int> d) -> Task<int> { co_return co_await d; };
  Deferred<int> result = spawn(reactor(), outer(inner));
  ASSERT_TRUE(run_until_suspended());
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_TRUE(inner_cancelled);
  EXPECT_THROW(result.check(), Cancelled);
}

TEST_P(TaskConformance, CancellingAParentCancelsASpawnedChildItAwaits) {
  std::vector<std::string> log;
  auto child = [](std::vector<std::string>& log) -> Task<void> {
    log.push_back("child sleeping");
    try {
      co_await sleep(1h);
    } catch (const Cancelled&) {
      log.push_back("child cancelled");
      throw;
    }
  };
  auto parent = [&](std::vector<std::string>& log) -> Task<void> {
    co_await spawn(reactor(), child(log));
  };
  Deferred<void> result = spawn(reactor(), parent(log));
  // Cancel once the child is suspended (a fixed delay raced the child's start under load).
  ASSERT_TRUE(run_until([&] { return log.size() == 1; }));
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called() && log.size() == 2; }));
  EXPECT_THAT(log, ElementsAre("child sleeping", "child cancelled"));
}

TEST_P(TaskConformance, AwaitingADeferredFiredLaterByACallback) {
  Deferred<std::string> greeting;
  auto waiter = [](Deferred<std::string> d) -> Task<std::string> {
    std::string value = co_await d;
    co_return value + "!";
  };
  Deferred<std::string> result = spawn(reactor(), waiter(greeting));
  reactor().call_later(2ms, [&] { greeting.callback("hello"); });
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), "hello!");
}

TEST_P(TaskConformance, AnAwaitedDeferredDroppedByItsOwnerLivesWhileTheTaskWaitsOnIt) {
  // The task awaits a Deferred it does not own (an lvalue behind a pointer); the owner drops
  // the last copy while the task is suspended. The awaiter holds its own reference from the
  // suspension on, so cancelling the task (which cancels what it awaits) and firing a copy
  // taken earlier both still reach a live state (ASan: no use after free).
  for (const bool fire : {false, true}) {
    auto owner = std::make_unique<Deferred<int>>();
    Deferred<int> firer;
    if (fire) firer = *owner;
    auto waiter = [](const Deferred<int>* d) -> Task<int> { co_return co_await *d; };
    Deferred<int> result = spawn(reactor(), waiter(owner.get()));
    ASSERT_TRUE(run_until([&] { return reactor().counts().ready == 0; }));
    owner.reset();  // the task is suspended in its co_await
    if (fire) {
      firer.callback(5);
    } else {
      result.cancel();
    }
    ASSERT_TRUE(run_until([&] { return result.called(); }));
    if (fire) {
      EXPECT_EQ(result.value(), 5);
    } else {
      EXPECT_THROW(result.check(), Cancelled);
    }
  }
}

TEST_P(TaskConformance, ManyTasksAwaitOneDeferred) {
  Deferred<int> shared;
  std::vector<Deferred<int>> results;
  auto waiter = [](Deferred<int> d, int add) -> Task<int> { co_return co_await d + add; };
  for (int i = 0; i < 10; ++i) results.push_back(spawn(reactor(), waiter(shared, i)));
  reactor().call_later(1ms, [&] { shared.callback(100); });
  ASSERT_TRUE(run_until([&] { return results.back().called(); }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(results[i].value(), 100 + i);
}

TEST_P(TaskConformance, HundredThousandConcurrentSleepingTasks) {
  constexpr int kTasks = 100'000;
  int finished = 0;
  auto sleeper = [](int i, int& finished) -> Task<void> {
    co_await sleep(std::chrono::microseconds(10 * (i % 1000)));
    ++finished;
  };
  for (int i = 0; i < kTasks; ++i) spawn(reactor(), sleeper(i, finished));
  EXPECT_EQ(reactor().counts().tasks, static_cast<std::size_t>(kTasks));
  ASSERT_TRUE(run_until([&] { return finished == kTasks; }, std::chrono::seconds(60)));
  EXPECT_EQ(reactor().counts().tasks, 0u);
}

TEST_P(TaskConformance, WaitReadableResumesWhenDataArrives) {
  if (virtual_time()) GTEST_SKIP() << kFdTimerOnVirtualTime;
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  auto reader = [](int fd) -> Task<char> {
    co_await wait_readable(fd);
    char c = 0;
    if (read(fd, &c, 1) != 1) throw std::runtime_error("read failed");
    co_return c;
  };
  Deferred<char> result = spawn(reactor(), reader(fds[0]));
  reactor().call_later(3ms, [&] { ASSERT_EQ(write(fds[1], "z", 1), 1); });
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), 'z');
  close(fds[0]);
  close(fds[1]);
}

TEST_P(TaskConformance, CancellingAWaitForReadinessRemovesTheWatcher) {
  if (virtual_time()) GTEST_SKIP() << kFdTimerOnVirtualTime;
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  auto reader = [](int fd) -> Task<void> { co_await wait_readable(fd); };
  Deferred<void> result = spawn(reactor(), reader(fds[0]));
  ASSERT_TRUE(run_until_suspended());
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), Cancelled);
  EXPECT_EQ(reactor().counts().watches, 0u);
  close(fds[0]);
  close(fds[1]);
}

TEST_P(TaskConformance, UnhandledTaskFailureIsReportedToTheErrorHandler) {
  std::string reported;
  reactor().set_error_handler([&](std::exception_ptr error, std::string_view where) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      reported = std::string(where) + ": " + e.what();
    }
  });
  spawn(reactor(), fails("nobody listens"));  // Deferred dropped at once
  ASSERT_TRUE(run_until([&] { return !reported.empty(); }));
  EXPECT_EQ(reported, "unhandled error in Deferred: nobody listens");
}

TEST_P(TaskConformance, DestroyingTheReactorDestroysSuspendedTasksWithoutResumingThem) {
  allow_pending();
  auto log = std::make_shared<std::vector<std::string>>();
  auto sleeper = [](std::shared_ptr<std::vector<std::string>> log) -> Task<void> {
    struct Cleanup {
      std::vector<std::string>& log;
      ~Cleanup() { log.push_back("cleanup"); }
    } cleanup{*log};
    co_await sleep(1h);
    log->push_back("resumed");
  };
  Deferred<void> started = spawn(reactor(), sleeper(log));
  Deferred<void> unstarted;
  reactor().run_once(false);  // the first task reaches its sleep
  unstarted = spawn(reactor(), sleeper(log));
  EXPECT_EQ(reactor().counts().tasks, 2u);
  reactor_.reset();
  EXPECT_THAT(*log, ElementsAre("cleanup")) << "the started task's frame was destroyed";
  EXPECT_FALSE(started.called());
  EXPECT_FALSE(unstarted.called());
  EXPECT_EQ(log.use_count(), 1) << "no frame leaked";
  started.cancel();  // harmless after the reactor is gone
}

TEST_P(TaskConformance, DestroyingTheReactorFreesASpawnedTaskWhoseParameterIsTheTaskItAwaits) {
  // A coroutine's parameters are destroyed after its promise: here the parameter is the inner
  // Task, suspended in a sleep that unhooks from the task's context as it is destroyed. The
  // context must outlive the whole frame (AddressSanitizer checks the order).
  allow_pending();
  auto log = std::make_shared<std::vector<std::string>>();
  auto inner = [](std::shared_ptr<std::vector<std::string>> log) -> Task<void> {
    struct Cleanup {
      std::vector<std::string>& log;
      ~Cleanup() { log.push_back("inner cleanup"); }
    } cleanup{*log};
    co_await sleep(1h);
  };
  auto outer = [](Task<void> inner) -> Task<void> { co_await std::move(inner); };
  spawn(reactor(), outer(inner(log)));  // the Deferred dropped: only the reactor holds the task
  reactor().run_once(false);            // reaches the sleep
  reactor_.reset();
  EXPECT_THAT(*log, ElementsAre("inner cleanup"));
  EXPECT_EQ(log.use_count(), 1) << "no frame leaked";
}

INSTANTIATE_TEST_SUITE_P(AllBackends, TaskConformance,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);
// The same suite on virtual time: exact and instant.
INSTANTIATE_TEST_SUITE_P(VirtualTime, TaskConformance,
                         ::testing::ValuesIn(testing::virtual_backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
