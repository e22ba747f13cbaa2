#include "weft/core/detail/timer_queue.h"

#include <map>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace weft::detail {
namespace {

TimePoint at(int ns) { return TimePoint(std::chrono::nanoseconds(ns)); }
constexpr std::uint64_t kAll = ~std::uint64_t{0};
// A Callback for the queue. Not inlined: GCC 12 takes the move of an inlined capture-less lambda's
// AnyInvocable for a read of uninitialized bytes (-Wmaybe-uninitialized).
[[gnu::noinline]] TimerQueue::Callback call(TimerQueue::Callback callback) { return callback; }

TEST(TimerQueue, PopsInDeadlineOrderAndEqualDeadlinesInPushOrder) {
  TimerQueue queue;
  std::vector<int> order;
  int next = 0;
  std::vector<std::pair<int, int>> pushed = {{5, 0}, {1, 1}, {3, 2}, {1, 3}, {5, 4}, {2, 5}};
  for (auto [deadline, tag] : pushed)
    queue.push(at(deadline), call([&order, tag] { order.push_back(tag); }));
  QueuedCall callback;
  while (queue.pop_due(at(100), kAll, callback)) {
    callback.run();
    ++next;
  }
  EXPECT_EQ(next, 6);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 5, 2, 0, 4}));
}

TEST(TimerQueue, PopDueLeavesTimersThatAreNotDue) {
  TimerQueue queue;
  queue.push(at(10), call([] {}));
  QueuedCall callback;
  EXPECT_FALSE(queue.pop_due(at(9), kAll, callback));
  EXPECT_TRUE(queue.pop_due(at(10), kAll, callback));
  EXPECT_TRUE(queue.empty());
}

TEST(TimerQueue, CancelRemovesOnlyThatTimerAndStaleIdsAreRefused) {
  TimerQueue queue;
  int ran = 0;
  TimerId a = queue.push(at(1), call([&] { ran += 1; }));
  TimerId b = queue.push(at(2), call([&] { ran += 10; }));
  EXPECT_TRUE(queue.cancel(a));
  EXPECT_FALSE(queue.cancel(a));
  EXPECT_FALSE(queue.pending(a));
  // The slot is reused by the next push; the old id must not name the new
  // timer.
  TimerId c = queue.push(at(3), call([&] { ran += 100; }));
  EXPECT_EQ(c.slot, a.slot);
  EXPECT_FALSE(queue.cancel(a));
  EXPECT_TRUE(queue.pending(c));
  QueuedCall callback;
  while (queue.pop_due(at(10), kAll, callback)) callback.run();
  EXPECT_EQ(ran, 110);
  EXPECT_FALSE(queue.pending(b));
}

TEST(TimerQueue, DefaultIdNamesNoTimer) {
  TimerQueue queue;
  queue.push(at(1), call([] {}));
  EXPECT_FALSE(queue.pending(TimerId{}));
  EXPECT_FALSE(queue.cancel(TimerId{}));
}

TEST(TimerQueue, RandomPushesAndCancelsMatchAReferenceModel) {
  std::mt19937 rng(12345);
  TimerQueue queue;
  std::multimap<std::pair<int, int>, int> model;  // (deadline, seq) -> tag
  std::vector<std::pair<TimerId, std::pair<int, int>>> live;
  std::vector<int> popped;
  int seq = 0;
  for (int step = 0; step < 20000; ++step) {
    const int action = rng() % 3;
    if (action < 2 || live.empty()) {
      const int deadline = static_cast<int>(rng() % 1000);
      const int tag = seq;
      TimerId id = queue.push(at(deadline), call([&popped, tag] { popped.push_back(tag); }));
      model.emplace(std::make_pair(deadline, seq), tag);
      live.emplace_back(id, std::make_pair(deadline, seq));
      ++seq;
    } else {
      const std::size_t pick = rng() % live.size();
      EXPECT_TRUE(queue.cancel(live[pick].first));
      model.erase(live[pick].second);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
    }
    ASSERT_EQ(queue.size(), model.size());
  }
  QueuedCall callback;
  while (queue.pop_due(at(1000), kAll, callback)) callback.run();
  std::vector<int> expected;
  for (const auto& [key, tag] : model) expected.push_back(tag);
  EXPECT_EQ(popped, expected);
}

TEST(TimerQueue, CallbackDestructorMayPushDuringCancel) {
  TimerQueue queue;
  struct PushOnDestroy {
    TimerQueue* queue;
    explicit PushOnDestroy(TimerQueue* q) : queue(q) {}
    PushOnDestroy(PushOnDestroy&& o) noexcept : queue(std::exchange(o.queue, nullptr)) {}
    ~PushOnDestroy() {
      if (queue != nullptr) queue->push(at(7), call([] {}));
    }
    void operator()() {}
  };
  TimerId id = queue.push(at(1), call(PushOnDestroy(&queue)));
  EXPECT_TRUE(queue.cancel(id));
  EXPECT_EQ(queue.size(), 1u);
}

}  // namespace
}  // namespace weft::detail

namespace weft::detail {
namespace {

TEST(TimerQueue, PopDueSkipsTimersPushedAfterTheCutoff) {
  TimerQueue queue;
  queue.push(at(1), call([] {}));
  const std::uint64_t cutoff = queue.next_sequence();
  queue.push(at(0), call([] {}));  // earlier deadline, but pushed after the pass began
  QueuedCall callback;
  EXPECT_FALSE(queue.pop_due(at(5), cutoff, callback)) << "the later push is at the front";
  EXPECT_TRUE(queue.due(at(5)));
  EXPECT_TRUE(queue.pop_due(at(5), kAll, callback));
  callback.run();  // a popped call must run (or be dropped) before the next pop
  EXPECT_TRUE(queue.pop_due(at(5), kAll, callback));
}

TEST(TimerQueue, RescheduleMovesAPendingTimerAndKeepsItsCallback) {
  TimerQueue queue;
  int ran = 0;
  const TimerId id = queue.push(at(10), call([&] { ++ran; }));
  queue.push(at(20), call([&] { ran += 10; }));
  EXPECT_TRUE(queue.reschedule(id, at(30)));
  EXPECT_EQ(queue.deadline(id), at(30));
  QueuedCall callback;
  ASSERT_TRUE(queue.pop_due(at(30), kAll, callback));
  callback.run();
  EXPECT_EQ(ran, 10);
  ASSERT_TRUE(queue.pop_due(at(30), kAll, callback));
  callback.run();
  EXPECT_EQ(ran, 11);
  EXPECT_FALSE(queue.reschedule(id, at(40))) << "a timer that ran is not pending";
}

TEST(TimerQueue, PlainCallsAndCallbacksShareOneOrderAndOneCancelRule) {
  // A small trivially copyable callable is kept by value (a plain call), a bigger one as a
  // Callback: the heap neither knows nor cares.
  TimerQueue queue;
  std::vector<int> order;
  std::vector<int>* log = &order;
  const std::vector<int> big = {7, 7, 7};
  const PlainCall two = plain_call([log] { log->push_back(2); });
  const PlainCall minus_one = plain_call([log] { log->push_back(-1); });
  const PlainCall zero = plain_call([log] { log->push_back(0); });
  queue.push(at(2), two.fn, two.a, two.b);
  queue.push(at(1), call([log, big] { log->push_back(static_cast<int>(big.size())); }));
  const TimerId dropped = queue.push(at(1), minus_one.fn, minus_one.a, minus_one.b);
  queue.push_after(std::chrono::nanoseconds(0), zero.fn, zero.a, zero.b);
  EXPECT_TRUE(queue.pending(dropped));
  EXPECT_TRUE(queue.cancel(dropped));
  EXPECT_FALSE(queue.pending(dropped));
  EXPECT_FALSE(queue.cancel(dropped));
  queue.flush(at(1));
  QueuedCall popped;
  EXPECT_FALSE(popped.pending());
  while (queue.pop_due(at(10), kAll, popped)) {
    EXPECT_TRUE(popped.pending());
    popped.run();
    EXPECT_FALSE(popped.pending()) << "a call that ran is not pending, whatever its kind";
  }
  EXPECT_EQ(order, (std::vector<int>{3, 0, 2}));
  EXPECT_TRUE(queue.empty());
}

TEST(TimerQueue, AParkedTimerIsNotPendingKeepsItsSlotAndCanBeArmedAgain) {
  TimerQueue queue;
  int ran = 0;
  const TimerId id = queue.push(at(5), call([&] { ++ran; }));
  const TimerId other = queue.push(at(7), call([&] { ran += 10; }));
  EXPECT_TRUE(queue.park(id));
  EXPECT_FALSE(queue.pending(id));
  EXPECT_FALSE(queue.park(id)) << "parked is not pending";
  EXPECT_EQ(queue.size(), 1u);
  QueuedCall popped;
  EXPECT_TRUE(queue.pop_due(at(100), kAll, popped)) << "only the other timer";
  popped.run();
  EXPECT_EQ(ran, 10);
  EXPECT_FALSE(queue.pending(other));
  EXPECT_TRUE(queue.empty()) << "a parked timer keeps nothing running";
  // Armed again, with its slot and call, from the heap or the deferred list.
  EXPECT_TRUE(queue.reschedule(id, at(200)));
  EXPECT_TRUE(queue.pending(id));
  EXPECT_EQ(queue.deadline(id), at(200));
  EXPECT_TRUE(queue.park(id));
  EXPECT_TRUE(queue.reschedule_after(id, std::chrono::nanoseconds(3)));
  EXPECT_EQ(queue.deferred(), 1u);
  queue.flush(at(300));
  EXPECT_EQ(queue.deadline(id), at(303));
  EXPECT_TRUE(queue.pop_due(at(303), kAll, popped));
  popped.run();
  EXPECT_EQ(ran, 11);
  EXPECT_FALSE(queue.reschedule(id, at(400))) << "it ran: the id is stale";
  // Cancelling a parked timer gives its slot back and prevents nothing.
  const TimerId parked = queue.push(at(1), call([&] { ran += 100; }));
  EXPECT_TRUE(queue.park(parked));
  EXPECT_FALSE(queue.cancel(parked));
  EXPECT_FALSE(queue.reschedule(parked, at(2))) << "its slot was given back";
  const TimerId reused = queue.push(at(1), call([] {}));
  EXPECT_EQ(reused.slot, parked.slot);
  EXPECT_TRUE(queue.cancel(reused));
  EXPECT_EQ(ran, 11);
  EXPECT_TRUE(queue.empty());
}

TEST(TimerQueue, DeferredTimersTakeTheirDeadlineAtTheFlushInPushOrder) {
  TimerQueue queue;
  std::vector<int> order;
  const TimerId late =
      queue.push_after(std::chrono::nanoseconds(5), call([&] { order.push_back(0); }));
  queue.push(at(3), call([&] { order.push_back(1); }));
  queue.push_after(std::chrono::nanoseconds(0), call([&] { order.push_back(2); }));
  queue.push_after(std::chrono::nanoseconds(5), call([&] { order.push_back(3); }));
  EXPECT_EQ(queue.size(), 4u);
  EXPECT_EQ(queue.deferred(), 3u);
  EXPECT_TRUE(queue.pending(late));
  queue.flush(at(10));
  EXPECT_EQ(queue.deferred(), 0u);
  EXPECT_FALSE(queue.has_deferred());
  EXPECT_EQ(queue.deadline(late), at(15));
  QueuedCall callback;
  EXPECT_TRUE(queue.pop_due(at(10), kAll, callback));  // at(3)
  callback.run();
  EXPECT_TRUE(queue.pop_due(at(10), kAll, callback));  // 0 after the flush
  callback.run();
  EXPECT_FALSE(queue.pop_due(at(14), kAll, callback)) << "5 ns after the flush, not before";
  while (queue.pop_due(at(15), kAll, callback)) callback.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 0, 3}));
  EXPECT_TRUE(queue.empty());
}

TEST(TimerQueue, CancellingADeferredTimerLeavesNothingToFlush) {
  TimerQueue queue;
  int destroyed = 0;
  struct CountOnDestroy {
    int* count;
    explicit CountOnDestroy(int* c) : count(c) {}
    CountOnDestroy(CountOnDestroy&& o) noexcept : count(std::exchange(o.count, nullptr)) {}
    ~CountOnDestroy() {
      if (count != nullptr) ++*count;
    }
    void operator()() {}
  };
  const TimerId kept = queue.push_after(std::chrono::nanoseconds(1), call([] {}));
  for (int i = 0; i < 100; ++i) {
    const TimerId id =
        queue.push_after(std::chrono::nanoseconds(i), call(CountOnDestroy(&destroyed)));
    EXPECT_TRUE(queue.cancel(id));
    EXPECT_FALSE(queue.pending(id));
    EXPECT_FALSE(queue.cancel(id));
  }
  EXPECT_EQ(destroyed, 100);
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_TRUE(queue.cancel(kept));
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.has_deferred()) << "cancelled entries at the tail are dropped at once";
}

TEST(TimerQueue, RescheduleMovesTimersBetweenTheHeapAndTheDeferredList) {
  TimerQueue queue;
  std::vector<int> order;
  const TimerId a = queue.push(at(1), call([&] { order.push_back(0); }));
  const TimerId b =
      queue.push_after(std::chrono::nanoseconds(1), call([&] { order.push_back(1); }));
  queue.push(at(2), call([&] { order.push_back(2); }));
  EXPECT_TRUE(queue.reschedule_after(a, std::chrono::nanoseconds(3)));  // heap -> deferred
  EXPECT_TRUE(queue.reschedule(b, at(4)));                              // deferred -> heap
  EXPECT_EQ(queue.deferred(), 1u);
  EXPECT_EQ(queue.size(), 3u);
  queue.flush(at(0));
  EXPECT_EQ(queue.deadline(a), at(3));
  EXPECT_EQ(queue.deadline(b), at(4));
  QueuedCall callback;
  while (queue.pop_due(at(10), kAll, callback)) callback.run();
  EXPECT_EQ(order, (std::vector<int>{2, 0, 1}));
}

TEST(TimerQueue, RandomDeferredPushesFlushesAndCancelsMatchAReferenceModel) {
  std::mt19937 rng(54321);
  TimerQueue queue;
  std::multimap<std::pair<int, int>, int> model;  // flushed: (deadline, seq) -> tag
  std::vector<std::pair<int, int>> waiting;       // deferred, in push order: (delay, tag)
  struct Live {
    TimerId id;
    int tag;
  };
  std::vector<Live> live;
  std::vector<int> popped;
  int tag = 0;
  int seq = 0;
  int now = 0;
  auto erase_tag = [&](int t) {
    for (auto it = model.begin(); it != model.end(); ++it) {
      if (it->second == t) {
        model.erase(it);
        return;
      }
    }
    for (auto it = waiting.begin(); it != waiting.end(); ++it) {
      if (it->second == t) {
        waiting.erase(it);
        return;
      }
    }
    FAIL() << "tag " << t << " is in neither";
  };
  for (int step = 0; step < 20000; ++step) {
    const int action = static_cast<int>(rng() % 8);
    if (action < 3 || live.empty()) {
      const int delay = static_cast<int>(rng() % 1000);
      const int t = tag++;
      auto run = [&popped, t] { popped.push_back(t); };
      if (action == 0) {
        live.push_back({queue.push(at(now + delay), call(run)), t});
        model.emplace(std::make_pair(now + delay, seq++), t);
      } else {
        live.push_back({queue.push_after(std::chrono::nanoseconds(delay), call(run)), t});
        waiting.emplace_back(delay, t);
      }
    } else if (action < 5) {
      const std::size_t pick = rng() % live.size();
      EXPECT_TRUE(queue.cancel(live[pick].id));
      erase_tag(live[pick].tag);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
    } else if (action == 5) {
      const std::size_t pick = rng() % live.size();
      const int delay = static_cast<int>(rng() % 1000);
      EXPECT_TRUE(queue.reschedule_after(live[pick].id, std::chrono::nanoseconds(delay)));
      erase_tag(live[pick].tag);
      waiting.emplace_back(delay, live[pick].tag);
    } else {
      now += static_cast<int>(rng() % 10);
      queue.flush(at(now));
      for (auto [delay, t] : waiting) model.emplace(std::make_pair(now + delay, seq++), t);
      waiting.clear();
    }
    ASSERT_EQ(queue.size(), model.size() + waiting.size());
    ASSERT_EQ(queue.deferred(), waiting.size());
  }
  queue.flush(at(now));
  for (auto [delay, t] : waiting) model.emplace(std::make_pair(now + delay, seq++), t);
  QueuedCall callback;
  while (queue.pop_due(at(now + 1000), kAll, callback)) callback.run();
  std::vector<int> expected;
  for (const auto& [key, t] : model) expected.push_back(t);
  EXPECT_EQ(popped, expected);
}

TEST(TimerQueue, GivesMemoryBackAfterABurstAndStaleIdsStayStale) {
  TimerQueue queue;
  std::vector<TimerId> ids;
  for (std::size_t i = 0; i < TimerQueue::kKeepNodes * 4; ++i) {
    ids.push_back(queue.push(at(static_cast<int>(i)), call([] {})));
  }
  QueuedCall callback;
  while (queue.pop_due(at(1 << 30), kAll, callback)) {
  }
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.slab_size(), TimerQueue::kKeepNodes * 4);  // kept until trimmed
  queue.trim_if_idle();
  EXPECT_EQ(queue.slab_size(), 0u);
  // A fresh timer lands in a reused slot number; no old id may name it.
  const TimerId fresh = queue.push(at(1), call([] {}));
  for (const TimerId& old : ids) EXPECT_FALSE(queue.pending(old));
  EXPECT_TRUE(queue.pending(fresh));
  EXPECT_TRUE(queue.cancel(fresh));
}

TEST(TimerQueue, ABurstThatFollowsABurstReusesItsMemoryUntilTrimmed) {
  TimerQueue queue;
  constexpr std::size_t kBurst = TimerQueue::kKeepNodes * 2;
  QueuedCall callback;
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < kBurst; ++i) queue.push(at(static_cast<int>(i)), call([] {}));
    EXPECT_EQ(queue.slab_size(), kBurst);  // the same slots, round after round
    // Not idle: trimming keeps everything.
    queue.trim_if_idle();
    EXPECT_EQ(queue.size(), kBurst);
    std::size_t ran = 0;
    while (queue.pop_due(at(1 << 30), kAll, callback)) ++ran;
    EXPECT_EQ(ran, kBurst);
  }
  // Cancelling the last timer leaves the memory too, until a trim.
  const TimerId last = queue.push(at(1), call([] {}));
  EXPECT_TRUE(queue.cancel(last));
  EXPECT_EQ(queue.slab_size(), kBurst);
  queue.trim_if_idle();
  EXPECT_EQ(queue.slab_size(), 0u);
  // A small queue keeps its slab: nothing to give back.
  queue.push(at(1), call([] {}));
  while (queue.pop_due(at(1 << 30), kAll, callback)) {
  }
  queue.trim_if_idle();
  EXPECT_EQ(queue.slab_size(), 1u);
}

TEST(TimerQueue, AnEmptiedBurstHandsItsSlotsOutInOrderAndKeepsParkedTimersTheirs) {
  TimerQueue queue;
  constexpr std::size_t kBurst = TimerQueue::kKeepNodes * 2;
  int parked_runs = 0;
  const TimerId parked = queue.push(at(5), call([&parked_runs] { ++parked_runs; }));
  ASSERT_TRUE(queue.park(parked));
  // Deadlines shuffled against the arming order, so that the burst is freed out of slot order.
  for (std::size_t i = 0; i < kBurst; ++i) {
    queue.push(at(static_cast<int>(i * 7919 % kBurst) + 1), call([] {}));
  }
  QueuedCall callback;
  while (queue.pop_due(at(1 << 30), kAll, callback)) callback.run();
  ASSERT_TRUE(queue.empty());
  // The next burst takes the slots from the lowest up, skipping the parked timer's.
  std::uint32_t expected = 0;
  for (std::size_t i = 0; i < kBurst; ++i) {
    if (expected == parked.slot) ++expected;
    EXPECT_EQ(queue.push(at(1), call([] {})).slot, expected++);
  }
  while (queue.pop_due(at(1 << 30), kAll, callback)) callback.run();
  // Emptied again by a few timers, not a burst: no second pass over the slab (it would cost
  // O(slab) each time a lone timeout is armed and cancelled); the last freed slot comes first.
  const TimerId a = queue.push(at(1), call([] {}));
  const TimerId b = queue.push(at(1), call([] {}));
  ASSERT_TRUE(queue.cancel(a));
  ASSERT_TRUE(queue.cancel(b));
  EXPECT_EQ(queue.push(at(1), call([] {})).slot, b.slot);
  // The parked timer is still itself: it runs when rescheduled, and only once.
  ASSERT_TRUE(queue.reschedule(parked, at(0)));
  while (queue.pop_due(at(1 << 30), kAll, callback)) callback.run();
  EXPECT_EQ(parked_runs, 1);
}

}  // namespace
}  // namespace weft::detail
