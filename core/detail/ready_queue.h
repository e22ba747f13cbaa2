// ReadyQueue: the reactor's FIFO of calls for a turn (core/reactor.cc).
//
// Its entries are QueuedCalls (core/detail/queued_call.h): weft's own resumptions and a user's
// small trivially copyable callables as plain calls, other user callbacks as Callbacks run and
// destroyed in place, all in one order. Only a user's entries are ever cancelled (a CallHandle
// names them); weft's own plain calls always run, or are dropped unrun with the queue when its
// reactor is destroyed.
//
// Threading: loop thread only (the reactor's).
#ifndef WEFT_CORE_DETAIL_READY_QUEUE_H_
#define WEFT_CORE_DETAIL_READY_QUEUE_H_

#include <cstddef>
#include <utility>
#include <vector>

#include "weft/core/detail/queued_call.h"

namespace weft::detail {

class ReadyQueue {
 public:
  using Callback = QueuedCall::Callback;
  using PlainFunction = QueuedCall::PlainFunction;

  void push(PlainFunction fn, void* a, void* b) { calls_.emplace_back(fn, a, b); }
  void push(Callback callback) { calls_.emplace_back(std::move(callback)); }
  // A callable that fits a plain call (InlineCallable), kept by value.
  template <InlineCallable F>
  void push_inline(const F& f) {
    const PlainCall call = plain_call(f);
    calls_.emplace_back(call.fn, call.a, call.b);
  }

  bool empty() const { return calls_.empty(); }
  std::size_t size() const { return calls_.size(); }
  std::size_t capacity() const { return calls_.capacity(); }

  // Entry i is still to run (not cancelled).
  bool pending(std::size_t i) const { return calls_[i].pending(); }
  // Cancels entry i, a user's entry, unless it already was; its call is moved to `dropped`,
  // which must not be pending (for the caller to destroy: a Callback's destructor may queue
  // more).
  bool cancel(std::size_t i, QueuedCall& dropped) {
    if (!calls_[i].pending()) return false;
    dropped.take(calls_[i]);
    return true;
  }
  // Runs entry i (nothing, if it was cancelled). While this queue runs, nothing is pushed into
  // it (calls queued meanwhile go to the reactor's other queue), so the entry stays put.
  void run(std::size_t i) { calls_[i].run(); }

  void swap(ReadyQueue& other) noexcept { calls_.swap(other.calls_); }
  // Empties it, keeping the capacity.
  void clear() { calls_.clear(); }
  // Empties it and gives the capacity back.
  void release() { std::vector<QueuedCall>().swap(calls_); }

 private:
  std::vector<QueuedCall> calls_;
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_READY_QUEUE_H_
