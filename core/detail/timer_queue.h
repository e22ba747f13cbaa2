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
#include "weft/core/time.h"

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
  // The deadline of a pending timer; requires pending(id).
  TimePoint deadline(TimerId id) const {
    return TimePoint(Duration(heap_[nodes_[id.slot].heap_index].deadline));
  }
  // Moves a pending timer to `deadline`, as if pushed now (it goes after timers with the same
  // deadline). False if `id` is not pending.
  bool reschedule(TimerId id, TimePoint deadline);

  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  // Requires !empty().
  TimePoint next_deadline() const { return TimePoint(Duration(heap_.front().deadline)); }

  // If the earliest timer is due at `now` and was pushed (or rescheduled) before `cutoff`
  // (a value of next_sequence()), removes it, moves its callback into `out` and returns true.
  // The timer is no longer pending when its callback runs. The cutoff keeps a timer pass from
  // running timers that its own callbacks added.
  bool pop_due(TimePoint now, std::uint64_t cutoff, Callback& out);
  std::uint64_t next_sequence() const { return next_sequence_; }
  // True if the earliest timer is due at `now` (whatever its sequence).
  bool due(TimePoint now) const {
    return !heap_.empty() && heap_.front().deadline <= now.time_since_epoch().count();
  }

  // Drops every pending timer without running it.
  void clear();

  // Memory: the heap and the slab keep their size while timers are pending, and are given back
  // when the queue empties after a burst (more than kKeepNodes nodes), so that a million timers
  // armed once do not pin their memory for the reactor's life.
  static constexpr std::size_t kKeepNodes = 4096;

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
  void shrink_if_idle();

  std::vector<Entry> heap_;
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_sequence_ = 0;
  // Generation of nodes made after a shrink: above every generation handed out before, so a
  // stale TimerId never names a new timer.
  std::uint32_t generation_base_ = 1;
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_TIMER_QUEUE_H_
