// Cancel scopes and deadlines on a real reactor: written once, run on every backend. Ports
// the behaviours trio's test_run.py (cancel scopes, shields, deadlines) and asyncio's
// test_timeouts.py (nested timeouts, rescheduling, the swallowed-outer-cancel bug) check.
#include "weft/core/cancel_scope.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/task_group.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using Log = std::vector<std::string>;

class CancelScopeTest : public testing::ReactorTest {
 protected:
  template <typename T>
  Deferred<T> finish(Task<T> task) {
    Deferred<T> result = spawn(reactor(), std::move(task));
    run_until([&] { return result.called(); });
    return result;
  }
};

Task<int> slow_value(Duration delay, int value) {
  co_await sleep(delay);
  co_return value;
}

Task<void> sleep_logging(Duration delay, Log* log, std::string name) {
  try {
    co_await sleep(delay);
    log->push_back(name + " woke");
  } catch (const Cancelled&) {
    log->push_back(name + " cancelled");
    throw;
  }
}

TEST_P(CancelScopeTest, MoveOnAfterGivesUpSilentlyAtTheDeadline) {
  auto task = []() -> Task<std::optional<int>> {
    co_return co_await move_on_after(2ms, slow_value(1h, 1));
  };
  EXPECT_EQ(finish(task()).value(), std::nullopt);
}

TEST_P(CancelScopeTest, MoveOnAfterReturnsTheValueWhenInTime) {
  auto task = []() -> Task<std::optional<int>> {
    co_return co_await move_on_after(1h, slow_value(1ms, 5));
  };
  EXPECT_EQ(finish(task()).value(), 5);
}

TEST_P(CancelScopeTest, MoveOnAtAnAbsoluteDeadline) {
  auto task = []() -> Task<bool> {
    co_return co_await move_on_at(Clock::now() + 2ms, []() -> Task<void> { co_await sleep(1h); }());
  };
  EXPECT_FALSE(finish(task()).value());
}

TEST_P(CancelScopeTest, FailAfterThrowsTimeoutErrorAtTheDeadline) {
  auto task = []() -> Task<int> { co_return co_await fail_after(2ms, slow_value(1h, 1)); };
  EXPECT_THROW(finish(task()).check(), TimeoutError);
  auto in_time = []() -> Task<int> {
    co_return co_await fail_at(Clock::now() + 1h, slow_value(1ms, 3));
  };
  EXPECT_EQ(finish(in_time()).value(), 3);
}

TEST_P(CancelScopeTest, DeadlineAlreadyPastCancelsAtTheFirstAwaitWithoutSuspending) {
  Log log;
  auto task = [](Log* log) -> Task<bool> {
    co_return co_await move_on_after(-1s, sleep_logging(1h, log, "inner"));
  };
  EXPECT_FALSE(finish(task(&log)).value());
  EXPECT_THAT(log, ElementsAre("inner cancelled"));
}

TEST_P(CancelScopeTest, CancellationRepeatsAtEveryAwaitInsideTheScope) {
  auto body = []() -> Task<int> {
    int raised = 0;
    for (int i = 0; i < 3; ++i) {
      try {
        co_await sleep(1h);
      } catch (const Cancelled&) {
        ++raised;
      }
    }
    co_return raised;  // the scope was cancelled, but the body finished: its value stands
  };
  auto task = [&body]() -> Task<std::optional<int>> {
    co_return co_await move_on_after(1ms, body());
  };
  EXPECT_EQ(finish(task()).value(), 3);
}

TEST_P(CancelScopeTest, ScopeCancelledByHandFromAnotherTask) {
  Log log;
  CancelScope scope;
  auto worker = [](CancelScope* scope, Log* log) -> Task<void> {
    bool finished = co_await scope->run(sleep_logging(1h, log, "worker"));
    log->push_back(finished ? "finished" : "moved on");
  };
  auto canceller = [](CancelScope* scope) -> Task<void> {
    co_await sleep(1ms);
    scope->cancel();
  };
  Deferred<void> a = spawn(reactor(), worker(&scope, &log));
  Deferred<void> b = spawn(reactor(), canceller(&scope));
  ASSERT_TRUE(run_until([&] { return a.called() && b.called(); }));
  EXPECT_THAT(log, ElementsAre("worker cancelled", "moved on"));
  EXPECT_TRUE(scope.cancel_called());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_FALSE(scope.deadline_expired());
}

TEST_P(CancelScopeTest, ScopeCancelledBeforeItIsEnteredCancelsItsFirstAwait) {
  Log log;
  auto task = [](Log* log) -> Task<bool> {
    CancelScope scope;
    scope.cancel();
    co_return co_await scope.run(sleep_logging(1h, log, "inner"));
  };
  EXPECT_FALSE(finish(task(&log)).value());
  EXPECT_THAT(log, ElementsAre("inner cancelled"));
}

TEST_P(CancelScopeTest, CancelAfterTheScopeFinishedDoesNothing) {
  auto task = []() -> Task<std::string> {
    CancelScope scope;
    std::optional<int> value = co_await scope.run(slow_value(0ms, 4));
    scope.cancel();
    co_await sleep(1ms);  // the task is not cancelled: the scope was left
    co_return value ? std::to_string(*value) + (scope.cancelled_caught() ? " caught" : " clean")
                    : "nothing";
  };
  EXPECT_EQ(finish(task()).value(), "4 clean");
}

TEST_P(CancelScopeTest, NestedDeadlinesInnerShorterInnerMovesOnOuterCarriesOn) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    CancelScope outer({.deadline = Clock::now() + 1h});
    auto body = [](Log* log) -> Task<void> {
      CancelScope inner({.deadline = Clock::now() + 1ms});
      co_await inner.run(sleep_logging(1h, log, "inner"));
      log->push_back(inner.cancelled_caught() ? "inner caught" : "inner not caught");
      co_await sleep(1ms);
      log->push_back("outer body carried on");
    };
    co_await outer.run(body(log));
    log->push_back(outer.cancel_called() ? "outer cancelled" : "outer not cancelled");
  };
  finish(task(&log)).check();
  EXPECT_THAT(log, ElementsAre("inner cancelled", "inner caught", "outer body carried on",
                               "outer not cancelled"));
}

TEST_P(CancelScopeTest, NestedDeadlinesOuterShorterTheOuterCatchesIt) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    CancelScope outer({.deadline = Clock::now() + 1ms});
    auto body = [](Log* log) -> Task<void> {
      CancelScope inner({.deadline = Clock::now() + 1h});
      co_await inner.run(sleep_logging(1h, log, "inner"));
      log->push_back("not reached: the inner scope does not absorb the outer's cancel");
    };
    co_await outer.run(body(log));
    log->push_back(outer.cancelled_caught() ? "outer caught" : "outer not caught");
  };
  finish(task(&log)).check();
  EXPECT_THAT(log, ElementsAre("inner cancelled", "outer caught"));
}

TEST_P(CancelScopeTest, NestedDeadlinesEqualTheOuterCatchesIt) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    const TimePoint when = Clock::now() + 2ms;
    CancelScope outer({.deadline = when});
    CancelScope inner({.deadline = when});
    auto body = [](CancelScope* inner, Log* log) -> Task<void> {
      co_await inner->run(sleep_logging(1h, log, "inner"));
      log->push_back("not reached");
    };
    co_await outer.run(body(&inner, log));
    log->push_back(std::string(outer.cancelled_caught() ? "outer caught" : "outer not caught") +
                   (inner.cancelled_caught() ? ", inner caught" : ", inner not caught"));
  };
  finish(task(&log)).check();
  EXPECT_THAT(log, ElementsAre("inner cancelled", "outer caught, inner not caught"));
}

TEST_P(CancelScopeTest, InnerTimeoutDoesNotSwallowAnOuterCancellationInTheSameTurn) {
  // asyncio's long-standing bug (fixed by uncancel() counting in 3.11): the task is cancelled
  // from outside in the same turn as an inner timeout expires, and the inner timeout turns
  // the outer cancellation into its own TimeoutError or a silent move-on.
  Log log;
  const TimePoint when = Clock::now() + 2ms;
  auto task = [](TimePoint when, Log* log) -> Task<void> {
    std::optional<int> value = co_await move_on_at(when, slow_value(1h, 1));
    log->push_back(value ? "value" : "inner moved on and swallowed the outer cancel");
  };
  Deferred<void> result = spawn(reactor(), task(when, &log));
  reactor().call_soon([&] {
    // Armed after the scope's own timer: same deadline, so the same turn, just after it.
    reactor().call_at(when, [&] { result.cancel(); });
  });
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), Cancelled);
  EXPECT_TRUE(log.empty());

  // The same with fail_at: the outer cancellation wins over the TimeoutError.
  auto failing = [](TimePoint when) -> Task<int> {
    co_return co_await fail_at(when, slow_value(1h, 1));
  };
  const TimePoint when2 = Clock::now() + 2ms;
  Deferred<int> result2 = spawn(reactor(), failing(when2));
  reactor().call_soon([&] { reactor().call_at(when2, [&] { result2.cancel(); }); });
  ASSERT_TRUE(run_until([&] { return result2.called(); }));
  EXPECT_THROW(result2.check(), Cancelled);
}

TEST_P(CancelScopeTest, OuterCancelWhileInsideAnInnerScopeReachesTheOuterTask) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    std::optional<int> value = co_await move_on_after(1h, slow_value(1h, 1));
    log->push_back("not reached");
    (void)value;
  };
  Deferred<void> result = spawn(reactor(), task(&log));
  ASSERT_TRUE(run_until_suspended());
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), Cancelled) << "the inner scope did not absorb the outer cancel";
  EXPECT_TRUE(log.empty());
}

TEST_P(CancelScopeTest, MovingTheDeadlineEarlierWhileOpen) {
  CancelScope scope({.deadline = Clock::now() + 1h});
  auto worker = [](CancelScope* scope) -> Task<bool> {
    co_return (co_await scope->run(slow_value(1h, 1))).has_value();
  };
  Deferred<bool> result = spawn(reactor(), worker(&scope));
  reactor().call_later(1ms, [&] { scope.set_deadline_after(1ms); });
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_FALSE(result.value());
  EXPECT_TRUE(scope.deadline_expired());
}

TEST_P(CancelScopeTest, MovingTheDeadlineLaterWhileOpen) {
  CancelScope scope({.deadline = Clock::now() + 5ms});
  auto worker = [](CancelScope* scope) -> Task<std::optional<int>> {
    co_return co_await scope->run(slow_value(20ms, 9));
  };
  Deferred<std::optional<int>> result = spawn(reactor(), worker(&scope));
  reactor().call_later(1ms, [&] { scope.set_deadline_after(1h); });
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), 9);
  EXPECT_FALSE(scope.cancel_called());
}

TEST_P(CancelScopeTest, RemovingTheDeadlineWhileOpen) {
  CancelScope scope({.deadline = Clock::now() + 5ms});
  auto worker = [](CancelScope* scope) -> Task<std::optional<int>> {
    co_return co_await scope->run(slow_value(15ms, 2));
  };
  Deferred<std::optional<int>> result = spawn(reactor(), worker(&scope));
  reactor().call_later(1ms, [&] { scope.set_deadline(TimePoint::max()); });
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_EQ(result.value(), 2);
}

TEST_P(CancelScopeTest, ShieldIsNotCancelledByAnOuterCancel) {
  Log log;
  bool asleep = false;
  auto task = [](Log* log, bool* asleep) -> Task<void> {
    try {
      *asleep = true;
      co_await sleep(1h);
    } catch (const Cancelled&) {
      log->push_back("outer cancelled");
    }
    co_await shield(sleep_logging(3ms, log, "shielded cleanup"));
    co_await sleep(0ms);
    log->push_back("not reached");
  };
  Deferred<void> result = spawn(reactor(), task(&log, &asleep));
  // Cancelled once it sleeps: a fixed delay can pass before a task starts on a slow machine.
  ASSERT_TRUE(run_until([&] { return asleep; }));
  result.cancel();
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), Cancelled);
  EXPECT_THAT(log, ElementsAre("outer cancelled", "shielded cleanup woke"));
}

TEST_P(CancelScopeTest, ShieldIsNotCancelledByAnOuterDeadlineButItsOwnDeadlineApplies) {
  Log log;
  auto task = [](Log* log) -> Task<void> {
    auto body = [](Log* log) -> Task<void> {
      co_await shield(sleep_logging(4ms, log, "shielded"));
      CancelScope bounded({.deadline = Clock::now() + 1ms, .shield = true});
      co_await bounded.run(sleep_logging(1h, log, "bounded shield"));
      log->push_back(bounded.cancelled_caught() ? "bounded shield timed out" : "?");
      co_await sleep(0ms);
      log->push_back("not reached");
    };
    bool finished = co_await move_on_after(1ms, body(log));
    log->push_back(finished ? "finished" : "outer moved on");
  };
  finish(task(&log)).check();
  EXPECT_THAT(log, ElementsAre("shielded woke", "bounded shield cancelled",
                               "bounded shield timed out", "outer moved on"));
}

TEST_P(CancelScopeTest, CancelledScopeCancelsTheDeferredItsTaskAwaits) {
  Deferred<int> pending;
  bool cancelled = false;
  pending.add_errback([&](std::exception_ptr) { cancelled = true; });
  auto task = [](Deferred<int> d) -> Task<std::optional<int>> {
    auto wait = [](Deferred<int> d) -> Task<int> { co_return co_await d; };
    co_return co_await move_on_after(1ms, wait(d));
  };
  EXPECT_EQ(finish(task(pending)).value(), std::nullopt);
  EXPECT_TRUE(cancelled);
}

TEST_P(CancelScopeTest, ACancelledErrorNotCausedByTheScopeGoesOnUp) {
  // A Deferred cancelled by someone else fails with Cancelled; the scope, not cancelled,
  // does not mistake it for its own.
  Deferred<int> other;
  auto task = [](Deferred<int> d) -> Task<std::optional<int>> {
    auto wait = [](Deferred<int> d) -> Task<int> { co_return co_await d; };
    co_return co_await move_on_after(1h, wait(d));
  };
  Deferred<std::optional<int>> result = spawn(reactor(), task(other));
  reactor().call_later(1ms, [&] { other.cancel(); });
  ASSERT_TRUE(run_until([&] { return result.called(); }));
  EXPECT_THROW(result.check(), Cancelled);
}

TEST_P(CancelScopeTest, EnteringAScopeTwiceIsAUsageError) {
  auto task = []() -> Task<void> {
    CancelScope scope;
    co_await scope.run(slow_value(0ms, 1));
    co_await scope.run(slow_value(0ms, 1));
  };
  EXPECT_THROW(finish(task()).check(), UsageError);
}

TEST_P(CancelScopeTest, ScopeWithADeadlineLeavesNoTimerBehind) {
  auto task = []() -> Task<int> {
    int total = 0;
    for (int i = 0; i < 100; ++i) total += *co_await move_on_after(1h, slow_value(0ms, 1));
    co_return total;
  };
  EXPECT_EQ(finish(task()).value(), 100);
  EXPECT_EQ(reactor().counts().timers, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, CancelScopeTest,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
