// ReadyQueue: the reactor's FIFO of calls for a turn (core/reactor.cc).
//
// Two kinds of entry share one order. A plain call is a function and two arguments: weft's own
// resumptions (a task's context and the coroutine to resume) are queued this way, with no
// Callback to build, move into the queue, move out and destroy (a fifth of a spawn's cost, in
// `perf`, when every resumption was a Callback); so is a user's small callable that is
// trivially copyable (a lambda capturing a pointer or two: the common call_soon), its bytes
// kept in the two arguments. The other is a user's Callback, kept in the entry itself and run
// and destroyed in place. Only a user's entries are ever cancelled (a CallHandle names them);
// weft's own plain calls always run, or are dropped unrun with the queue when its reactor is
// destroyed.
//
// Threading: loop thread only (the reactor's).
#ifndef WEFT_CORE_DETAIL_READY_QUEUE_H_
#define WEFT_CORE_DETAIL_READY_QUEUE_H_

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace weft::detail {

// A callable the queue keeps by value in a plain entry: trivially copyable and destructible, no
// larger or more aligned than two pointers, callable with no arguments.
template <typename F>
concept InlineCallable = std::is_trivially_copyable_v<F> && std::is_trivially_destructible_v<F> &&
                             sizeof(F) <= 2 * sizeof(void*) &&
                         alignof(F) <= alignof(void*) && std::is_invocable_v<F&>;

class ReadyQueue {
 public:
  using Callback = absl::AnyInvocable<void()>;
  using PlainFunction = void (*)(void* a, void* b);

  void push(PlainFunction fn, void* a, void* b) { calls_.emplace_back(fn, a, b); }
  void push(Callback callback) { calls_.emplace_back(std::move(callback)); }
  // A callable that fits a plain call (see InlineCallable above), kept by value.
  template <typename F>
  void push_inline(const F& f) {
    void* words[2] = {nullptr, nullptr};
    std::memcpy(words, &f, sizeof(F));
    calls_.emplace_back(&run_inline<F>, words[0], words[1]);
  }

  bool empty() const { return calls_.empty(); }
  std::size_t size() const { return calls_.size(); }
  std::size_t capacity() const { return calls_.capacity(); }

  // Entry i is still to run (not a cancelled callback).
  bool pending(std::size_t i) const { return calls_[i].pending(); }
  // Cancels entry i, a user's entry, unless it already was; its Callback, if it holds one, is
  // moved to `dropped` (for the caller to destroy: its destructor may queue more).
  bool cancel(std::size_t i, Callback& dropped) {
    Call& call = calls_[i];
    if (call.fn == nullptr) {
      if (call.callback == nullptr) return false;
      dropped = std::exchange(call.callback, nullptr);
      return true;
    }
    if (call.fn == &nothing) return false;
    call.fn = &nothing;  // an inline callable: trivially destructible, nothing to destroy
    return true;
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
  // The callable's bytes are the entry's two arguments; copied back into an object of its type
  // (trivially copyable, so the copy is one) and called.
  template <typename F>
  static void run_inline(void* a, void* b) {
    void* words[2] = {a, b};
    alignas(F) unsigned char bytes[sizeof(F)];
    std::memcpy(bytes, words, sizeof(F));
    (*std::launder(reinterpret_cast<F*>(bytes)))();
  }

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
