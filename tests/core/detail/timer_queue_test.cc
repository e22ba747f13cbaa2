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

TEST(TimerQueue, PopsInDeadlineOrderAndEqualDeadlinesInPushOrder) {
  TimerQueue queue;
  std::vector<int> order;
  int next = 0;
  std::vector<std::pair<int, int>> pushed = {{5, 0}, {1, 1}, {3, 2}, {1, 3}, {5, 4}, {2, 5}};
  for (auto [deadline, tag] : pushed)
    queue.push(at(deadline), [&order, tag] { order.push_back(tag); });
  TimerQueue::Callback callback;
  while (queue.pop_due(at(100), kAll, callback)) {
    callback();
    ++next;
  }
  EXPECT_EQ(next, 6);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 5, 2, 0, 4}));
}

TEST(TimerQueue, PopDueLeavesTimersThatAreNotDue) {
  TimerQueue queue;
  queue.push(at(10), [] {});
  TimerQueue::Callback callback;
  EXPECT_FALSE(queue.pop_due(at(9), kAll, callback));
  EXPECT_TRUE(queue.pop_due(at(10), kAll, callback));
  EXPECT_TRUE(queue.empty());
}

TEST(TimerQueue, CancelRemovesOnlyThatTimerAndStaleIdsAreRefused) {
  TimerQueue queue;
  int ran = 0;
  TimerId a = queue.push(at(1), [&] { ran += 1; });
  TimerId b = queue.push(at(2), [&] { ran += 10; });
  EXPECT_TRUE(queue.cancel(a));
  EXPECT_FALSE(queue.cancel(a));
  EXPECT_FALSE(queue.pending(a));
  // The slot is reused by the next push; the old id must not name the new
  // timer.
  TimerId c = queue.push(at(3), [&] { ran += 100; });
  EXPECT_EQ(c.slot, a.slot);
  EXPECT_FALSE(queue.cancel(a));
  EXPECT_TRUE(queue.pending(c));
  TimerQueue::Callback callback;
  while (queue.pop_due(at(10), kAll, callback)) callback();
  EXPECT_EQ(ran, 110);
  EXPECT_FALSE(queue.pending(b));
}

TEST(TimerQueue, DefaultIdNamesNoTimer) {
  TimerQueue queue;
  queue.push(at(1), [] {});
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
      TimerId id = queue.push(at(deadline), [&popped, tag] { popped.push_back(tag); });
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
  TimerQueue::Callback callback;
  while (queue.pop_due(at(1000), kAll, callback)) callback();
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
      if (queue != nullptr) queue->push(at(7), [] {});
    }
    void operator()() {}
  };
  TimerId id = queue.push(at(1), PushOnDestroy(&queue));
  EXPECT_TRUE(queue.cancel(id));
  EXPECT_EQ(queue.size(), 1u);
}

}  // namespace
}  // namespace weft::detail

namespace weft::detail {
namespace {

TEST(TimerQueue, PopDueSkipsTimersPushedAfterTheCutoff) {
  TimerQueue queue;
  queue.push(at(1), [] {});
  const std::uint64_t cutoff = queue.next_sequence();
  queue.push(at(0), [] {});  // earlier deadline, but pushed after the pass began
  TimerQueue::Callback callback;
  EXPECT_FALSE(queue.pop_due(at(5), cutoff, callback)) << "the later push is at the front";
  EXPECT_TRUE(queue.due(at(5)));
  EXPECT_TRUE(queue.pop_due(at(5), kAll, callback));
  EXPECT_TRUE(queue.pop_due(at(5), kAll, callback));
}

TEST(TimerQueue, RescheduleMovesAPendingTimerAndKeepsItsCallback) {
  TimerQueue queue;
  int ran = 0;
  const TimerId id = queue.push(at(10), [&] { ++ran; });
  queue.push(at(20), [&] { ran += 10; });
  EXPECT_TRUE(queue.reschedule(id, at(30)));
  EXPECT_EQ(queue.deadline(id), at(30));
  TimerQueue::Callback callback;
  ASSERT_TRUE(queue.pop_due(at(30), kAll, callback));
  callback();
  EXPECT_EQ(ran, 10);
  ASSERT_TRUE(queue.pop_due(at(30), kAll, callback));
  callback();
  EXPECT_EQ(ran, 11);
  EXPECT_FALSE(queue.reschedule(id, at(40))) << "a timer that ran is not pending";
}

TEST(TimerQueue, GivesMemoryBackAfterABurstAndStaleIdsStayStale) {
  TimerQueue queue;
  std::vector<TimerId> ids;
  for (std::size_t i = 0; i < TimerQueue::kKeepNodes * 4; ++i) {
    ids.push_back(queue.push(at(static_cast<int>(i)), [] {}));
  }
  TimerQueue::Callback callback;
  while (queue.pop_due(at(1 << 30), kAll, callback)) {
  }
  EXPECT_TRUE(queue.empty());
  // A fresh timer lands in a reused slot number; no old id may name it.
  const TimerId fresh = queue.push(at(1), [] {});
  for (const TimerId& old : ids) EXPECT_FALSE(queue.pending(old));
  EXPECT_TRUE(queue.pending(fresh));
  EXPECT_TRUE(queue.cancel(fresh));
}

}  // namespace
}  // namespace weft::detail
