// ReadyQueue: the reactor's FIFO of calls for a turn (core/reactor.cc).
//
// Two kinds of entry share one order. A plain call is a function and two arguments: weft's own
// resumptions (a task's context and the coroutine to resume) are queued this way, with no
// Callback to build, move into the queue, move out and destroy (a fifth of a spawn's cost, in
// `perf`, when every resumption was a Callback). The other is a user's Callback, kept in the
// entry itself and run and destroyed in place. Only user callbacks are ever
// cancelled (a CallHandle names them); a plain call always runs, or is dropped unrun with the
// queue when its reactor is destroyed.
//
// Threading: loop thread only (the reactor's).
#ifndef WEFT_CORE_DETAIL_READY_QUEUE_H_
#define WEFT_CORE_DETAIL_READY_QUEUE_H_

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace weft::detail {

class ReadyQueue {
 public:
  using Callback = absl::AnyInvocable<void()>;
  using PlainFunction = void (*)(void* a, void* b);

  void push(PlainFunction fn, void* a, void* b) { calls_.emplace_back(fn, a, b); }
  void push(Callback callback) { calls_.emplace_back(std::move(callback)); }

  bool empty() const { return calls_.empty(); }
  std::size_t size() const { return calls_.size(); }
  std::size_t capacity() const { return calls_.capacity(); }

  // Entry i is still to run (not a cancelled callback).
  bool pending(std::size_t i) const { return calls_[i].pending(); }
  // Takes entry i's callback out (to be destroyed by the caller), if it is a callback not yet
  // cancelled; null otherwise.
  Callback cancel(std::size_t i) {
    Call& call = calls_[i];
    return call.fn == nullptr ? std::exchange(call.callback, nullptr) : nullptr;
  }
  // Runs entry i (nothing, if it was cancelled). A callback runs in place and is destroyed when
  // it returns (or throws), before the next entry runs. While this queue runs, nothing is pushed
  // into it (calls queued meanwhile go to the reactor's other queue), so the entry stays put.
  void run(std::size_t i) {
    Call& call = calls_[i];
    if (call.fn != nullptr) {
      call.fn(call.args.a, call.args.b);
    } else if (call.callback != nullptr) {
      struct Destroy {
        Call& call;
        ~Destroy() { call.retire(); }
      } destroy{call};
      call.callback();
    }
  }

  void swap(ReadyQueue& other) noexcept { calls_.swap(other.calls_); }
  // Empties it, keeping the capacity.
  void clear() { calls_.clear(); }
  // Empties it and gives the capacity back.
  void release() { std::vector<Call>().swap(calls_); }

 private:
  static void nothing(void*, void*) {}

  // One entry: fn(a, b), or (fn null) a user's callback. Moved only by the vector's growth.
  struct Call {
    PlainFunction fn;
    union {
      struct {
        void* a;
        void* b;
      } args;
      Callback callback;
    };

    Call(PlainFunction f, void* a, void* b) noexcept : fn(f), args{a, b} {}
    explicit Call(Callback&& c) noexcept : fn(nullptr), callback(std::move(c)) {}
    Call(Call&& other) noexcept : fn(other.fn) {
      if (fn != nullptr) {
        args = other.args;
      } else {
        new (&callback) Callback(std::move(other.callback));
      }
    }
    Call& operator=(Call&&) = delete;
    ~Call() {
      if (fn == nullptr) callback.~Callback();
    }

    bool pending() const { return fn != nullptr ? fn != &nothing : callback != nullptr; }
    // A callback that ran: destroyed now, and the entry becomes a call that does nothing (with
    // its arguments set, so that no later read of the entry sees a member that is not alive).
    void retire() noexcept {
      callback.~Callback();
      args = {nullptr, nullptr};
      fn = &nothing;
    }
  };

  std::vector<Call> calls_;
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_READY_QUEUE_H_
