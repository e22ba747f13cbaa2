// QueuedCall: one call waiting in a reactor's queue (the ready queue, a timer's node).
//
// It is one of two things. A plain call is a function and two arguments: weft's own
// resumptions (a task's context and the coroutine to resume) are made this way, with no
// Callback to build, move into the queue, move out and destroy (a fifth of a spawn's cost, in
// `perf`, when every resumption was a Callback); so is a user's small callable that is
// trivially copyable (a lambda capturing a pointer or two: the common call_soon and
// call_later), its bytes kept in the two arguments. The other is a user's Callback, kept in the
// call itself and run and destroyed in place.
//
// A call is pending until it runs or is taken by another QueuedCall (which is how a queue
// cancels one).
// Threading: none of its own (it lives in a loop-thread structure).
#ifndef WEFT_CORE_DETAIL_QUEUED_CALL_H_
#define WEFT_CORE_DETAIL_QUEUED_CALL_H_

#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"

namespace weft::detail {

// A callable kept by value in a plain call: trivially copyable and destructible, no larger or
// more aligned than two pointers, callable with no arguments.
template <typename F>
concept InlineCallable = std::is_trivially_copyable_v<F> && std::is_trivially_destructible_v<F> &&
                             sizeof(F) <= 2 * sizeof(void*) &&
                         alignof(F) <= alignof(void*) && std::is_invocable_v<F&>;

using PlainFunction = void (*)(void* a, void* b);

// The callable's bytes are a plain call's two arguments; copied back into an object of its type
// (trivially copyable, so the copy is one) and called.
template <InlineCallable F>
void run_inline(void* a, void* b) {
  void* words[2] = {a, b};
  alignas(F) unsigned char bytes[sizeof(F)];
  std::memcpy(bytes, words, sizeof(F));
  (*std::launder(reinterpret_cast<F*>(bytes)))();
}

// The plain call that runs an InlineCallable: handed on as three words (in registers, where a
// QueuedCall would go through memory).
struct PlainCall {
  PlainFunction fn;
  void* a;
  void* b;
};
template <InlineCallable F>
PlainCall plain_call(const F& f) noexcept {
  void* words[2] = {nullptr, nullptr};
  std::memcpy(words, &f, sizeof(F));
  return PlainCall{&run_inline<F>, words[0], words[1]};
}

class QueuedCall {
 public:
  using Callback = absl::AnyInvocable<void()>;
  using PlainFunction = detail::PlainFunction;

  // Not pending: runs nothing.
  QueuedCall() noexcept : fn_(&nothing), args_{nullptr, nullptr} {}
  QueuedCall(PlainFunction fn, void* a, void* b) noexcept : fn_(fn), args_{a, b} {}
  // Requires a non-empty callback.
  explicit QueuedCall(Callback&& callback) noexcept
      : fn_(nullptr), callback_(std::move(callback)) {}
  QueuedCall(QueuedCall&& other) noexcept : fn_(other.fn_) {
    if (fn_ != nullptr) {
      args_ = other.args_;
    } else {
      new (&callback_) Callback(std::move(other.callback_));
    }
  }
  QueuedCall& operator=(QueuedCall&&) = delete;
  ~QueuedCall() {
    if (fn_ == nullptr) callback_.~Callback();
  }

  bool pending() const { return fn_ != &nothing; }

  // Runs the call, which is no longer pending from the moment it starts. A Callback runs in
  // place and is destroyed when it returns (or throws): the call must not move meanwhile.
  void run() {
    if (fn_ != nullptr) {
      const PlainFunction fn = std::exchange(fn_, &nothing);
      fn(args_.a, args_.b);
      return;
    }
    struct Retire {
      QueuedCall& call;
      ~Retire() { call.retire(); }
    } retire{*this};
    callback_();
  }

  // Makes this call, which must not be pending, the plain call fn(a, b).
  void set(PlainFunction fn, void* a, void* b) noexcept {
    fn_ = fn;
    args_ = {a, b};
  }
  // Makes this call, which must not be pending, `callback` (not empty).
  void set(Callback&& callback) noexcept {
    fn_ = nullptr;
    new (&callback_) Callback(std::move(callback));
  }

  // Moves `other`'s call into this one, which must not be pending, and leaves `other` not
  // pending. Destroys nothing: a taken Callback is destroyed with this QueuedCall (or when it
  // runs), at a moment the caller chooses (its destructor may queue more).
  void take(QueuedCall& other) noexcept {
    if (other.fn_ != nullptr) {
      fn_ = std::exchange(other.fn_, &nothing);
      args_ = other.args_;
      return;
    }
    fn_ = nullptr;
    new (&callback_) Callback(std::move(other.callback_));
    other.retire();
  }

 private:
  static void nothing(void*, void*) {}
  // A Callback that ran or was taken: destroyed now, and the call becomes one that does
  // nothing (with its arguments set, so that no later read sees a member that is not alive).
  void retire() noexcept {
    callback_.~Callback();
    args_ = {nullptr, nullptr};
    fn_ = &nothing;
  }

  PlainFunction fn_;  // null: callback_ is the call
  union {
    struct {
      void* a;
      void* b;
    } args_;
    Callback callback_;
  };
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_QUEUED_CALL_H_
