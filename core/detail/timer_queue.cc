#include "weft/core/detail/timer_queue.h"

#include <utility>

namespace weft::detail {
namespace {
constexpr std::size_t kArity = 4;
}

std::uint32_t TimerQueue::take_slot() {
  if (free_slots_.empty()) {
    const auto slot = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
    nodes_.back().generation = generation_base_;
    return slot;
  }
  const std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

TimerId TimerQueue::insert(std::uint32_t slot, TimePoint deadline) {
  heap_.emplace_back();
  sift_up(heap_.size() - 1, Entry{deadline.time_since_epoch().count(), next_sequence_++, slot});
  return TimerId{slot, nodes_[slot].generation};
}

TimerId TimerQueue::defer(std::uint32_t slot, Duration delay) {
  Node& node = nodes_[slot];
  node.heap_index = kDeferredBit | static_cast<std::uint32_t>(deferred_.size());
  deferred_.push_back(Deferred{delay.count(), slot});
  ++deferred_live_;
  return TimerId{slot, node.generation};
}

void TimerQueue::flush(TimePoint now) {
  if (deferred_live_ != 0) {
    for (const Deferred& entry : deferred_) {
      if (entry.slot == kNoSlot) continue;
      heap_.emplace_back();
      sift_up(heap_.size() - 1,
              Entry{add_saturating(now, Duration(entry.delay)).time_since_epoch().count(),
                    next_sequence_++, entry.slot});
    }
  }
  deferred_.clear();
  deferred_live_ = 0;
}

void TimerQueue::unlink(std::uint32_t slot) {
  const std::uint32_t where = nodes_[slot].heap_index;
  if (where == kParked) return;
  if ((where & kDeferredBit) == 0) {
    remove_at(where);
    return;
  }
  // Arm-then-cancel in one callback (a timeout that was not needed) leaves nothing behind: the
  // last live entry empties the list, the last entry goes with the cancelled ones before it.
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

bool TimerQueue::cancel(TimerId id) {
  if (!pending_or_parked(id)) return false;
  const bool was_pending = nodes_[id.slot].heap_index != kParked;
  // Destroying a Callback can run arbitrary destructors; do it after the heap is consistent.
  QueuedCall dropped;
  dropped.take(nodes_[id.slot].call);
  unlink(id.slot);
  release(id.slot);
  shrink_if_idle();
  return was_pending;
}

bool TimerQueue::park(TimerId id) {
  if (!pending(id)) return false;
  unlink(id.slot);
  nodes_[id.slot].heap_index = kParked;
  return true;
}

bool TimerQueue::reschedule(TimerId id, TimePoint deadline) {
  if (!pending_or_parked(id)) return false;
  unlink(id.slot);
  insert(id.slot, deadline);
  return true;
}

bool TimerQueue::reschedule_after(TimerId id, Duration delay) {
  if (!pending_or_parked(id)) return false;
  unlink(id.slot);
  defer(id.slot, delay);
  return true;
}

bool TimerQueue::pop_due(TimePoint now, std::uint64_t cutoff, QueuedCall& out) {
  if (heap_.empty()) return false;
  const Entry& front = heap_.front();
  if (front.deadline > now.time_since_epoch().count() || front.sequence >= cutoff) return false;
  const std::uint32_t slot = front.slot;
  out.take(nodes_[slot].call);
  remove_at(0);
  release(slot);
  shrink_if_idle();
  return true;
}

void TimerQueue::shrink() {
  for (const Node& node : nodes_) {
    if (node.generation >= generation_base_) generation_base_ = node.generation + 1;
  }
  if (generation_base_ == 0) generation_base_ = 1;
  std::vector<Node>().swap(nodes_);
  std::vector<Entry>().swap(heap_);
  std::vector<std::uint32_t>().swap(free_slots_);
  std::vector<Deferred>().swap(deferred_);
}

void TimerQueue::clear() {
  // Move the calls out first: a Callback's destructor may push or cancel timers.
  std::vector<Node> nodes = std::move(nodes_);
  for (const Node& node : nodes) {
    if (node.generation >= generation_base_) generation_base_ = node.generation + 1;
  }
  if (generation_base_ == 0) generation_base_ = 1;
  heap_.clear();
  nodes_.clear();
  free_slots_.clear();
  deferred_.clear();
  deferred_live_ = 0;
  nodes.clear();
}

void TimerQueue::release(std::uint32_t slot) {
  Node& node = nodes_[slot];  // its call was taken: nothing to destroy
  // Skip 0 on wrap-around: it is the generation of a default TimerId.
  if (++node.generation == 0) node.generation = 1;
  free_slots_.push_back(slot);
}

void TimerQueue::remove_at(std::size_t index) {
  const Entry last = heap_.back();
  heap_.pop_back();
  if (index == heap_.size()) return;
  // The moved entry may belong above or below `index`.
  if (index > 0 && before(last, heap_[(index - 1) / kArity])) {
    sift_up(index, last);
  } else {
    sift_down(index, last);
  }
}

void TimerQueue::sift_up(std::size_t index, Entry entry) {
  while (index > 0) {
    const std::size_t parent = (index - 1) / kArity;
    if (!before(entry, heap_[parent])) break;
    place(index, heap_[parent]);
    index = parent;
  }
  place(index, entry);
}

void TimerQueue::sift_down(std::size_t index, Entry entry) {
  const std::size_t size = heap_.size();
  for (;;) {
    const std::size_t first = index * kArity + 1;
    if (first >= size) break;
    std::size_t best = first;
    const std::size_t end = first + kArity < size ? first + kArity : size;
    for (std::size_t child = first + 1; child < end; ++child) {
      if (before(heap_[child], heap_[best])) best = child;
    }
    if (!before(heap_[best], entry)) break;
    place(index, heap_[best]);
    index = best;
  }
  place(index, entry);
}

}  // namespace weft::detail
