// EventualState: what an EventualResult shares with the task it waits for, which is also the
// task itself.
//
// A task submitted to a runner is one block: the result's state (the value or error, the lock
// and the condition variable waiters use, the cancel request) and the task's TaskContext, whose
// root is the submitted Task frame. As a spawned task's (core/spawn.h), the frame is its own
// root: when it finishes, its final awaiter delivers the outcome straight into the state, with
// no coroutine around it and no Deferred in between.
//
// The life of one: Runner::submit() makes it, the frame not started, and hands it to the
// runner's start() as a SubmittedTask; the runner calls SubmittedTask::start_on() on the loop
// thread, which puts the task in the reactor and queues its start. The state completes with
// the task's outcome, or with RunnerShutDown if the task is dropped unstarted (the runner went
// away first) or its reactor is destroyed with the task unfinished (after the frame is
// destroyed, so its RAII cleanup has run). cancel(), from any thread, reaches the task on its
// loop through the ReactorLink the runner gave start_on().
//
// Threading: the result's side (wait, ready, cancel, the error) is thread-safe; the task's
// side (its TaskContext) belongs to the submitting thread until start_on(), then to the loop
// thread.
#ifndef WEFT_RUNNERS_DETAIL_EVENTUAL_STATE_H_
#define WEFT_RUNNERS_DETAIL_EVENTUAL_STATE_H_

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/cancel_reason.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/task.h"
#include "weft/core/time.h"

namespace weft::detail {

class EventualStateBase;
class ReactorLink;  // runners/detail/reactor_link.h

// The deadline `timeout` from now gives a wait, saturating: none (no limit) for no timeout or one
// reaching past the clock's end; one reaching before its beginning is simply in the past.
inline std::optional<TimePoint> deadline_after(std::optional<Duration> timeout) {
  if (!timeout) return std::nullopt;
  const TimePoint deadline = add_saturating(Clock::now(), *timeout);
  if (deadline == TimePoint::max()) return std::nullopt;
  return deadline;
}

// How a waiter makes progress when no other thread runs the loop (the blocking
// runner).
class EventualDriver {
 public:
  // Runs the loop on the calling thread until `done` is true or `deadline` passes (none: as
  // long as it takes). Throws LoopStopped if a stop() of the loop, made before or during the
  // call, ends it first (consuming it).
  virtual void drive(const std::atomic<bool>& done, std::optional<TimePoint> deadline) = 0;

 protected:
  ~EventualDriver() = default;
};

class EventualStateBase : protected TaskContext {
 public:
  // `reactor`: where the work runs; waiting from inside one of its callbacks, or on
  // `loop_thread` (the thread that runs it, if fixed), is refused. `driver`: null when another
  // thread runs the loop.
  EventualStateBase(const Reactor* reactor, std::thread::id loop_thread, EventualDriver* driver);
  EventualStateBase(const EventualStateBase&) = delete;
  EventualStateBase& operator=(const EventualStateBase&) = delete;
  // Reports a failure nobody looked at (see EventualResult).
  ~EventualStateBase();

  bool ready() const { return done_.load(std::memory_order_acquire); }
  // Blocks until ready or until `timeout` has passed (saturating; none: no
  // limit); returns ready(). Throws UsageError on the loop thread or in a forked
  // child, LoopStopped from a driver.
  bool wait(std::optional<Duration> timeout);
  // The error, without marking it looked at (for the runner's own use).
  std::exception_ptr error() const;
  // The error, marking it looked at: it will not be reported.
  std::exception_ptr observe_error();

  // Thread-safe: asks the task's loop to cancel it (now, or when it reaches the loop). `self`
  // is this state: the request keeps it alive until the loop takes it. Throws UsageError in a
  // forked child.
  static void cancel(const std::shared_ptr<EventualStateBase>& self);
  // Completes with `error` (unless already complete), then cancels the task: a runner giving
  // up on it (shutdown). Failing first means the cancellation cannot race in another outcome.
  static void abandon(const std::shared_ptr<EventualStateBase>& self, std::exception_ptr error);

 protected:
  friend class SubmittedTask;

  // Completes with `publish_value` run under the lock, unless already complete.
  template <typename Publish>
  void complete(Publish&& publish_value) {
    {
      std::lock_guard lock(mu_);
      if (done_.load(std::memory_order_relaxed)) return;
      publish_value();
      done_.store(true, std::memory_order_release);
      if (!done_cv_made_) return;  // nobody ever slept on it
    }
    done_cv_.notify_all();
  }
  // Completes with an error, unless already complete.
  void fail(std::exception_ptr error);
  // Requires ready() and an error: marks it looked at and throws it.
  [[noreturn]] void rethrow_observed_error();
  // True in a child process forked after this state was made.
  bool inherited_through_fork() const;

  // The task's end, once its frame has finished (a value already published) or before it
  // started (cancelled first): publishes `error` if there is one, frees the frame and leaves
  // the reactor, dropping the reactor's reference last (it may free this block).
  void end(std::exception_ptr error, bool started) noexcept {
    std::shared_ptr<EventualStateBase> keep = std::move(reactor_ref_);
    if (started) apply_cancel_reason(this, error);
    if (error != nullptr) fail(std::move(error));
    leave();
  }
  // SpawnedRoot::destroy: the reactor is going away with the task unfinished.
  static void destroy_unfinished(TaskContext& context) noexcept;

  // std::mutex, not absl::Mutex: ThreadSanitizer sees pthread locks.
  mutable std::mutex mu_;
  // Written under mu_ before done_ is set, never after: once ready() is true it may be read
  // without the lock (so may a state's value_).
  std::exception_ptr error_;

 private:
  // SubmittedTask's: see there.
  void start_on(Reactor& loop, std::shared_ptr<ReactorLink> link,
                std::shared_ptr<EventualStateBase> self) {
    vars = current_context();
    TaskTracker::attach(loop, *this);
    reactor_ref_ = std::move(self);
    TaskTracker::call_soon(loop, &EventualStateBase::begin, this, nullptr);
    install_link(std::move(link));
  }
  void drop_unstarted() noexcept;
  // Stores the link cancel() goes through; cancels at once if cancel() came first.
  void install_link(std::shared_ptr<ReactorLink> link);
  // A cancel() reaching the loop: cancels the task unless it has ended.
  void cancel_on_loop() {
    if (root != nullptr) request_cancel();
  }
  static void begin(void* self_ptr, void*) {
    auto& self = *static_cast<EventualStateBase*>(self_ptr);
    if (self.cancelled()) [[unlikely]] {
      self.end(std::make_exception_ptr(Cancelled()), /*started=*/false);  // the body never runs
      return;
    }
    self.resume(self.root);
  }
  void leave() noexcept {
    // The frame first, while the context is whole: its destructors unhook from the context.
    std::exchange(root, {}).destroy();
    TaskTracker::detach(*TaskContext::reactor, *this);
  }
  [[noreturn]] void throw_inherited(const char* what) const;

  const Reactor* reactor_;
  const std::thread::id loop_thread_;
  EventualDriver* driver_;
  const std::uint32_t fork_generation_;
  // While the task is in its reactor (loop thread): the reactor's reference to this block.
  std::shared_ptr<EventualStateBase> reactor_ref_;
  // Made by the first waiter that sleeps (a blocking runner's wait drives the loop instead and
  // never does: it skips the condition variable's atomics in notify and destroy). Destroyed by
  // hand, and not at all in a forked child: threads of the parent may have been waiting on it at
  // the fork, and destroying a condition variable waits for its waiters (glibc), which do not
  // exist in the child.
  union {
    std::condition_variable done_cv_;
  };
  bool done_cv_made_ ABSL_GUARDED_BY(mu_) = false;
  // Written under mu_ (with what it publishes), read without it by ready(): a blocking runner
  // asks it at every loop turn.
  std::atomic<bool> done_ = false;
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool error_observed_ ABSL_GUARDED_BY(mu_) = false;
  // How cancel() reaches the loop; set by start_on().
  std::shared_ptr<ReactorLink> link_ ABSL_GUARDED_BY(mu_);
};

// The state of a task returning T, made with the task's frame (not started).
template <typename T>
class EventualState final : public EventualStateBase {
 public:
  EventualState(const Reactor* reactor, std::thread::id loop_thread, EventualDriver* driver,
                Task<T> task)
      : EventualStateBase(reactor, loop_thread, driver) {
    std::coroutine_handle<TaskPromise<T>> frame = std::move(task).release_for_detail();
    frame.promise().adopt_as_root(*this);
    root = frame;
    spawned = &kRoot;
  }

  // Requires ready(): the value (a copy), or rethrows the error (marking it looked at). For the
  // runner's run(); no lock on success (see error_).
  T result() {
    if (error_ != nullptr) rethrow_observed_error();
    if constexpr (!std::is_void_v<T>) return *value_;
  }

 private:
  // The frame has returned or thrown: the outcome goes straight into the state.
  static std::coroutine_handle<> finished(TaskContext& context) noexcept {
    auto& self = static_cast<EventualState&>(context);
    TaskPromise<T>& promise =
        std::coroutine_handle<TaskPromise<T>>::from_address(self.root.address()).promise();
    std::exception_ptr error = std::move(promise.error());
    if (error == nullptr) {
      try {
        if constexpr (std::is_void_v<T>) {
          self.complete([] {});
        } else {
          self.complete([&] { self.value_.emplace(std::move(*promise.value())); });
        }
      } catch (...) {
        error = std::current_exception();  // the value's move threw
      }
    }
    self.end(std::move(error), /*started=*/true);
    return std::noop_coroutine();
  }

  static constexpr SpawnedRoot kRoot{&EventualState::finished,
                                     &EventualStateBase::destroy_unfinished};

  struct Empty {};
  // As error_: set before done_, then only read.
  [[no_unique_address]] std::conditional_t<std::is_void_v<T>, Empty, std::optional<T>> value_;
};

// A task submitted to a runner and not yet on its loop (Runner::start()'s argument).
class SubmittedTask {
 public:
  explicit SubmittedTask(std::shared_ptr<EventualStateBase> state) noexcept
      : state_(std::move(state)) {}
  SubmittedTask(SubmittedTask&&) noexcept = default;
  SubmittedTask& operator=(SubmittedTask&&) = delete;
  // Dropped unstarted (the runner is going away): the frame is destroyed and the result fails
  // with RunnerShutDown.
  ~SubmittedTask() {
    if (state_ != nullptr) state_->drop_unstarted();
  }

  // On the loop thread of `reactor` (or, before it first runs, the thread that owns it): puts
  // the task in the reactor, to start in its next turn with the context variables current
  // here. cancel() reaches it through `link`, which the runner severs before destroying the
  // reactor.
  void start_on(Reactor& reactor, std::shared_ptr<ReactorLink> link) && {
    EventualStateBase& state = *state_;
    state.start_on(reactor, std::move(link), std::move(state_));
  }

  // The result's state (for a runner that keeps track of what it has pending).
  const std::shared_ptr<EventualStateBase>& state() const { return state_; }

 private:
  std::shared_ptr<EventualStateBase> state_;
};

}  // namespace weft::detail

#endif  // WEFT_RUNNERS_DETAIL_EVENTUAL_STATE_H_
