// Time at its extremes, the timer pass, and stop() at every point of a turn: written once,
// run on every backend. These are the classes of bug behind "Duration::max() fires at once",
// "a timer re-arming itself in the past runs forever in one turn" and "run() livelocks when a
// stop is pending and a timer is due".
#include "weft/core/reactor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/timer.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ReactorTime = testing::ReactorTest;

// ---- Extremes ----

TEST_P(ReactorTime, DurationMaxNeverFiresAndDoesNotStallOtherTimers) {
  bool never = false;
  bool soon = false;
  TimerHandle forever = reactor().call_later(Duration::max(), [&] { never = true; });
  reactor().call_later(2ms, [&] { soon = true; });
  ASSERT_TRUE(run_until([&] { return soon; }, 5s));
  reactor().run_once(false);
  EXPECT_FALSE(never);
  EXPECT_TRUE(forever.pending());
  EXPECT_EQ(forever.deadline(), TimePoint::max());
  EXPECT_TRUE(forever.cancel());
}

TEST_P(ReactorTime, TimePointMaxNeverFiresAndDoesNotStallOtherTimers) {
  bool never = false;
  bool soon = false;
  TimerHandle forever = reactor().call_at(TimePoint::max(), [&] { never = true; });
  reactor().call_later(1ms, [&] { soon = true; });
  ASSERT_TRUE(run_until([&] { return soon; }, 5s));
  EXPECT_FALSE(never);
  EXPECT_TRUE(forever.cancel());
}

TEST_P(ReactorTime, FarFutureDeadlineDoesNotStallNearerTimersArmedLater) {
  // The native timer is armed for the far deadline first; a nearer one must still win.
  bool never = false;
  TimerHandle far = reactor().call_later(std::chrono::hours(24 * 365 * 200), [&] { never = true; });
  reactor().run_once(false);
  bool soon = false;
  reactor().call_later(1ms, [&] { soon = true; });
  ASSERT_TRUE(run_until([&] { return soon; }, 5s));
  EXPECT_FALSE(never);
  EXPECT_TRUE(far.cancel());
}

TEST_P(ReactorTime, TimePointMinIsDueAndRunsInALaterTurn) {
  bool ran = false;
  reactor().call_at(TimePoint::min(), [&] { ran = true; });
  EXPECT_FALSE(ran) << "never inside the call that scheduled it";
  ASSERT_TRUE(run_until([&] { return ran; }, 5s));
}

TEST_P(ReactorTime, DurationMinAndNegativeDelaysRunInALaterTurn) {
  int ran = 0;
  reactor().call_later(Duration::min(), [&] { ++ran; });
  reactor().call_later(-1h, [&] { ++ran; });
  reactor().call_later(Duration::zero(), [&] { ++ran; });
  EXPECT_EQ(ran, 0);
  ASSERT_TRUE(run_until([&] { return ran == 3; }, 5s));
}

TEST_P(ReactorTime, SleepDurationMaxWaitsUntilCancelled) {
  auto forever = []() -> Task<void> { co_await sleep(Duration::max()); };
  Deferred<void> done = spawn(reactor(), forever());
  for (int i = 0; i < 5; ++i) reactor().run_once(false);
  EXPECT_FALSE(done.called());
  done.cancel();
  ASSERT_TRUE(run_until([&] { return done.called(); }, 5s));
  EXPECT_THROW(done.check(), Cancelled);
}

TEST_P(ReactorTime, SleepDurationMinAndTimePointExtremesYield) {
  auto yields = []() -> Task<int> {
    co_await sleep(Duration::min());
    co_await sleep(-1h);
    co_return 7;
  };
  Deferred<int> done = spawn(reactor(), yields());
  ASSERT_TRUE(run_until([&] { return done.called(); }, 5s));
  EXPECT_EQ(done.value(), 7);
}

TEST_P(ReactorTime, CallbackRearmingItselfWithDurationMaxRunsOnce) {
  int runs = 0;
  std::function<void()> rearm = [&] {
    ++runs;
    reactor().call_later(Duration::max(), rearm);
  };
  reactor().call_later(0ms, rearm);
  ASSERT_TRUE(run_until([&] { return runs >= 1; }, 5s));
  for (int i = 0; i < 10; ++i) reactor().run_once(false);
  EXPECT_EQ(runs, 1);
  allow_pending();  // the last arming is released by the destructor
}

// ---- The timer pass ----

TEST_P(ReactorTime, TimerRearmingItselfInThePastRunsOncePerTurn) {
  // A timer that re-arms itself already due must not keep one turn going: other work
  // (queued callbacks, cross-thread calls) runs between its runs.
  int timer_runs = 0;
  int interleaved = 0;
  bool stop = false;
  std::function<void()> rearm = [&] {
    ++timer_runs;
    if (!stop) reactor().call_at(TimePoint::min(), rearm);
  };
  reactor().call_at(TimePoint::min(), rearm);
  std::function<void()> requeue = [&] {
    ++interleaved;
    if (interleaved < 50) reactor().call_soon(requeue);
  };
  reactor().call_soon(requeue);
  ASSERT_TRUE(run_until([&] { return interleaved >= 50; }, 10s));
  stop = true;
  // One timer run per turn at most: the two counts advance together.
  EXPECT_LE(timer_runs, interleaved + 2);
  EXPECT_GE(timer_runs, 10);
  // The last arming runs once more and does not re-arm. (Not run_until: its own alarm is a
  // timer too, and waiting for none left used to wait out the whole limit.)
  for (int i = 0; i < 100 && reactor().counts().timers > 0; ++i) reactor().run_once(false);
  EXPECT_EQ(reactor().counts().timers, 0u);
}

TEST_P(ReactorTime, TimerAddedDuringTheTimerPassWaitsForTheNextTurn) {
  std::vector<int> order;
  reactor().call_at(TimePoint::min(), [&] {
    order.push_back(1);
    reactor().call_at(TimePoint::min(), [&] { order.push_back(3); });
    reactor().call_soon([&] { order.push_back(2); });
  });
  ASSERT_TRUE(run_until([&] { return order.size() == 3; }, 5s));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_P(ReactorTime, RescheduledTimerKeepsItsCallbackAndReportsItsDeadline) {
  int ran = 0;
  TimerHandle handle = reactor().call_later(1h, [&] { ++ran; });
  const TimePoint soon = reactor().now() + 2ms;
  EXPECT_TRUE(handle.reschedule(soon));
  EXPECT_EQ(handle.deadline(), soon);
  ASSERT_TRUE(run_until([&] { return ran == 1; }, 5s));
  expect_at(reactor().now(), soon);
  EXPECT_FALSE(handle.reschedule(soon)) << "a timer that ran is not pending";
  EXPECT_EQ(handle.deadline(), TimePoint::max());
}

TEST_P(ReactorTime, TimerObjectRearmsFromItsOwnCallback) {
  int fired = 0;
  TimePoint last{};
  std::unique_ptr<Timer> timer;
  timer = std::make_unique<Timer>(reactor(), [&] {
    ++fired;
    EXPECT_GE(reactor().now(), last);
    if (fired < 5) {
      last = reactor().now() + 1ms;
      timer->start_at(last);
    }
  });
  last = reactor().now() + 1ms;
  timer->start_at(last);
  EXPECT_TRUE(timer->pending());
  ASSERT_TRUE(run_until([&] { return fired == 5; }, 5s));
  EXPECT_FALSE(timer->pending());
  // Re-arming a pending timer moves it; destroying the timer cancels it.
  timer->start_after(1h);
  timer->start_after(2h);
  EXPECT_EQ(reactor().counts().timers, 1u);
  timer.reset();
  EXPECT_EQ(reactor().counts().timers, 0u);
}

// ---- stop() at every point of a turn ----

// Runs `reactor` on a thread until run() returns; fails (instead of hanging) after 10 s.
bool run_returns(Reactor& reactor) {
  std::packaged_task<void()> task([&] { reactor.run(); });
  std::future<void> done = task.get_future();
  std::thread thread(std::move(task));
  const bool returned = done.wait_for(10s) == std::future_status::ready;
  if (!returned) {
    // Unstick it so the test can fail cleanly.
    for (int i = 0; i < 100 && done.wait_for(10ms) != std::future_status::ready; ++i) {
      reactor.stop();
    }
  }
  thread.join();
  return returned;
}

TEST_P(ReactorTime, StopWithADueTimerPendingReturnsRunWithoutSpinning) {
  // The livelock: stop() pending, a timer due in the same native iteration.
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    if (ticks == 3) reactor().stop();
    reactor().call_later(100us, tick);
  };
  reactor().call_later(100us, tick);
  ASSERT_TRUE(run_returns(reactor()));
  // Nothing lost: the next run() goes on ticking.
  const int before = ticks;
  reactor().call_later(5ms, [&] { reactor().stop(); });
  ASSERT_TRUE(run_returns(reactor()));
  EXPECT_GT(ticks, before);
  allow_pending();
}

TEST_P(ReactorTime, StopFromAnotherThreadWhileTimersAreDueReturnsRun) {
  std::atomic<int> ticks{0};
  std::function<void()> tick = [&] {
    ++ticks;
    reactor().call_at(TimePoint::min(), tick);  // always due
  };
  reactor().call_at(TimePoint::min(), tick);
  std::thread stopper([&] {
    while (ticks.load() < 100) std::this_thread::sleep_for(100us);
    reactor().stop();
  });
  const bool returned = run_returns(reactor());
  stopper.join();
  EXPECT_TRUE(returned);
  allow_pending();
}

TEST_P(ReactorTime, StopFromEachKindOfCallbackReturnsRunAndLosesNothing) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(write(sv[1], "x", 1), 1);  // sv[0] stays readable
  enum Point { kCallSoon, kTimer, kWatcher, kFromThread, kOtherThread };
  for (Point point : {kCallSoon, kTimer, kWatcher, kFromThread, kOtherThread}) {
    SCOPED_TRACE(point);
    int later = 0;
    Watch watch;
    auto stop_and_queue = [&] {
      reactor().stop();
      reactor().call_soon([&] { ++later; });
      reactor().call_later(0ms, [&] { ++later; });
    };
    switch (point) {
      case kCallSoon:
        reactor().call_soon(stop_and_queue);
        break;
      case kTimer:
        reactor().call_later(1ms, stop_and_queue);
        break;
      case kWatcher:
        watch = reactor().watch_readable(sv[0], [&] {
          watch.cancel();
          stop_and_queue();
        });
        break;
      case kFromThread:
        std::thread([&] { reactor().call_from_thread(stop_and_queue); }).join();
        break;
      case kOtherThread:
        reactor().call_later(1ms, [&] {
          reactor().call_soon([&] { ++later; });
          reactor().call_later(0ms, [&] { ++later; });
          std::thread([&] { reactor().stop(); }).join();
        });
        break;
    }
    ASSERT_TRUE(run_returns(reactor()));
    // What was queued after the stop runs in the next run().
    reactor().call_later(20ms, [&] { reactor().stop(); });
    ASSERT_TRUE(run_returns(reactor()));
    EXPECT_EQ(later, 2);
    watch.cancel();
  }
  close(sv[0]);
  close(sv[1]);
}

// ---- CallHandle and run_once's result ----

TEST_P(ReactorTime, CallSoonHandleCancelsAQueuedCallback) {
  std::vector<int> order;
  reactor().call_soon([&] { order.push_back(1); });
  CallHandle second = reactor().call_soon([&] { order.push_back(2); });
  reactor().call_soon([&] { order.push_back(3); });
  EXPECT_TRUE(second.pending());
  EXPECT_TRUE(second.cancel());
  EXPECT_FALSE(second.pending());
  EXPECT_FALSE(second.cancel());
  EXPECT_EQ(reactor().counts().ready, 2u);
  ASSERT_TRUE(run_until([&] { return order.size() == 2; }, 5s));
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
  EXPECT_FALSE(CallHandle().cancel());
}

TEST_P(ReactorTime, CallSoonHandleCancelsALaterCallbackOfTheSameTurn) {
  std::vector<int> order;
  CallHandle third;
  CallHandle first = reactor().call_soon([&] {
    order.push_back(1);
    EXPECT_TRUE(third.cancel());
  });
  reactor().call_soon([&] { order.push_back(2); });
  third = reactor().call_soon([&] { order.push_back(3); });
  ASSERT_TRUE(run_until([&] { return order.size() == 2; }, 5s));
  reactor().run_once(false);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(first.cancel()) << "it already ran";
}

TEST_P(ReactorTime, CallFromThreadHandleCancelsFromAnyThread) {
  std::atomic<int> ran{0};
  CallHandle handle;
  std::thread([&] {
    handle = reactor().call_from_thread([&] { ran += 100; });
    reactor().call_from_thread([&] { ran += 1; });
  }).join();
  bool cancelled = false;
  std::thread([&] { cancelled = handle.cancel(); }).join();
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(reactor().counts().from_thread, 1u);
  ASSERT_TRUE(run_until([&] { return ran.load() == 1; }, 5s));
  reactor().run_once(false);
  EXPECT_EQ(ran.load(), 1);
  EXPECT_FALSE(handle.cancel());
}

TEST_P(ReactorTime, RunOnceReportsWhetherWorkIsPending) {
  EXPECT_FALSE(reactor().run_once(false));
  reactor().call_soon([] {});
  EXPECT_TRUE(reactor().has_work());
  EXPECT_FALSE(reactor().run_once(false)) << "the callback ran; nothing is left";
  TimerHandle timer = reactor().call_later(1h, [] {});
  EXPECT_TRUE(reactor().run_once(false));
  timer.cancel();
  EXPECT_FALSE(reactor().run_once(false));
}

TEST_P(ReactorTime, EmptyCallbacksAreRefused) {
  EXPECT_THROW(reactor().call_soon(nullptr), std::invalid_argument);
  EXPECT_THROW(reactor().call_later(1ms, nullptr), std::invalid_argument);
  EXPECT_THROW(reactor().call_from_thread(nullptr), std::invalid_argument);
}

// ---- call_later inside a callback: the deadline is taken as the callback returns ----

TEST_P(ReactorTime, TimerArmedInACallbackIsNeverEarlyAndCountsFromTheCallbacksEnd) {
  TimePoint armed_at{};
  TimePoint returned_at{};
  TimePoint deadline_seen{};
  TimePoint fired_at{};
  TimerHandle timer;
  reactor().call_soon([&] {
    armed_at = reactor().now();
    timer = reactor().call_later(5ms, [&] { fired_at = reactor().now(); });
    // Busy for a while after arming (real time only: virtual time stands still in a callback).
    while (reactor().now() < armed_at + 3ms && !virtual_time()) {
    }
    returned_at = reactor().now();
  });
  reactor().call_soon([&] { deadline_seen = timer.deadline(); });
  ASSERT_TRUE(run_until([&] { return fired_at != TimePoint{}; }, 5s));
  EXPECT_GE(deadline_seen, returned_at + 5ms) << "the delay counts from the callback's end";
  EXPECT_GE(fired_at, deadline_seen);
  if (virtual_time()) {
    EXPECT_EQ(fired_at, armed_at + 5ms);
  }
}

TEST_P(ReactorTime, DeadlineAskedInsideTheArmingCallbackIsNeverEarly) {
  TimePoint before{};
  TimePoint asked{};
  bool fired = false;
  reactor().call_soon([&] {
    before = reactor().now();
    TimerHandle timer = reactor().call_later(2ms, [&] { fired = true; });
    asked = timer.deadline();  // taken now, and kept
    EXPECT_EQ(timer.deadline(), asked);
  });
  ASSERT_TRUE(run_until([&] { return fired; }, 5s));
  EXPECT_GE(asked, before + 2ms);
}

TEST_P(ReactorTime, TimersArmedAndCancelledInOneCallbackLeaveNothing) {
  int cancelled = 0;
  bool kept = false;
  std::vector<int> order;
  reactor().call_soon([&] {
    const std::size_t before = reactor().counts().timers;  // run_until's own alarm, if any
    for (int i = 0; i < 1000; ++i) {
      TimerHandle timer = reactor().call_later(std::chrono::milliseconds(1 + i % 7),
                                               [] { ADD_FAILURE() << "a cancelled timer ran"; });
      cancelled += timer.cancel();
      EXPECT_FALSE(timer.pending());
      EXPECT_EQ(timer.deadline(), TimePoint::max());
    }
    // Equal delays from one callback: in the order they were armed.
    for (int i = 0; i < 3; ++i) reactor().call_later(1ms, [&order, i] { order.push_back(i); });
    reactor().call_later(1ms, [&] { kept = true; });
    EXPECT_EQ(reactor().counts().timers, before + 4);
  });
  ASSERT_TRUE(run_until([&] { return kept; }, 5s));
  EXPECT_EQ(cancelled, 1000);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST_P(ReactorTime, TimerObjectRestartedInsideACallbackIsNeverEarly) {
  TimePoint restarted_at{};
  TimePoint fired_at{};
  int fired = 0;
  Timer timer(reactor(), [&] {
    fired_at = reactor().now();
    ++fired;
  });
  timer.start_after(1h);
  reactor().call_soon([&] {
    restarted_at = reactor().now();
    timer.start_after(3ms);  // moves the pending arming
    timer.start_after(2ms);  // and again, in the same callback
  });
  ASSERT_TRUE(run_until([&] { return fired > 0; }, 5s));
  reactor().run_once(false);
  EXPECT_EQ(fired, 1);
  EXPECT_GE(fired_at, restarted_at + 2ms);
  if (virtual_time()) {
    EXPECT_EQ(fired_at, restarted_at + 2ms);
  }
  EXPECT_FALSE(timer.pending());
}

TEST_P(ReactorTime, StoppedTimerObjectIsNotPendingAndStartsAgain) {
  // stop() keeps the timer's slot (no new one per start, as a stopped uv_timer_t); it must still
  // read as stopped everywhere: not pending, no deadline, not counted, not keeping the loop busy.
  int fired = 0;
  Timer timer(reactor(), [&] { ++fired; });
  const std::size_t before = reactor().counts().timers;
  EXPECT_FALSE(timer.stop()) << "never started";
  timer.start_after(1h);
  EXPECT_TRUE(timer.pending());
  EXPECT_EQ(reactor().counts().timers, before + 1);
  EXPECT_TRUE(timer.stop());
  EXPECT_FALSE(timer.pending());
  EXPECT_FALSE(timer.stop());
  EXPECT_EQ(timer.deadline(), TimePoint::max());
  EXPECT_EQ(reactor().counts().timers, before);
  reactor().call_soon([&] {
    for (int i = 0; i < 100; ++i) {
      timer.start_after(1ms);
      EXPECT_TRUE(timer.stop());
    }
    timer.start_after(2ms);
  });
  ASSERT_TRUE(run_until([&] { return fired > 0; }, 5s));
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(timer.pending());
  timer.start_at(reactor().now() + 1ms);
  EXPECT_TRUE(timer.stop());
  reactor().run_once(false);
  EXPECT_EQ(fired, 1);
}

TEST_P(ReactorTime, TimerStoppedThenDestroyedNeverRunsAndLeavesNothingArmed) {
  const std::size_t before = reactor().counts().timers;
  {
    Timer timer(reactor(), [] { ADD_FAILURE() << "a stopped timer ran"; });
    timer.start_after(1ms);
    timer.stop();
  }
  // Its slot went back with it (TimerQueue.AParkedTimerIsNotPending... checks the slot).
  bool ran = false;
  reactor().call_later(2ms, [&] { ran = true; });
  ASSERT_TRUE(run_until([&] { return ran; }, 5s));
  EXPECT_EQ(reactor().counts().timers, before);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReactorTime, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);
// The same suite on virtual time: exact and instant.
INSTANTIATE_TEST_SUITE_P(VirtualTime, ReactorTime,
                         ::testing::ValuesIn(testing::virtual_backend_names()),
                         testing::param_name);

TEST(AddSaturating, ClampsAtBothEnds) {
  EXPECT_EQ(add_saturating(Clock::now(), Duration::max()), TimePoint::max());
  EXPECT_EQ(add_saturating(TimePoint::max(), 1ns), TimePoint::max());
  EXPECT_EQ(add_saturating(TimePoint::min(), -1ns), TimePoint::min());
  EXPECT_EQ(add_saturating(TimePoint(-1ns), Duration::min()), TimePoint::min());
  const TimePoint t = Clock::now();
  EXPECT_EQ(add_saturating(t, 5ms), t + 5ms);
  EXPECT_EQ(sub_saturating(TimePoint::max(), TimePoint::min()), Duration::max());
  EXPECT_EQ(sub_saturating(TimePoint::min(), TimePoint::max()), Duration::min());
  EXPECT_EQ(sub_saturating(t + 5ms, t), 5ms);
}

}  // namespace
}  // namespace weft
