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
// Deferred deadlines: push_after() stores a timer by its delay alone; flush(now) gives every
// such timer the deadline now + delay, in the order they were pushed. The reactor uses it for
// call_later() inside a callback: one clock read when the callback returns, taken after every
// call it made, so no deadline is early, instead of one read per timer (docs/time.md). A
// deferred timer is pending and can be cancelled (no heap work at all) or rescheduled; the
// heap queries (next_deadline, pop_due, due, deadline) need it flushed first.
//
// Ordering: earliest deadline first; equal deadlines in the order they were
// pushed (a deferred timer: flushed). Threading: loop thread only (owned by the Reactor).
#ifndef WEFT_CORE_DETAIL_TIMER_QUEUE_H_
#define WEFT_CORE_DETAIL_TIMER_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "weft/core/detail/queued_call.h"
#include "weft/core/time.h"

namespace weft::detail {

struct TimerId {
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;  // 0 never names a live timer
};

class TimerQueue {
 public:
  using Callback = QueuedCall::Callback;

  // A timer whose call is made by QueuedCall::set(call...): a Callback (not empty), or the
  // plain call fn, a, b (core/detail/queued_call.h). Inline, so that a plain call stays in
  // registers.
  template <typename... Call>
  TimerId push(TimePoint deadline, Call&&... call) {
    const std::uint32_t slot = take_slot();
    nodes_[slot].call.set(std::forward<Call>(call)...);
    return insert(slot, deadline);
  }
  // A timer whose deadline is `delay` after the `now` of the next flush().
  template <typename... Call>
  TimerId push_after(Duration delay, Call&&... call) {
    const std::uint32_t slot = take_slot();
    nodes_[slot].call.set(std::forward<Call>(call)...);
    return defer(slot, delay);
  }
  // Gives every deferred timer its deadline, `now` + its delay (saturating), in push order.
  void flush(TimePoint now);
  // Deferred timers still pending (not cancelled or rescheduled).
  std::size_t deferred() const { return deferred_live_; }
  // Anything for flush() to look at, cancelled entries included: a flush with deferred() == 0
  // only forgets them, and needs no clock.
  bool has_deferred() const { return !deferred_.empty(); }

  // Removes a pending timer; false if `id` is not pending (already ran,
  // cancelled, stale). A parked timer (below) is not pending, but its slot is given back.
  // Inline, as are the other operations a re-armed or cancelled timer makes (arming one and
  // cancelling it inside a callback is a handful of stores; as calls into timer_queue.cc
  // they were half of it).
  bool cancel(TimerId id) {
    if (!pending_or_parked(id)) return false;
    const bool was_pending = nodes_[id.slot].heap_index != kParked;
    // Destroying a Callback can run arbitrary destructors; do it after the heap is consistent.
    QueuedCall dropped;
    dropped.take(nodes_[id.slot].call);
    unlink(id.slot);
    release(id.slot);
    restart_free_order_if_idle();
    return was_pending;
  }
  bool pending(TimerId id) const {
    return pending_or_parked(id) && nodes_[id.slot].heap_index != kParked;
  }
  // Parks a pending timer: it leaves the heap (or the deferred list) and is no longer pending,
  // but keeps its slot and its call, so that reschedule() or reschedule_after() can arm it
  // again without taking a slot or a call anew (a re-armable Timer's stop, core/timer.h). A
  // parked timer is not counted by size() or empty(); cancel() gives its slot back. False, and
  // nothing done, if `id` is not pending.
  bool park(TimerId id) {
    if (!pending(id)) return false;
    unlink(id.slot);
    nodes_[id.slot].heap_index = kParked;
    return true;
  }
  // The deadline of a pending timer; requires pending(id) and the timer not deferred.
  TimePoint deadline(TimerId id) const {
    return TimePoint(Duration(heap_[nodes_[id.slot].heap_index].deadline));
  }
  // Moves a pending or parked timer to `deadline`, as if pushed now (it goes after timers with
  // the same deadline). False if `id` is neither.
  bool reschedule(TimerId id, TimePoint deadline) {
    if (!pending_or_parked(id)) return false;
    unlink(id.slot);
    insert(id.slot, deadline);
    return true;
  }
  // The same, with the deadline deferred: `delay` after the next flush().
  bool reschedule_after(TimerId id, Duration delay) {
    if (!pending_or_parked(id)) return false;
    unlink(id.slot);
    defer(id.slot, delay);
    return true;
  }

  bool empty() const { return heap_.empty() && deferred_live_ == 0; }
  std::size_t size() const { return heap_.size() + deferred_live_; }
  // The earliest flushed deadline. Requires a timer in the heap (!empty() and no deferred()).
  TimePoint next_deadline() const { return TimePoint(Duration(heap_.front().deadline)); }

  // If the earliest timer is due at `now` and was pushed (or rescheduled) before `cutoff`
  // (a value of next_sequence()), removes it, moves its call into `out` (which must not be
  // pending) and returns true. The timer is no longer pending when its call runs. The cutoff
  // keeps a timer pass from running timers that its own callbacks added.
  bool pop_due(TimePoint now, std::uint64_t cutoff, QueuedCall& out);
  std::uint64_t next_sequence() const { return next_sequence_; }
  // True if the earliest timer is due at `now` (whatever its sequence).
  bool due(TimePoint now) const {
    return !heap_.empty() && heap_.front().deadline <= now.time_since_epoch().count();
  }

  // Drops every pending timer without running it.
  void clear();

  // Memory: the heap and the slab keep their size while timers are pending and until
  // trim_if_idle() finds the queue empty; it gives a burst's memory back (more than kKeepNodes
  // nodes), so that a million timers armed once do not pin their memory for the reactor's life.
  // The reactor calls it at the start of a turn, not as the last timer goes: a burst that
  // follows another before the loop turns again (arm, run them all, arm again) reuses the
  // memory instead of growing and faulting it in anew, which cost 4-5x the arming itself
  // (timers_arm, docs/benchmarks.md).
  static constexpr std::size_t kKeepNodes = 4096;
  void trim_if_idle() {
    if (nodes_.size() > kKeepNodes && empty()) shrink();
  }
  // Timers the slab has room for without growing (for tests).
  std::size_t slab_size() const { return nodes_.size(); }

 private:
  struct Node {
    QueuedCall call;  // pending while the timer is
    std::uint32_t generation = 1;
    // Where the timer is: heap_[heap_index], or, with kDeferredBit set, deferred_[the rest].
    std::uint32_t heap_index = 0;
  };
  static constexpr std::uint32_t kDeferredBit = 1u << 31;
  static constexpr std::uint32_t kParked = ~std::uint32_t{0};  // in neither
  bool pending_or_parked(TimerId id) const {
    return id.slot < nodes_.size() && nodes_[id.slot].generation == id.generation &&
           nodes_[id.slot].call.pending();
  }
  // A deferred timer: its delay and slot (kNoSlot once cancelled or rescheduled).
  struct Deferred {
    std::int64_t delay;
    std::uint32_t slot;
  };
  static constexpr std::uint32_t kNoSlot = ~std::uint32_t{0};
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
  // Takes a pending timer out of the heap or the deferred list, keeping its node.
  void unlink(std::uint32_t slot) {
    const std::uint32_t where = nodes_[slot].heap_index;
    if (where == kParked) return;
    if ((where & kDeferredBit) == 0) {
      remove_at(where);
      return;
    }
    // Arm-then-cancel in one callback (a timeout that was not needed) leaves nothing behind:
    // the last live entry empties the list, the last entry goes with the cancelled ones
    // before it.
    const std::uint32_t index = where & ~kDeferredBit;
    if (--deferred_live_ == 0) {
      deferred_.clear();
    } else if (index + 1 < deferred_.size()) {
      deferred_[index].slot = kNoSlot;
    } else {
      do {
        deferred_.pop_back();
      } while (deferred_.back().slot == kNoSlot);  // a live entry remains before it
    }
  }
  std::uint32_t take_slot() {
    ++taken_since_ordered_;
    if (free_slots_.empty()) return new_slot();
    const std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  std::uint32_t new_slot();
  // Puts the timer of a slot just taken (its call set) in the heap or the deferred list.
  TimerId insert(std::uint32_t slot, TimePoint deadline);
  TimerId defer(std::uint32_t slot, Duration delay) {
    Node& node = nodes_[slot];
    node.heap_index = kDeferredBit | static_cast<std::uint32_t>(deferred_.size());
    deferred_.push_back(Deferred{delay.count(), slot});
    ++deferred_live_;
    return TimerId{slot, node.generation};
  }
  void release(std::uint32_t slot) {
    Node& node = nodes_[slot];  // its call was taken: nothing to destroy
    // Skip 0 on wrap-around: it is the generation of a default TimerId.
    if (++node.generation == 0) node.generation = 1;
    free_slots_.push_back(slot);
  }
  // Once a large queue is empty, its free slots are handed out from the first again, in
  // address order: they were freed in deadline order, and a burst armed from that order writes
  // a slab of megabytes at random (a cache miss per timer; twice the arming time, measured).
  // Only after a burst (more slots taken since the last reordering than half the slab), so
  // that the queue emptying over and over (a timeout armed and cancelled again and again after
  // a burst, before the next turn trims) pays for its O(slab) pass once per burst.
  void restart_free_order_if_idle() {
    if (nodes_.size() > kKeepNodes && taken_since_ordered_ > nodes_.size() / 2 && empty()) {
      restart_free_order();
    }
  }
  void restart_free_order();
  void shrink();

  std::vector<Entry> heap_;
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<Deferred> deferred_;  // in push order
  std::size_t deferred_live_ = 0;
  std::size_t taken_since_ordered_ = 0;  // slots taken since the free list was last reordered
  std::uint64_t next_sequence_ = 0;
  // Generation of nodes made after a shrink: above every generation handed out before, so a
  // stale TimerId never names a new timer.
  std::uint32_t generation_base_ = 1;
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_TIMER_QUEUE_H_
