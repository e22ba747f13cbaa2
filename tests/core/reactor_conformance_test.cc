// The Reactor conformance suite: written once against core/reactor.h and run on
// every backend in the registry (one instantiation at the bottom). No test
// names a backend.
#include "weft/core/reactor.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ReactorConformance = testing::ReactorTest;
// The timing tests: on real time and on virtual time (exact and instant), see the bottom.
using ReactorTimers = testing::ReactorTest;

// A connected pair of stream sockets, closed at scope exit.
struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0); }
  ~SocketPair() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
};

// Fills a socket's send buffer, so that it is no longer writable.
void fill(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  char block[4096] = {};
  while (write(fd, block, sizeof block) > 0) {
  }
  fcntl(fd, F_SETFL, flags);
}

// Makes `reactor`'s error handler append "where: what" to `errors` for each error reported.
void collect_errors(Reactor& reactor, std::vector<std::string>& errors) {
  reactor.set_error_handler([&errors](std::exception_ptr error, std::string_view where) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      errors.push_back(std::string(where) + ": " + e.what());
    }
  });
}

// ---- call_soon ----

TEST_P(ReactorConformance, CallSoonRunsInFifoOrder) {
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) reactor().call_soon([&order, i] { order.push_back(i); });
  ASSERT_TRUE(run_until([&] { return order.size() == 100; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

std::vector<std::string>* g_order = nullptr;
void push_function_pointer() { g_order->push_back("function pointer"); }

TEST_P(ReactorConformance, CallSoonKeepsOneFifoOrderAcrossEveryKindOfCallable) {
  // Small trivially copyable callables are queued by value, the others as a Callback: one
  // order, one cancellation rule, one error rule for both.
  std::vector<std::string> order;
  g_order = &order;
  const std::string big = "a callable too big to queue by value";
  reactor().call_soon([&order] { order.push_back("small"); });
  reactor().call_soon([&order, big] { order.push_back(big); });
  CallHandle cancelled = reactor().call_soon([&order] { order.push_back("cancelled"); });
  reactor().call_soon(&push_function_pointer);
  reactor().call_soon(
      [&order, n = 0]() mutable { order.push_back("mutable " + std::to_string(++n)); });
  reactor().call_soon([] { throw std::runtime_error("thrown by a small callable"); });
  reactor().call_soon([&order] { order.push_back("after the throw"); });
  EXPECT_TRUE(cancelled.pending());
  EXPECT_TRUE(cancelled.cancel());
  EXPECT_FALSE(cancelled.pending());
  EXPECT_FALSE(cancelled.cancel());
  EXPECT_EQ(reactor().counts().ready, 6u);
  std::vector<std::string> errors;
  collect_errors(reactor(), errors);
  ASSERT_TRUE(run_until([&] { return order.size() == 5; }));
  EXPECT_THAT(order, ElementsAre("small", big, "function pointer", "mutable 1", "after the throw"));
  EXPECT_THAT(errors, ElementsAre("call_soon callback: thrown by a small callable"));
  void (*null_function)() = nullptr;
  EXPECT_THROW(reactor().call_soon(null_function), std::invalid_argument);
  g_order = nullptr;
}

TEST_P(ReactorConformance, CallSoonNeverRunsInsideTheCallThatQueuedIt) {
  bool ran = false;
  reactor().call_soon([&] { ran = true; });
  EXPECT_FALSE(ran);
  ASSERT_TRUE(run_until([&] { return ran; }));
}

TEST_P(ReactorConformance, CallbackQueuedDuringATurnWaitsForTheNextTurn) {
  // Pinned choice: a turn runs what was ready when it began.
  std::vector<std::string> order;
  reactor().call_soon([&] {
    order.push_back("a");
    reactor().call_soon([&] { order.push_back("c"); });
  });
  reactor().call_soon([&] { order.push_back("b"); });
  ASSERT_TRUE(run_until([&] { return order.size() == 3; }));
  EXPECT_THAT(order, ElementsAre("a", "b", "c"));
}

// ---- Timers ----

TEST_P(ReactorConformance, TimersKeepOneOrderAcrossEveryKindOfCallable) {
  // As call_soon: small trivially copyable callables are kept by value in the timer, the others
  // as a Callback; equal deadlines run in the order they were armed, whatever the kind.
  std::vector<std::string> order;
  g_order = &order;
  const std::string big = "a callable too big to keep by value";
  const TimePoint when = reactor().now() + std::chrono::milliseconds(2);
  reactor().call_at(when, [&order] { order.push_back("small"); });
  reactor().call_at(when, [&order, big] { order.push_back(big); });
  TimerHandle cancelled = reactor().call_at(when, [&order] { order.push_back("cancelled"); });
  reactor().call_at(when, &push_function_pointer);
  reactor().call_at(
      when, [&order, n = 0]() mutable { order.push_back("mutable " + std::to_string(++n)); });
  reactor().call_at(when, [] { throw std::runtime_error("thrown by a small callable"); });
  TimerHandle last = reactor().call_at(when, [&order] { order.push_back("after the throw"); });
  EXPECT_TRUE(cancelled.pending());
  EXPECT_EQ(cancelled.deadline(), when);
  EXPECT_TRUE(cancelled.cancel());
  EXPECT_FALSE(cancelled.pending());
  EXPECT_FALSE(cancelled.cancel());
  EXPECT_FALSE(cancelled.reschedule(when));
  EXPECT_EQ(reactor().counts().timers, 6u);
  std::vector<std::string> errors;
  collect_errors(reactor(), errors);
  ASSERT_TRUE(run_until([&] { return order.size() == 5; }));
  EXPECT_THAT(order, ElementsAre("small", big, "function pointer", "mutable 1", "after the throw"));
  EXPECT_THAT(errors, ElementsAre("timer callback: thrown by a small callable"));
  EXPECT_FALSE(last.pending());
  EXPECT_FALSE(last.cancel());
  void (*null_function)() = nullptr;
  EXPECT_THROW(reactor().call_at(when, null_function), std::invalid_argument);
  EXPECT_THROW(reactor().call_later(std::chrono::milliseconds(1), null_function),
               std::invalid_argument);
  EXPECT_EQ(reactor().counts().timers, 0u);
  g_order = nullptr;
}

TEST_P(ReactorConformance, SmallTimerArmedInsideACallbackCanBeCancelledRescheduledOrRun) {
  // Inside a callback call_later defers the deadline to the callback's end (settle_timers):
  // every kind of callable takes that path, and a cancelled one costs nothing afterwards.
  std::vector<std::string> order;
  TimerHandle never;
  reactor().call_soon([&] {
    TimerHandle dropped = reactor().call_later(std::chrono::milliseconds(1),
                                               [&order] { order.push_back("cancelled"); });
    EXPECT_TRUE(dropped.pending());
    EXPECT_TRUE(dropped.cancel());
    TimerHandle moved =
        reactor().call_later(std::chrono::hours(1), [&order] { order.push_back("moved"); });
    EXPECT_TRUE(moved.reschedule(reactor().now() + std::chrono::milliseconds(2)));
    reactor().call_later(std::chrono::milliseconds(1), [&order] { order.push_back("first"); });
    never = reactor().call_later(Duration::max(), [&order] { order.push_back("never"); });
  });
  ASSERT_TRUE(run_until([&] { return order.size() == 2; }));
  EXPECT_THAT(order, ElementsAre("first", "moved"));
  EXPECT_EQ(reactor().counts().timers, 1u);
  EXPECT_EQ(never.deadline(), TimePoint::max());
  EXPECT_TRUE(never.cancel());
}

TEST_P(ReactorTimers, TimersFireInDeadlineOrder) {
  std::vector<int> order;
  const TimePoint start = reactor().now();
  for (int ms : {30, 10, 50, 20, 40}) {
    reactor().call_later(std::chrono::milliseconds(ms), [this, &order, ms, start] {
      order.push_back(ms);
      expect_elapsed(reactor().now() - start, std::chrono::milliseconds(ms));
    });
  }
  ASSERT_TRUE(run_until([&] { return order.size() == 5; }));
  EXPECT_THAT(order, ElementsAre(10, 20, 30, 40, 50));
}

TEST_P(ReactorTimers, TimersWithEqualDeadlinesFireInScheduleOrder) {
  std::vector<int> order;
  const TimePoint when = reactor().now() + 5ms;
  for (int i = 0; i < 50; ++i) {
    reactor().call_at(when, [this, &order, i, when] {
      order.push_back(i);
      expect_at(reactor().now(), when);
    });
  }
  ASSERT_TRUE(run_until([&] { return order.size() == 50; }));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST_P(ReactorTimers, TimerNeverFiresEarly) {
  constexpr int kTimers = 20;
  int fired = 0;
  for (int i = 0; i < kTimers; ++i) {
    const Duration delay = std::chrono::microseconds(1500 * i + 700);
    const TimePoint started = reactor().now();
    reactor().call_later(delay, [&, started, delay] {
      expect_elapsed(reactor().now() - started, delay);
      ++fired;
    });
  }
  ASSERT_TRUE(run_until([&] { return fired == kTimers; }));
}

TEST_P(ReactorTimers, NegativeDelayRunsInALaterTurn) {
  bool ran = false;
  reactor().call_later(-5s, [&] { ran = true; });
  EXPECT_FALSE(ran);
  ASSERT_TRUE(run_until([&] { return ran; }));
}

TEST_P(ReactorTimers, CancelledTimerNeverFires) {
  bool cancelled_ran = false;
  bool later_ran = false;
  TimerHandle timer = reactor().call_later(5ms, [&] { cancelled_ran = true; });
  reactor().call_later(20ms, [&] { later_ran = true; });
  EXPECT_TRUE(timer.pending());
  EXPECT_TRUE(timer.cancel());
  EXPECT_FALSE(timer.pending());
  EXPECT_FALSE(timer.cancel()) << "a second cancel prevents nothing";
  ASSERT_TRUE(run_until([&] { return later_ran; }));
  EXPECT_FALSE(cancelled_ran);
}

TEST_P(ReactorTimers, CancellingADueTimerFromACallbackInTheSameTurnPreventsIt) {
  // Both timers are due in the same turn; the first cancels the second before
  // it runs.
  const TimePoint when = reactor().now() + 2ms;
  bool second_ran = false;
  bool cancel_result = false;
  TimerHandle second;
  reactor().call_at(when, [&] { cancel_result = second.cancel(); });
  second = reactor().call_at(when, [&] { second_ran = true; });
  bool done = false;
  reactor().call_at(when + 10ms, [&] { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_TRUE(cancel_result) << "cancel() reports that it prevented the call";
  EXPECT_FALSE(second_ran);
}

TEST_P(ReactorTimers, CancelAfterTheTimerRanReturnsFalse) {
  bool ran = false;
  TimerHandle timer = reactor().call_later(1ms, [&] { ran = true; });
  ASSERT_TRUE(run_until([&] { return ran; }));
  EXPECT_FALSE(timer.pending());
  EXPECT_FALSE(timer.cancel());
}

TEST_P(ReactorTimers, TimerCancellingItselfWhileRunningReturnsFalse) {
  TimerHandle self;
  bool result = true;
  bool ran = false;
  self = reactor().call_later(1ms, [&] {
    result = self.cancel();
    ran = true;
  });
  ASSERT_TRUE(run_until([&] { return ran; }));
  EXPECT_FALSE(result);
}

TEST_P(ReactorTimers, EarlierTimerAddedLaterStillFiresFirst) {
  std::vector<int> order;
  const TimePoint start = reactor().now();
  reactor().call_later(200ms, [&] {
    order.push_back(2);
    expect_elapsed(reactor().now() - start, 200ms);
  });
  reactor().call_soon([&] {
    reactor().call_later(5ms, [&] {
      order.push_back(1);
      expect_elapsed(reactor().now() - start, 5ms);
    });
  });
  ASSERT_TRUE(run_until([&] { return order.size() == 2; }));
  EXPECT_THAT(order, ElementsAre(1, 2));
}

// ---- Cross-thread calls ----

TEST_P(ReactorConformance, CallFromThreadDeliversEveryCallExactlyOnce) {
  constexpr int kThreads = 8;
  constexpr int kCalls = 10'000;
  std::vector<int> seen(kThreads * kCalls, 0);
  int delivered = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        reactor().call_from_thread([&, slot = t * kCalls + i] {
          ++seen[slot];
          ++delivered;
        });
      }
    });
  }
  ASSERT_TRUE(run_until([&] { return delivered == kThreads * kCalls; }));
  for (std::thread& thread : threads) thread.join();
  reactor().run_once(false);
  for (int count : seen) ASSERT_EQ(count, 1);
  EXPECT_EQ(delivered, kThreads * kCalls);
}

TEST_P(ReactorConformance, CallsFromOneThreadRunInOrder) {
  std::vector<int> order;
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) reactor().call_from_thread([&order, i] { order.push_back(i); });
  });
  ASSERT_TRUE(run_until([&] { return order.size() == 1000; }));
  producer.join();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(order[i], i);
}

TEST_P(ReactorConformance, CallFromThreadWakesAnIdleLoop) {
  // Nothing else is pending: run() sleeps in the kernel until the other
  // thread's call.
  std::atomic<bool> ran{false};
  std::thread caller([&] {
    std::this_thread::sleep_for(50ms);
    reactor().call_from_thread([&] {
      ran = true;
      reactor().stop();
    });
  });
  reactor().run();
  caller.join();
  EXPECT_TRUE(ran);
}

// ---- fd readiness ----

TEST_P(ReactorConformance, ReadableWatcherFiresWhenDataArrives) {
  SocketPair pair;
  int calls = 0;
  char got = 0;
  Watch watch = reactor().watch_readable(pair.fd[0], [&] {
    ASSERT_EQ(read(pair.fd[0], &got, 1), 1);
    ++calls;
  });
  reactor().run_once(false);
  EXPECT_EQ(calls, 0) << "not readable yet";
  ASSERT_EQ(write(pair.fd[1], "x", 1), 1);
  ASSERT_TRUE(run_until([&] { return calls == 1; }));
  EXPECT_EQ(got, 'x');
  EXPECT_TRUE(watch.active());
  EXPECT_TRUE(watch.cancel());
  EXPECT_FALSE(watch.active());
}

TEST_P(ReactorConformance, WritableWatcherFiresWhenSpaceFrees) {
  SocketPair pair;
  fill(pair.fd[0]);
  bool writable = false;
  Watch watch = reactor().watch_writable(pair.fd[0], [&] { writable = true; });
  reactor().run_once(false);
  EXPECT_FALSE(writable) << "the send buffer is full";
  // Drain the peer so the writer has room again.
  std::thread drain([&] {
    char buffer[65536];
    const int flags = fcntl(pair.fd[1], F_GETFL);
    fcntl(pair.fd[1], F_SETFL, flags | O_NONBLOCK);
    while (read(pair.fd[1], buffer, sizeof buffer) > 0) {
    }
  });
  drain.join();
  ASSERT_TRUE(run_until([&] { return writable; }));
  watch.cancel();
}

TEST_P(ReactorConformance, ReaderAndWriterOnOneFdAreIndependent) {
  SocketPair pair;
  int reads = 0;
  int writes = 0;
  Watch reader = reactor().watch_readable(pair.fd[0], [&] {
    char c;
    ASSERT_EQ(read(pair.fd[0], &c, 1), 1);
    ++reads;
  });
  Watch writer = reactor().watch_writable(pair.fd[0], [&] { ++writes; });
  ASSERT_TRUE(run_until([&] { return writes > 0; }));
  writer.cancel();
  EXPECT_EQ(reads, 0);
  ASSERT_EQ(write(pair.fd[1], "y", 1), 1);
  ASSERT_TRUE(run_until([&] { return reads == 1; }));
  reader.cancel();
}

TEST_P(ReactorConformance, CancelledWatcherStopsFiring) {
  SocketPair pair;
  int calls = 0;
  Watch watch = reactor().watch_readable(pair.fd[0], [&] { ++calls; });
  watch.cancel();
  ASSERT_EQ(write(pair.fd[1], "x", 1), 1);
  bool done = false;
  reactor().call_later(20ms, [&] { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ(calls, 0);
}

TEST_P(ReactorConformance, WatcherMayCancelItselfFromItsCallback) {
  SocketPair pair;
  int calls = 0;
  Watch watch;
  watch = reactor().watch_readable(pair.fd[0], [&] {
    ++calls;
    EXPECT_TRUE(watch.cancel());
  });
  ASSERT_EQ(write(pair.fd[1], "x", 1),
            1);  // never read: level-triggered readiness persists
  bool done = false;
  reactor().call_later(30ms, [&] { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ(calls, 1);
}

TEST_P(ReactorConformance, WatcherCancelledByAnEarlierCallbackInTheSameIterationDoesNotRun) {
  SocketPair a;
  SocketPair b;
  int a_calls = 0;
  int b_calls = 0;
  Watch watch_a;
  Watch watch_b;
  // Whichever runs first cancels the other; exactly one runs.
  watch_a = reactor().watch_readable(a.fd[0], [&] {
    ++a_calls;
    watch_b.cancel();
    watch_a.cancel();
  });
  watch_b = reactor().watch_readable(b.fd[0], [&] {
    ++b_calls;
    watch_a.cancel();
    watch_b.cancel();
  });
  ASSERT_EQ(write(a.fd[1], "x", 1), 1);
  ASSERT_EQ(write(b.fd[1], "x", 1), 1);
  ASSERT_TRUE(run_until([&] { return a_calls + b_calls > 0; }));
  reactor().run_once(false);
  EXPECT_EQ(a_calls + b_calls, 1);
}

// One fd both readable and writable: a backend may report the two in one call (libuv) or
// apart. Whichever watcher runs first cancels the other, or gives the fd up and watches it
// again: the watcher it cancelled never runs, and the new one does in a later step.
TEST_P(ReactorConformance, AWatcherCancelledByTheOtherWatcherOfItsFdDoesNotRun) {
  for (const bool rewatch : {false, true}) {
    SocketPair pair;
    ASSERT_EQ(write(pair.fd[1], "x", 1), 1);  // fd[0] readable; a socket is writable
    int reads = 0;
    int writes = 0;
    int fresh_calls = 0;
    Watch reader;
    Watch writer;
    Watch fresh;
    auto first = [&] {
      reader.cancel();
      writer.cancel();
      if (rewatch) fresh = reactor().watch_writable(pair.fd[0], [&] { ++fresh_calls; });
    };
    reader = reactor().watch_readable(pair.fd[0], [&] {
      ++reads;
      first();
    });
    writer = reactor().watch_writable(pair.fd[0], [&] {
      ++writes;
      first();
    });
    ASSERT_TRUE(run_until([&] { return reads + writes > 0; }));
    EXPECT_EQ(reads + writes, 1) << (rewatch ? "re-watched" : "cancelled");
    if (rewatch) {
      ASSERT_TRUE(run_until([&] { return fresh_calls > 0; }));
      fresh.cancel();
    }
    reactor().run_once(false);
    EXPECT_EQ(reads + writes, 1);
  }
}

TEST_P(ReactorConformance, SecondReaderOnOneFdIsAUsageError) {
  SocketPair pair;
  Watch first = reactor().watch_readable(pair.fd[0], [] {});
  EXPECT_THROW(reactor().watch_readable(pair.fd[0], [] {}), UsageError);
  first.cancel();
  Watch again = reactor().watch_readable(pair.fd[0], [] {});
  again.cancel();
}

TEST_P(ReactorConformance, ClosedAndReusedFdDoesNotDeliverStaleEvents) {
  // epoll registers open files, not numbers. Watch fd N, keep its file open
  // through a dup, close N while watched, cancel, reuse the number N for a new
  // socket and watch that: events on the old file (through the dup) must not
  // reach the new watcher.
  SocketPair old_pair;
  const int number = old_pair.fd[0];
  const int keep_old_open = dup(number);
  int stale = 0;
  Watch old_watch = reactor().watch_readable(number, [&] { ++stale; });
  close(number);  // closed while watched
  old_watch.cancel();
  SocketPair fresh;  // the lowest free numbers: `number` is reused
  const int reused = fresh.fd[0] == number ? fresh.fd[0] : fresh.fd[1];
  ASSERT_EQ(reused, number) << "test setup: the fd number was not reused";
  int fresh_calls = 0;
  Watch fresh_watch = reactor().watch_readable(reused, [&] { ++fresh_calls; });
  // Make the *old* file readable: write to its peer.
  ASSERT_EQ(write(old_pair.fd[1], "x", 1), 1);
  bool done = false;
  reactor().call_later(30ms, [&] { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ(stale, 0);
  EXPECT_EQ(fresh_calls, 0) << "the old file's readiness reached the new watcher";
  fresh_watch.cancel();
  close(keep_old_open);
  old_pair.fd[0] = -1;  // already closed
}

TEST_P(ReactorConformance, WatchingAnFdClosedAndReusedWithoutCancellingIsAUsageError) {
  SocketPair old_pair;
  const int number = old_pair.fd[0];
  Watch old_watch = reactor().watch_readable(number, [] {});
  close(number);
  old_pair.fd[0] = -1;
  SocketPair fresh;
  const int reused = fresh.fd[0] == number ? fresh.fd[0] : fresh.fd[1];
  ASSERT_EQ(reused, number);
  EXPECT_THROW(reactor().watch_writable(reused, [] {}), UsageError);
  old_watch.cancel();
  Watch ok = reactor().watch_writable(reused, [] {});
  ok.cancel();
}

TEST_P(ReactorConformance, WatchingLeavesTheFdFlagsAlone) {
  SocketPair pair;
  fcntl(pair.fd[1], F_SETFL, fcntl(pair.fd[1], F_GETFL) | O_NONBLOCK);
  for (int fd : pair.fd) {  // blocking, then non-blocking
    const int before = fcntl(fd, F_GETFL);
    Watch watch = reactor().watch_readable(fd, [] {});
    reactor().run_once(false);
    EXPECT_EQ(fcntl(fd, F_GETFL), before);
    watch.cancel();
    EXPECT_EQ(fcntl(fd, F_GETFL), before);
  }
}

// ---- Signals ----

TEST_P(ReactorConformance, SignalReachesItsWatcherOnTheLoopThread) {
  int calls = 0;
  const std::thread::id loop_thread = std::this_thread::get_id();
  Watch watch = reactor().watch_signal(SIGUSR1, [&] {
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    ++calls;
  });
  reactor().run_once(false);
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  ASSERT_TRUE(run_until([&] { return calls >= 1; }));
  watch.cancel();
}

TEST_P(ReactorConformance, SignalReachesEveryWatcherOfEveryReactor) {
  std::unique_ptr<Reactor> other = make_reactor(GetParam());
  int here_a = 0;
  int here_b = 0;
  int there = 0;
  Watch a = reactor().watch_signal(SIGUSR2, [&] { ++here_a; });
  Watch b = reactor().watch_signal(SIGUSR2, [&] { ++here_b; });
  Watch c = other->watch_signal(SIGUSR2, [&] { ++there; });
  reactor().run_once(false);
  other->run_once(false);
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  const auto deadline = Clock::now() + 10s;
  while ((here_a == 0 || here_b == 0 || there == 0) && Clock::now() < deadline) {
    reactor().run_once(false);
    other->run_once(false);
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(here_a, 1);
  EXPECT_EQ(here_b, 1);
  EXPECT_EQ(there, 1);
  a.cancel();
  b.cancel();
  c.cancel();
}

// ---- Running and stopping ----

TEST_P(ReactorTimers, StopFromACallbackReturnsRun) {
  int ticks = 0;
  reactor().call_later(5ms, [&] {
    ++ticks;
    reactor().stop();
  });
  reactor().run();
  EXPECT_EQ(ticks, 1);
  EXPECT_FALSE(reactor().is_running());
}

TEST_P(ReactorConformance, StopFromAnotherThreadReturnsRun) {
  std::atomic<bool> started{false};
  reactor().call_soon([&] { started = true; });
  std::thread stopper([&] {
    while (!started) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);
    reactor().stop();
  });
  reactor().run();  // blocks in the kernel until the stop
  stopper.join();
  EXPECT_TRUE(started);
}

TEST_P(ReactorConformance, StopBeforeRunMakesRunReturnAtOnceHavingRunNothing) {
  // Pinned choice (as libuv and Asio): the request is remembered and consumed
  // by run().
  bool ran = false;
  reactor().call_soon([&] { ran = true; });
  reactor().stop();
  reactor().run();
  EXPECT_FALSE(ran) << "run() returned before running queued work";
  // The request was consumed: the next run() runs the queued callback.
  reactor().call_soon([&] { reactor().stop(); });
  reactor().run();
  EXPECT_TRUE(ran);
}

TEST_P(ReactorConformance, StopRacingTheStartOfRunIsNotLost) {
  for (int i = 0; i < 50; ++i) {
    std::thread stopper([&] { reactor().stop(); });
    reactor().run();  // returns whether the stop came before or after it started
    stopper.join();
  }
}

TEST_P(ReactorConformance, RestOfTheTurnRunsAfterStopAndLaterTurnsWaitForTheNextRun) {
  // Pinned choice: stop() ends run() at the end of the current turn; nothing is
  // lost.
  std::vector<int> order;
  reactor().call_soon([&] {
    order.push_back(1);
    reactor().stop();
    reactor().call_soon([&] { order.push_back(3); });  // a later turn
  });
  reactor().call_soon([&] { order.push_back(2); });  // same turn as the stop
  reactor().run();
  EXPECT_THAT(order, ElementsAre(1, 2));
  reactor().call_soon([&] { reactor().stop(); });
  reactor().run();
  EXPECT_THAT(order, ElementsAre(1, 2, 3));
}

TEST_P(ReactorConformance, RunOnceWithADueTimerRunsItWithoutBlockingAfterwards) {
  // The timer is due before run_once() starts. One iteration must run it and return, not run
  // it and then sleep in the kernel (libuv 1.44 runs due timers before its poll). A watchdog
  // wakes the loop after 10 s so that a failure fails instead of hanging.
  bool fired = false;
  reactor().call_later(1ms, [&] { fired = true; });
  std::this_thread::sleep_for(5ms);
  std::atomic<bool> returned{false};
  std::atomic<bool> watchdog_woke{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 1000 && !returned; ++i) std::this_thread::sleep_for(10ms);
    if (!returned) {
      watchdog_woke = true;
      reactor().call_from_thread([] {});
    }
  });
  while (!fired && !watchdog_woke) reactor().run_once(true);
  returned = true;
  watchdog.join();
  EXPECT_TRUE(fired);
  EXPECT_FALSE(watchdog_woke) << "run_once(true) blocked after running the due timer";
  reactor().run_once(false);
}

TEST_P(ReactorConformance, RunsStopsAndRunsAgainManyTimes) {
  for (int round = 0; round < 100; ++round) {
    int ran = 0;
    reactor().call_soon([&] { ++ran; });
    reactor().call_later(std::chrono::microseconds(100), [&] {
      ++ran;
      reactor().stop();
    });
    reactor().run();
    ASSERT_EQ(ran, 2) << "round " << round;
  }
}

TEST_P(ReactorConformance, IsRunningOnlyWhileRunning) {
  EXPECT_FALSE(reactor().is_running());
  bool inside = false;
  reactor().call_soon([&] {
    inside = reactor().is_running() && Reactor::current() == &reactor();
    reactor().stop();
  });
  reactor().run();
  EXPECT_TRUE(inside);
  EXPECT_FALSE(reactor().is_running());
  EXPECT_EQ(Reactor::current(), nullptr);
}

TEST_P(ReactorConformance, RunningARunningReactorIsAUsageError) {
  bool threw = false;
  reactor().call_soon([&] {
    try {
      reactor().run();
    } catch (const UsageError&) {
      threw = true;
    }
    reactor().stop();
  });
  reactor().run();
  EXPECT_TRUE(threw);
}

// ---- Fairness ----

TEST_P(ReactorConformance, SelfRequeuingCallbackDoesNotStarveTimersIoOrCrossThreadCalls) {
  SocketPair pair;
  bool spinning = true;
  int spins = 0;
  std::function<void()> spin = [&] {
    ++spins;
    if (spinning) reactor().call_soon(spin);
  };
  reactor().call_soon(spin);
  bool timer = false;
  bool io = false;
  std::atomic<bool> cross{false};
  reactor().call_later(2ms, [&] { timer = true; });
  Watch watch = reactor().watch_readable(pair.fd[0], [&] { io = true; });
  ASSERT_EQ(write(pair.fd[1], "x", 1), 1);
  std::thread other([&] { reactor().call_from_thread([&] { cross = true; }); });
  ASSERT_TRUE(run_until([&] { return timer && io && cross; }));
  other.join();
  spinning = false;
  watch.cancel();
  reactor().run_once(false);
  EXPECT_GT(spins, 0);
}

// ---- Errors ----

TEST_P(ReactorTimers, ExceptionInACallbackGoesToTheHandlerAndTheLoopCarriesOn) {
  std::vector<std::string> errors;
  collect_errors(reactor(), errors);
  bool after = false;
  reactor().call_soon([] { throw std::runtime_error("soon"); });
  reactor().call_later(1ms, [] { throw std::runtime_error("timer"); });
  reactor().call_from_thread([] { throw std::runtime_error("cross"); });
  reactor().call_later(5ms, [&] { after = true; });
  ASSERT_TRUE(run_until([&] { return after; }));
  EXPECT_THAT(errors,
              ::testing::UnorderedElementsAre("call_soon callback: soon", "timer callback: timer",
                                              "call_from_thread callback: cross"));
}

TEST_P(ReactorConformance, ExceptionInAWatcherNamesItsFd) {
  SocketPair pair;
  std::string where;
  reactor().set_error_handler([&](std::exception_ptr, std::string_view w) { where = w; });
  Watch watch = reactor().watch_readable(pair.fd[0], [&] {
    char c;
    (void)read(pair.fd[0], &c, 1);
    throw std::runtime_error("boom");
  });
  ASSERT_EQ(write(pair.fd[1], "x", 1), 1);
  ASSERT_TRUE(run_until([&] { return !where.empty(); }));
  EXPECT_EQ(where, "readable watcher on fd " + std::to_string(pair.fd[0]));
  watch.cancel();
}

TEST_P(ReactorConformance, DefaultErrorHandlerPrintsTheCallbackKind) {
  ::testing::internal::CaptureStderr();
  bool after = false;
  reactor().call_soon([] { throw std::runtime_error("visible"); });
  reactor().call_soon([&] { after = true; });
  ASSERT_TRUE(run_until([&] { return after; }));
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(printed, HasSubstr("call_soon callback"));
  EXPECT_THAT(printed, HasSubstr("visible"));
}

// ---- Destruction ----

TEST_P(ReactorConformance, DestroyingWithPendingWorkRunsNothingAndReleasesEverything) {
  allow_pending();
  SocketPair pair;
  auto ran = std::make_shared<int>(0);
  // Each callback owns a copy of `ran`: if any callback were leaked, use_count
  // would stay > 1.
  reactor().call_soon([ran] { ++*ran; });
  reactor().call_later(1h, [ran] { ++*ran; });
  reactor().call_from_thread([ran] { ++*ran; });
  reactor().watch_readable(pair.fd[0], [ran] { ++*ran; });
  reactor().watch_writable(pair.fd[0], [ran] { ++*ran; });
  reactor().watch_signal(SIGUSR1, [ran] { ++*ran; });
  std::thread([&] { reactor().call_from_thread([ran] { ++*ran; }); }).join();
  EXPECT_EQ(ran.use_count(), 8);
  reactor_.reset();
  EXPECT_EQ(*ran, 0);
  EXPECT_EQ(ran.use_count(), 1);
}

TEST_P(ReactorConformance, CallbackDestructorThatQueuesWorkDuringDestructionIsReleasedToo) {
  allow_pending();
  // A callback whose destructor queues another such callback, three deep.
  struct Requeue {
    Reactor* reactor;
    int* depth;
    int* live;
    Requeue(Reactor* r, int* d, int* l) : reactor(r), depth(d), live(l) { ++*live; }
    Requeue(Requeue&& other) noexcept
        : reactor(std::exchange(other.reactor, nullptr)), depth(other.depth), live(other.live) {
      ++*live;
    }
    ~Requeue() {
      --*live;
      if (reactor != nullptr && *depth < 3) {
        ++*depth;
        reactor->call_soon([again = Requeue(reactor, depth, live)] {});
      }
    }
  };
  int depth = 0;
  int live = 0;
  reactor().call_soon([first = Requeue(&reactor(), &depth, &live)] {});
  reactor_.reset();
  EXPECT_EQ(depth, 3);
  EXPECT_EQ(live, 0);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReactorConformance,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);
INSTANTIATE_TEST_SUITE_P(AllBackends, ReactorTimers, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);
INSTANTIATE_TEST_SUITE_P(VirtualTime, ReactorTimers,
                         ::testing::ValuesIn(testing::virtual_backend_names()),
                         testing::param_name);

// Prints which backends the suite ran on, and checks each compiled backend
// registered itself.
TEST(ReactorConformanceBackends, EveryCompiledBackendIsRegistered) {
  std::string listed;
  for (const BackendInfo& info : available_backends()) listed += " " + info.label() + ";";
  std::printf("conformance suite runs on:%s\n", listed.c_str());
  for (absl::string_view expected :
       absl::StrSplit(WEFT_EXPECTED_BACKENDS, ',', absl::SkipEmpty())) {
    EXPECT_THAT(testing::backend_names(), ::testing::Contains(std::string(expected)))
        << "backend compiled in but not registered";
  }
}

}  // namespace
}  // namespace weft
