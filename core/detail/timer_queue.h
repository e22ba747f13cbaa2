// TimerQueue: the reactor's one timer structure, a 4-ary min-heap over
// slab-allocated nodes.
//
// Why not one native timer per call_later: every native library pays for its
// own bookkeeping per timer (libuv's heap node, libevent's minheap entry plus
// event, Asio's timer queue entry); weft keeps one heap and arms one native
// timer for its earliest deadline. Nodes live in a slab reused through a free
// list, so steady-state arming allocates nothing. A TimerId names a slot plus a
// generation, so a stale id (the timer ran or was cancelled) is recognised, not
// misused.
//
// Ordering: earliest deadline first; equal deadlines in the order they were
// pushed. Threading: loop thread only (owned by the Reactor).
#ifndef WEFT_CORE_DETAIL_TIMER_QUEUE_H_
#define WEFT_CORE_DETAIL_TIMER_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "core/time.h"

namespace weft::detail {

struct TimerId {
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;  // 0 never names a live timer
};

class TimerQueue {
 public:
  using Callback = absl::AnyInvocable<void()>;

  TimerId push(TimePoint deadline, Callback callback);

  // Removes a pending timer; false if `id` is not pending (already ran,
  // cancelled, stale).
  bool cancel(TimerId id);
  bool pending(TimerId id) const;

  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  // Requires !empty().
  TimePoint next_deadline() const { return TimePoint(Duration(heap_.front().deadline)); }

  // If the earliest timer is due at `now`, removes it, moves its callback into
  // `out` and returns true. The timer is no longer pending when its callback
  // runs.
  bool pop_due(TimePoint now, Callback& out);

  // Drops every pending timer without running it.
  void clear();

 private:
  struct Node {
    Callback callback;
    std::uint32_t generation = 1;
    std::uint32_t heap_index = 0;
  };
  struct Entry {
    std::int64_t deadline;  // nanoseconds on Clock
    std::uint64_t sequence;
    std::uint32_t slot;
  };
  static bool before(const Entry& a, const Entry& b) {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence);
  }
  void place(std::size_t index, const Entry& entry) {
    heap_[index] = entry;
    nodes_[entry.slot].heap_index = static_cast<std::uint32_t>(index);
  }
  void sift_up(std::size_t index, Entry entry);
  void sift_down(std::size_t index, Entry entry);
  void remove_at(std::size_t index);
  void release(std::uint32_t slot);

  std::vector<Entry> heap_;
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_TIMER_QUEUE_H_
