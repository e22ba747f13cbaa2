// Deferred<T>: a one-shot result that arrives later (Twisted's Deferred,
// asyncio's Future).
//
// A producer fires it once, with a value (callback()) or an exception
// (errback()); consumers add callbacks or co_await it. Unlike Twisted's, the
// chain does not transform the result: every consumer sees the same value or
// error. Callbacks added before the Deferred fires run, in the order added,
// inside the callback()/errback() call; callbacks added after it fired run at
// once. A task awaiting it resumes inside callback()/errback() too, except that
// resumptions nest at most one deep: a task resumed while another resumed task
// is running on this thread (A fires d1, whose awaiter fires d2, ...) runs when
// that one suspends or finishes, still inside the outermost callback() call.
// So a chain of any length of tasks awaiting each other unwinds in constant
// stack (Twisted bounds its callback chains the same way).
//
// Awaiting: a task awaiting a Deferred whose scope is cancelled (or that reaches
// the co_await inside a cancelled scope) cancels the Deferred and resumes with
// weft::Cancelled (Twisted and asyncio propagate cancellation the same way).
//
// Cancellation: cancel() on an unfired Deferred calls its canceller, if it has
// one, and the producer then fires it when it has stopped (a spawned task fires
// its Deferred when its cleanup has run: with Cancelled, or with whatever the
// task returned after catching it). Without a canceller, cancel() fails the
// Deferred with weft::Cancelled at once. cancel() on a fired Deferred does
// nothing.
//
// Unhandled errors: if a Deferred that failed is destroyed without its error
// having been looked at (an errback, a co_await, error()), the error is
// reported to the current reactor's error handler, or to stderr (Twisted's
// "Unhandled error in Deferred").
//
// Threading: loop thread only, except that a copy may be made, moved or dropped on any
// thread (the count is atomic, as std::shared_ptr's): a runner's run() may return a Deferred
// to its caller's thread. Copies share one state; the state lives while any copy (or an
// awaiting task) does.
#ifndef WEFT_CORE_DEFERRED_H_
#define WEFT_CORE_DEFERRED_H_

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "weft/core/detail/counted_ref.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/errors.h"
#include "weft/core/task.h"

namespace weft {

template <typename T = void>
class Deferred;

namespace detail {

template <typename T>
class SpawnedTask;  // core/spawn.h

// The part of a Deferred's state that does not depend on T.
class DeferredStateBase : public Counted {
 public:
  // A coroutine suspended on the Deferred; lives in the coroutine's frame. on_fired detaches
  // it (no longer cancellable) and returns the coroutine to resume and its task.
  struct Waiter {
    std::coroutine_handle<> (*on_fired)(Waiter* self, TaskContext*& task) = nullptr;
    std::size_t slot = 0;
  };

  DeferredStateBase() = default;
  DeferredStateBase(const DeferredStateBase&) = delete;
  DeferredStateBase& operator=(const DeferredStateBase&) = delete;
  // Inline, with the error report out of line: a spawned task's state is destroyed per spawn.
  ~DeferredStateBase() {
    if (error_ != nullptr) [[unlikely]] {
      report_if_unhandled();
    }
  }

  bool fired() const { return fired_; }
  bool failed() const { return error_ != nullptr; }
  std::exception_ptr observe_error() {
    error_observed_ = true;
    return error_;
  }

  void add_listener(absl::AnyInvocable<void()> listener);
  void add_waiter(Waiter* waiter);
  void remove_waiter(Waiter* waiter);

  void set_canceller(absl::AnyInvocable<void()> canceller) {
    canceller_ = canceller != nullptr
                     ? std::make_unique<absl::AnyInvocable<void()>>(std::move(canceller))
                     : nullptr;
  }
  // A canceller that is a plain function and its argument, taking precedence over the one
  // above: spawn() sets one per task, with no closure to build, move and destroy.
  void set_cancel_function(void (*cancel)(void*), void* arg) noexcept {
    cancel_function_ = cancel;
    cancel_arg_ = arg;
  }
  void cancel();

  // Records the error and runs the consumers; throws AlreadyCalledError if
  // already fired.
  void fail(std::exception_ptr error);

 protected:
  void check_not_fired() const {
    if (fired_) [[unlikely]] {
      throw_already_called();
    }
  }
  // Marks the state fired and runs every consumer in the order added. Inline up to the first
  // consumer: a spawned task's Deferred fires once per spawn, usually with nobody waiting yet.
  void fire() {
    fired_ = true;
    cancel_function_ = nullptr;
    if (!consumers_.empty() || canceller_ != nullptr) fire_consumers();
  }

 private:
  [[noreturn]] static void throw_already_called();
  void report_if_unhandled() const;
  void fire_consumers();

  // Either a listener (a callback) or a waiter (a suspended coroutine).
  struct Consumer {
    absl::AnyInvocable<void()> listener = nullptr;
    Waiter* waiter = nullptr;
  };

  // First: they sit in what Counted leaves free after its count (8 bytes a state).
  bool fired_ = false;
  bool error_observed_ = false;
  bool cancel_requested_ = false;
  std::vector<Consumer> consumers_;
  // Boxed: most states have none (a spawned task's uses cancel_function_), and an empty
  // AnyInvocable still costs 32 bytes and an indirect call to destroy (`perf`: a tenth of
  // freeing a spawned task's block).
  std::unique_ptr<absl::AnyInvocable<void()>> canceller_;
  void (*cancel_function_)(void*) = nullptr;
  void* cancel_arg_ = nullptr;
  std::exception_ptr error_;
};

template <typename T>
class DeferredState : public DeferredStateBase {
 public:
  // User-provided: Deferred() value-initializes its state (make_counted), and an implicit
  // constructor would have the whole block zeroed before the members' initializers.
  DeferredState() noexcept {}  // NOLINT(modernize-use-equals-default)
  template <typename U>
  void succeed(U&& value) {
    check_not_fired();
    value_.emplace(std::forward<U>(value));
    fire();
  }
  const T& value() const { return *value_; }
  T& value() { return *value_; }

 private:
  std::optional<T> value_;
};

template <>
class DeferredState<void> : public DeferredStateBase {
 public:
  DeferredState() noexcept {}  // NOLINT(modernize-use-equals-default): as above
  void succeed() {
    check_not_fired();
    fire();
  }
};

// The awaiter behind `co_await deferred`. `kConsume` (awaiting an rvalue) moves
// the value out.
template <typename T, bool kConsume>
class DeferredAwaiter : private DeferredStateBase::Waiter {
 public:
  // Awaiting an lvalue: the Deferred outlives the co_await expression, so the awaiter takes a
  // reference of its own only if it suspends (a fired Deferred is awaited with no count).
  explicit DeferredAwaiter(DeferredState<T>* state) : state_(state) {}
  // Awaiting an rvalue: the awaiter takes the Deferred's reference.
  explicit DeferredAwaiter(CountedRef<DeferredState<T>> state)
      : state_(state.get()), keep_(std::move(state)) {}
  DeferredAwaiter(const DeferredAwaiter&) = delete;
  DeferredAwaiter& operator=(const DeferredAwaiter&) = delete;
  ~DeferredAwaiter() {
    // The frame is being destroyed while suspended here (its reactor went
    // away).
    if (registered_) {
      state_->remove_waiter(this);
      context_->clear_cancel_hook();
    }
  }

  bool await_ready() const noexcept { return state_->fired(); }

  template <WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) {
    context_ = handle.promise().context();
    if (context_->cancelled()) {
      // Reached inside a cancelled scope: the awaited work is cancelled all the same (the
      // rule holds however the cancellation arrives), and the task goes on with Cancelled now.
      cancelled_ = true;
      CountedRef<DeferredState<T>> state = CountedRef<DeferredState<T>>::to(state_);
      state->cancel();
      return false;
    }
    // Suspended, the awaiter must keep the state alive itself: whoever owns the Deferred may
    // drop it meanwhile.
    if (!keep_) keep_ = CountedRef<DeferredState<T>>::to(state_);
    handle_ = handle;
    on_fired = &DeferredAwaiter::resume;
    state_->add_waiter(this);
    registered_ = true;
    context_->set_cancel_hook(&DeferredAwaiter::cancel, this);
    return true;
  }

  T await_resume() {
    if (cancelled_) throw Cancelled();
    if (std::exception_ptr error = state_->observe_error()) std::rethrow_exception(error);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (kConsume) {
      return std::move(state_->value());
    } else {
      return state_->value();
    }
  }

 private:
  static std::coroutine_handle<> resume(DeferredStateBase::Waiter* waiter, TaskContext*& task) {
    auto* self = static_cast<DeferredAwaiter*>(waiter);
    self->registered_ = false;
    self->context_->clear_cancel_hook();
    task = self->context_;
    return self->handle_;
  }
  // The task was cancelled while suspended here: cancel what it waits for
  // (Twisted and asyncio propagate cancellation into the awaited Deferred), and
  // resume with Cancelled next turn.
  static void cancel(void* awaiter);

  DeferredState<T>* state_;
  CountedRef<DeferredState<T>> keep_;  // once suspended, or the rvalue Deferred's reference
  std::coroutine_handle<> handle_;
  TaskContext* context_ = nullptr;
  bool registered_ = false;
  bool cancelled_ = false;
};

// Resumes `handle` from the reactor's next turn (declared here, defined in
// deferred.cc, so that this header need not include the reactor).
void resume_next_turn(TaskContext& context, std::coroutine_handle<> handle);

// Resumes `handle` (of `task`) now, or, if a coroutine resumed this way is already running on
// this thread, as soon as it suspends: resumptions never nest, so the stack stays bounded.
void resume_bounded(TaskContext& task, std::coroutine_handle<> handle);

template <typename T, bool kConsume>
void DeferredAwaiter<T, kConsume>::cancel(void* awaiter) {
  auto* self = static_cast<DeferredAwaiter*>(awaiter);
  self->state_->remove_waiter(self);
  self->registered_ = false;
  self->cancelled_ = true;
  CountedRef<DeferredState<T>> state = self->keep_;
  resume_next_turn(*self->context_, self->handle_);
  state->cancel();
}

}  // namespace detail

template <typename T>
class Deferred {
  using State = detail::DeferredState<T>;

 public:
  using value_type = T;
  using Canceller = absl::AnyInvocable<void()>;

  // An unfired Deferred; cancel() fails it with Cancelled.
  Deferred() : state_(detail::make_counted<State>()) {}
  // An unfired Deferred whose cancel() calls `canceller`, which must make the
  // producer fire it.
  explicit Deferred(Canceller canceller) : Deferred() {
    state_->set_canceller(std::move(canceller));
  }

  // Fires with a value. Throws AlreadyCalledError if already fired.
  template <typename U = T>
  requires(!std::is_void_v<T> && std::is_constructible_v<T, U&&>) void callback(U&& value) const {
    detail::CountedRef<State> keep = state_;  // a consumer may drop the last other copy
    keep->succeed(std::forward<U>(value));
  }
  void callback() const requires std::is_void_v<T> {
    detail::CountedRef<State> keep = state_;
    keep->succeed();
  }
  // Fires with an error. Throws AlreadyCalledError if already fired.
  void errback(std::exception_ptr error) const {
    detail::CountedRef<State> keep = state_;
    keep->fail(std::move(error));
  }
  template <typename E>
  requires std::is_base_of_v<std::exception, std::decay_t<E>>
  void errback(E&& error) const { errback(std::make_exception_ptr(std::forward<E>(error))); }

  void cancel() const {
    detail::CountedRef<State> keep = state_;
    keep->cancel();
  }

  bool called() const { return state_->fired(); }
  bool failed() const { return state_->failed(); }

  // The error of a failed Deferred (nullptr otherwise); counts as handling it.
  std::exception_ptr error() const { return state_->observe_error(); }
  // The value of a Deferred that fired with one; rethrows its error if it
  // failed. Requires called().
  template <typename U = T>
  requires(!std::is_void_v<U>) const U& value() const {
    if (std::exception_ptr e = state_->observe_error()) std::rethrow_exception(e);
    return state_->value();
  }
  // Rethrows the error of a failed Deferred. Requires called().
  void check() const {
    if (std::exception_ptr e = state_->observe_error()) std::rethrow_exception(e);
  }

  // Adds consumers: on_value(const T&) (or on_value() for Deferred<void>) on
  // success, on_error(std::exception_ptr) on failure. An exception escaping
  // either goes to the error handler; it does not change what later consumers
  // see.
  template <typename OnValue, typename OnError>
  const Deferred& add_callbacks(OnValue on_value, OnError on_error) const {
    State* state = state_.get();
    state_->add_listener(
        [state, on_value = std::move(on_value), on_error = std::move(on_error)]() mutable {
          if (state->failed()) {
            on_error(state->observe_error());
          } else if constexpr (std::is_void_v<T>) {
            on_value();
          } else {
            on_value(std::as_const(state->value()));
          }
        });
    return *this;
  }
  template <typename OnValue>
  const Deferred& add_callback(OnValue on_value) const {
    State* state = state_.get();
    state_->add_listener([state, on_value = std::move(on_value)]() mutable {
      if (state->failed()) return;
      if constexpr (std::is_void_v<T>) {
        on_value();
      } else {
        on_value(std::as_const(state->value()));
      }
    });
    return *this;
  }
  template <typename OnError>
  const Deferred& add_errback(OnError on_error) const {
    return add_callbacks([](const auto&...) {}, std::move(on_error));
  }
  // Runs `on_done()` when the Deferred fires, either way. Does not count as
  // handling an error.
  const Deferred& add_done(absl::AnyInvocable<void()> on_done) const {
    state_->add_listener(std::move(on_done));
    return *this;
  }

  // Awaits the result: returns a copy of the value (or moves it out, when
  // awaiting an rvalue Deferred) or rethrows the error. If the awaiting task is
  // cancelled meanwhile, the Deferred is cancelled and the task resumes next
  // turn with weft::Cancelled.
  detail::DeferredAwaiter<T, false> operator co_await() const& {
    return detail::DeferredAwaiter<T, false>(state_.get());
  }
  detail::DeferredAwaiter<T, true> operator co_await() && {
    return detail::DeferredAwaiter<T, true>(std::move(state_));
  }

  // For spawn(): the state behind this Deferred.
  detail::DeferredStateBase& state_for_detail() const { return *state_; }

 private:
  template <typename>
  friend class detail::SpawnedTask;
  // spawn() makes the state, with the task's context in the same block.
  explicit Deferred(detail::CountedRef<State> state) : state_(std::move(state)) {}

  detail::CountedRef<State> state_;
};

}  // namespace weft

#endif  // WEFT_CORE_DEFERRED_H_
