#include "weft/core/detail/timer_queue.h"

#include <utility>

namespace weft::detail {
namespace {
constexpr std::size_t kArity = 4;
}

std::uint32_t TimerQueue::new_slot() {
  const auto slot = static_cast<std::uint32_t>(nodes_.size());
  nodes_.emplace_back();
  nodes_.back().generation = generation_base_;
  return slot;
}

TimerId TimerQueue::insert(std::uint32_t slot, TimePoint deadline) {
  heap_.emplace_back();
  sift_up(heap_.size() - 1, Entry{deadline.time_since_epoch().count(), next_sequence_++, slot});
  return TimerId{slot, nodes_[slot].generation};
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

bool TimerQueue::pop_due(TimePoint now, std::uint64_t cutoff, QueuedCall& out) {
  if (heap_.empty()) return false;
  const Entry& front = heap_.front();
  if (front.deadline > now.time_since_epoch().count() || front.sequence >= cutoff) return false;
  const std::uint32_t slot = front.slot;
  out.take(nodes_[slot].call);
  remove_at(0);
  release(slot);
  restart_free_order_if_idle();
  return true;
}

void TimerQueue::restart_free_order() {
  // Every slot but the parked timers' (empty() does not count them) is free. take_slot() pops
  // from the back: the last slot goes first here, so that slot 0 is taken first.
  taken_since_ordered_ = 0;
  free_slots_.clear();
  for (auto slot = static_cast<std::uint32_t>(nodes_.size()); slot-- > 0;) {
    if (!nodes_[slot].call.pending()) free_slots_.push_back(slot);
  }
}

void TimerQueue::shrink() {
  for (const Node& node : nodes_) {
    if (node.generation >= generation_base_) generation_base_ = node.generation + 1;
  }
  if (generation_base_ == 0) generation_base_ = 1;
  taken_since_ordered_ = 0;
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
