// Reactor: one event loop, backend-neutral (Twisted's reactor, asyncio's event
// loop).
//
// A Reactor runs callbacks: queued (call_soon), at a time (call_later,
// call_at), from another thread (call_from_thread), on fd readiness
// (watch_readable, watch_writable) and on POSIX signals (watch_signal). The
// waiting itself is done by a Backend (libuv, libevent, Asio, ...) chosen by
// name through make_reactor() in core/backend_registry.h. Coroutine tasks run
// on it through spawn() (core/spawn.h) or a Runner (runners/).
//
// Threading: a reactor belongs to the thread that runs it (or, before it first
// runs, to the thread that made it). call_from_thread(), stop() and
// is_running() are the only members safe to call from other threads; everything
// else is loop-thread only. Callbacks always run on the loop thread, never
// inside the call that scheduled them.
//
// Order: call_soon callbacks run in FIFO order. Timers run in deadline order,
// equal deadlines in the order they were scheduled, never before their
// deadline. A turn runs what was ready when the turn began; callbacks queued
// during a turn wait for the next, so a callback that re-queues itself cannot
// starve timers, I/O or cross-thread calls (docs/architecture.md, "One loop
// turn").
//
// Errors: an exception escaping a callback does not stop the loop; it goes to
// the error handler (by default printed to stderr with the kind of callback
// that threw) and the loop carries on.
//
// Lifetime: run(), stop() and run() again, any number of times. Destroying a
// reactor (loop thread, not running) drops everything pending without running
// it: ready and cross-thread callbacks, timers and watchers are released, and
// unfinished tasks are destroyed (their frames' destructors run; they never
// resume and their Deferreds never fire). No callback runs after the destructor
// returns; nothing leaks. Handles (TimerHandle, Watch, CallHandle, IoHandle)
// must not be used after their reactor is destroyed. Do not destroy a reactor
// while another thread may still call call_from_thread() or stop() on it.
//
// fork: a reactor belongs to the process that made it. In a forked child, the
// only thing to do with an inherited reactor is to destroy it: that releases
// the child's copies without touching the parent's registrations (the backend
// first detaches its kernel objects: uv_loop_fork, event_reinit,
// notify_fork). Any other use in the child throws UsageError.
//
// Time: every deadline saturates (add_saturating in core/time.h):
// call_later(Duration::max()) never fires, a deadline at TimePoint::min() is
// simply due. The reactor reads time from steady_clock, or from the ReactorClock it
// was made with (core/clock.h): a VirtualClock (core/virtual_clock.h) runs its timers
// on virtual time, exact and instant, for tests (docs/time.md).
#ifndef WEFT_CORE_REACTOR_H_
#define WEFT_CORE_REACTOR_H_

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "weft/core/backend.h"
#include "weft/core/call_handle.h"
#include "weft/core/clock.h"
#include "weft/core/detail/queued_call.h"
#include "weft/core/detail/ready_queue.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/detail/timer_queue.h"
#include "weft/core/time.h"
#include "weft/core/timer_handle.h"
#include "weft/core/watch.h"

// Debug builds check the loop-thread rule on every loop-thread-only entry
// point, and throw UsageError when it is broken (from a destructor that becomes
// std::terminate: destroying a reactor's objects on another thread while it
// runs has no safe way on). Release builds compile the checks out.
#ifndef WEFT_THREAD_CHECKS
#ifdef NDEBUG
#define WEFT_THREAD_CHECKS 0
#else
#define WEFT_THREAD_CHECKS 1
#endif
#endif

namespace weft {

namespace detail {
struct TaskTracker;
}

class Reactor final : private LoopHooks {
 public:
  using Callback = absl::AnyInvocable<void()>;
  // Receives an exception that escaped a callback and a short description of
  // the callback
  // ("timer callback", "readable watcher on fd 7", ...). Runs on the loop
  // thread.
  using ErrorHandler = absl::AnyInvocable<void(std::exception_ptr error, std::string_view where)>;
  using BackendFactory = absl::FunctionRef<std::unique_ptr<Backend>(LoopHooks&)>;

  // Makes a reactor on the backend `make_backend` returns. Most programs call
  // make_reactor() (core/backend_registry.h) instead. `name` is the registry
  // name, for listings and messages. `clock`: where the reactor reads time
  // (core/clock.h); null (the default): steady_clock, read directly.
  Reactor(std::string name, BackendFactory make_backend,
          std::unique_ptr<ReactorClock> clock = nullptr);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // The registry name ("libuv", "libevent:poll", ...) and the backend's own
  // description.
  const std::string& name() const { return name_; }
  std::string description() const { return backend_->description(); }
  // For a backend's typed accessor (e.g. weft::libuv::native_loop()).
  Backend& backend() { return *backend_; }

  // ---- Scheduling (loop thread) ----

  // Queues `callback` to run in the next turn, after everything queued before
  // it. The handle can cancel it until it starts running.
  CallHandle call_soon(Callback callback);
  // The same, for a small trivially copyable callable (a lambda capturing a pointer or two, a
  // function pointer): queued by value, with no Callback built, moved or destroyed. Inline.
  template <detail::InlineCallable F>
  CallHandle call_soon(F callable) {
    if (needs_callback_form(callable)) [[unlikely]] {
      return call_soon(Callback(std::move(callable)));
    }
#if WEFT_THREAD_CHECKS
    check_loop_thread("call_soon");
#endif
    const std::uint64_t sequence = ready_first_ + ready_.size();
    ready_.push_inline(callable);
    if (!turn_requested_) request_turn();
    return CallHandle(this, sequence, /*from_thread=*/false);
  }
  // Runs `callback` once, no earlier than `delay` (or `when`) from now. A
  // negative delay counts as zero; Duration::max() (or TimePoint::max()) means
  // never. The callback runs in a later turn, never inside this call, even if
  // it is already due: a timer added while timers run waits for the next turn.
  // Inside a callback of this reactor, call_later's `delay` counts from the moment that
  // callback returns to the loop: the reactor reads its clock once per callback that armed
  // timers, after all of them, rather than once per timer. The deadline is never early, and at
  // most min(delay, the rest of the callback) later than one read at the call (docs/time.md).
  TimerHandle call_later(Duration delay, Callback callback);
  TimerHandle call_at(TimePoint when, Callback callback);
  // The same, for a small trivially copyable callable, kept by value in the timer (as
  // call_soon's). Inline.
  template <detail::InlineCallable F>
  TimerHandle call_later(Duration delay, F callable) {
    if (needs_callback_form(callable)) [[unlikely]] {
      return call_later(delay, Callback(std::move(callable)));
    }
    const detail::PlainCall call = detail::plain_call(callable);
    return add_timer_after(delay, call.fn, call.a, call.b);
  }
  template <detail::InlineCallable F>
  TimerHandle call_at(TimePoint when, F callable) {
    if (needs_callback_form(callable)) [[unlikely]] {
      return call_at(when, Callback(std::move(callable)));
    }
    const detail::PlainCall call = detail::plain_call(callable);
    return add_timer(when, call.fn, call.a, call.b);
  }
  // The reactor's time (steady_clock, or its ReactorClock), read fresh: deadlines
  // computed from it are never early. Thread-safe.
  TimePoint now() const { return clock_ == nullptr ? Clock::now() : clock_->now(); }
  // The clock the reactor was made with; null for steady_clock.
  ReactorClock* clock() const { return clock_.get(); }

  // Thread-safe: queues `callback` from any thread and wakes the loop if it is
  // blocked. Callbacks from one thread run in the order they were queued. Each
  // runs exactly once if the reactor runs again; if the reactor is destroyed
  // first, it is dropped without running. The handle's cancel() is thread-safe
  // too: it returns true if the callback will not run.
  CallHandle call_from_thread(Callback callback);

  // Thread-safe: announces that another thread will call call_from_thread() (a
  // worker handing back its result), until the returned guard is destroyed. On
  // steady_clock this changes nothing; on virtual time (core/virtual_clock.h) the
  // loop neither jumps ahead nor declares a deadlock while a guard is held, since
  // that call could still make work. Guards must not outlive the reactor.
  class ExpectedCall {
   public:
    ExpectedCall() = default;
    ExpectedCall(ExpectedCall&& other) noexcept
        : reactor_(std::exchange(other.reactor_, nullptr)) {}
    ExpectedCall& operator=(ExpectedCall&& other) noexcept {
      if (this != &other) {
        release();
        reactor_ = std::exchange(other.reactor_, nullptr);
      }
      return *this;
    }
    ~ExpectedCall() { release(); }
    // Ends the announcement early (idempotent).
    void release();

   private:
    friend class Reactor;
    explicit ExpectedCall(Reactor* reactor) : reactor_(reactor) {}
    Reactor* reactor_ = nullptr;
  };
  [[nodiscard]] ExpectedCall expect_call_from_thread();

  // Wakes the loop (a blocking run_once() returns) at or soon after `deadline` on
  // steady_clock, whatever the reactor's clock, until the returned guard is destroyed: for
  // waits bounded in real time (a runner's run(task, timeout), its shutdown bound) on a
  // reactor whose clock may never get there by itself (virtual time, core/virtual_clock.h).
  // It runs nothing and is not work: has_work(), counts(), autojump and deadlock detection
  // ignore it. The caller checks steady_clock itself after each run_once(); a deadline already
  // past wakes nothing. Loop thread, the guard included; it must not outlive the reactor.
  class RealTimeAlarm {
   public:
    RealTimeAlarm() = default;
    RealTimeAlarm(RealTimeAlarm&& other) noexcept
        : reactor_(std::exchange(other.reactor_, nullptr)), deadline_(other.deadline_) {}
    RealTimeAlarm& operator=(RealTimeAlarm&& other) noexcept {
      if (this != &other) {
        release();
        reactor_ = std::exchange(other.reactor_, nullptr);
        deadline_ = other.deadline_;
      }
      return *this;
    }
    ~RealTimeAlarm() {
      if (reactor_ != nullptr) release();  // inline: a blocking run() makes an empty one each time
    }
    // Ends the alarm early (idempotent).
    void release();

   private:
    friend class Reactor;
    RealTimeAlarm(Reactor* reactor, TimePoint deadline) : reactor_(reactor), deadline_(deadline) {}
    Reactor* reactor_ = nullptr;
    TimePoint deadline_{};
  };
  [[nodiscard]] RealTimeAlarm wake_at_real_time(TimePoint deadline);

  // ---- Watchers (loop thread) ----

  // Calls `callback` whenever `fd` is readable (writable), until the Watch is
  // cancelled. At most one readable and one writable watcher per fd; a second
  // throws UsageError. weft watches a duplicate of `fd` that it owns, so a
  // watcher never sees events of another file that later reuses the number.
  // Cancel the watch before closing `fd`: until it is cancelled, the duplicate
  // keeps the underlying file open. Throws std::system_error if the fd cannot
  // be watched (e.g. a regular file on epoll).
  Watch watch_readable(int fd, Callback callback);
  Watch watch_writable(int fd, Callback callback);
  // Calls `callback` on the loop thread each time the process receives `signo`,
  // until the Watch is cancelled. Every reactor watching a signal gets it,
  // whatever its backend; the disposition the program had before weft watched
  // the signal (its own handler, SIG_IGN, SIG_DFL) comes back when the last
  // watch of that signal in the process is cancelled. Signals that arrive
  // close together may be delivered once, as the kernel merges them.
  Watch watch_signal(int signo, Callback callback);

  // ---- Running ----

  // Runs the loop until stop(). Waits (blocks in the kernel) while there is
  // nothing to do; does not return just because no work is left. Throws
  // UsageError if this reactor is already running. A stop() made before run()
  // makes run() return at once, having run nothing (the request is consumed).
  // After a stop() inside a turn, the rest of that turn still runs; what is
  // queued for later turns stays queued for the next run(): nothing is lost.
  void run();
  // Runs one loop iteration: waits for the kernel if `may_block` and there is
  // nothing ready, then runs what became ready. Does not consume a pending
  // stop(), and does not block while one is pending. Returns whether the
  // reactor still has work that could run later (libuv's uv_run() result):
  // queued or cross-thread callbacks, timers, watchers or unfinished tasks.
  bool run_once(bool may_block = true);
  // For drivers that wait by themselves instead of through run() or run_once()
  // (runners/guest_reactor.h): call when about to wait. On a clock that moves
  // only when told to (virtual time), with nothing ready, this lets the clock
  // move (autojump, or toward an advance() target) or fails deadlocked tasks
  // (docs/time.md); returns true if that made work to run now: step again
  // instead of waiting. On steady_clock it returns false at once. run() and
  // run_once(true) do it themselves. Loop thread.
  bool prepare_to_wait();
  // Thread-safe: consumes a pending stop() request; true if there was one.
  // For drivers that loop on run_once() themselves (runners/).
  bool take_stop_request() {
    // A load first: a driver asks at every turn, and a stop is rare.
    return stop_requested_.load(std::memory_order_relaxed) &&
           stop_requested_.exchange(false, std::memory_order_acq_rel);
  }
  // Thread-safe: asks run() to return at the end of the current turn, waking it
  // if blocked.
  void stop();
  // Thread-safe.
  bool is_running() const { return running_.load(std::memory_order_acquire); }
  // True on the thread currently running this reactor.
  bool in_loop_thread() const;

  // The reactor whose callback is running on this thread, or nullptr.
  static Reactor* current();

  // Replaces the handler for exceptions escaping callbacks (loop thread).
  void set_error_handler(ErrorHandler handler);
  // Hands an exception to the error handler, as if a callback described by
  // `where` threw it.
  void report_error(std::exception_ptr error, std::string_view where);

  // True if something is pending (the same test as run_once()'s result).
  bool has_work() const;

  // What is pending, for tests and diagnostics (loop thread).
  struct Counts {
    std::size_t ready = 0;        // call_soon callbacks waiting for a turn
    std::size_t timers = 0;       // pending timers
    std::size_t watches = 0;      // active fd and signal watchers
    std::size_t tasks = 0;        // spawned tasks not yet finished
    std::size_t from_thread = 0;  // cross-thread callbacks not yet taken in
    std::size_t io_handles = 0;   // live IoHandle registrations
  };
  Counts counts() const;

 private:
  friend class TimerHandle;
  friend class Watch;
  friend class CallHandle;
  friend class IoHandle;
  friend struct detail::TaskTracker;
  friend class ReactorClock;

  struct Watcher {
    Callback callback;
    std::uint64_t id = 0;
    bool running = false;    // its callback is on the stack
    bool cancelled = false;  // cancelled while running: the dispatcher frees it
  };
  // A watched fd, by the user's number (fds_). Its watchers are in its NativeTarget, which the
  // backend's reports reach with one lookup.
  struct FdEntry {
    int native_fd = -1;  // weft's duplicate of the user's fd
    IoEvents interest = IoEvents::kNone;
  };
  struct IoTarget;  // an IoHandle's registration (core/io_handle.h)
  // What a descriptor the backend reports belongs to (by_native_): a watched fd (the user's
  // number and its watchers), an IoHandle, or the signal pipe (-1 and nulls).
  struct NativeTarget {
    int user_fd = -1;
    IoTarget* io = nullptr;
    Watcher* reader = nullptr;
    Watcher* writer = nullptr;
    Watcher*& slot(Watch::Kind kind) { return kind == Watch::Kind::kReadable ? reader : writer; }
    Watcher* watcher(Watch::Kind kind) const {
      return kind == Watch::Kind::kReadable ? reader : writer;
    }
  };

  // LoopHooks.
  void run_turn() override;
  void timer_expired() override;
  void fd_ready(int native_fd, IoEvents events) override;

  class HookScope;
  class RunScope;

  // An inline callable goes the Callback way (which gives its errors and captures context
  // variables) if it is a null function pointer or is queued under context variables (it must
  // run under them).
  template <typename F>
  static bool needs_callback_form(const F& callable) {
    if constexpr (std::is_pointer_v<F>) {
      if (callable == nullptr) return true;
    }
    return detail::t_context != nullptr;
  }
  // The inline call_at and call_later's way in: a plain call (core/detail/queued_call.h).
  TimerHandle add_timer(TimePoint when, detail::PlainFunction fn, void* a, void* b);
  TimerHandle add_timer_after(Duration delay, detail::PlainFunction fn, void* a, void* b);
  // Both forms' one path (reactor.cc): `call` is what TimerQueue::push takes, a Callback
  // (checked: not empty, its context captured) or a plain call.
  template <typename... Call>
  TimerHandle schedule_at(TimePoint when, Call&&... call);
  template <typename... Call>
  TimerHandle schedule_after(Duration delay, Call&&... call);
  // Gives the timers that call_later() deferred inside a callback their deadlines (one clock
  // read); called as each callback returns and before anything reads the heap.
  void settle_timers() {
    if (timers_.has_deferred()) settle_deferred_timers();
  }
  void settle_deferred_timers();
  // Virtual time: asks the clock what to do when the loop would wait (prepare_to_wait).
  bool consult_clock();
  void fail_deadlocked_tasks();
  // Thread-safe: a ReactorClock told to move from another thread wakes the loop.
  void wake_for_clock() { backend_->wake(); }
  void sync_timer();
  // One backend_->run_once(), then the armed deadline if it has passed (see reactor.cc).
  void step_backend(bool may_block);
  void request_turn();
  Watch watch_fd(int fd, Watch::Kind kind, Callback callback);
  bool cancel_watch(Watch::Kind kind, int key, std::uint64_t id);
  bool watch_active(Watch::Kind kind, int key, std::uint64_t id) const;
  void release_fd_entry(int fd);
  void run_watcher(Watcher* watcher, Watch::Kind kind, int key);
  static void free_watcher(Watcher* watcher);
  // Runs every callback of `batch`, then empties it (keeping its capacity).
  void run_batch(std::vector<Callback>& batch, std::string_view where);
  void check_loop_thread(const char* what) const;
  // Throws UsageError in a forked child (see "fork" above).
  void check_not_forked(const char* what) const;
  // Cancels what a CallHandle names; see call_handle.h.
  bool cancel_call(std::uint64_t sequence, bool from_thread);
  bool call_pending(std::uint64_t sequence, bool from_thread) const;
  // Signals: one pipe per reactor, fed by the process-wide handler.
  void open_signal_pipe();
  void close_signal_pipe();
  void drain_signal_pipe();
  void dispatch_signal(int signo);
  // IoHandle registrations.
  IoTarget* register_io(int fd, absl::AnyInvocable<void(IoEvents)> on_ready);
  // Static: the target knows its reactor, and whether it is still there.
  static void set_io_interest(IoTarget* target, IoEvents events);
  static void unregister_io(IoTarget* target);

  std::string name_;
  // Before backend_: the backend may read time through it until it is destroyed.
  std::unique_ptr<ReactorClock> clock_;
  std::unique_ptr<Backend> backend_;
  ErrorHandler error_handler_;

  // Loop-thread state.
  detail::ReadyQueue ready_;  // queued for the next turn
  detail::ReadyQueue batch_;  // the batch of the current turn
  std::vector<Callback> incoming_batch_;
  // Every call_soon callback has a sequence number, counted without storing it: ready_[i] has
  // ready_first_ + i, batch_[i] has batch_first_ + i. A CallHandle names one by it; cancelling
  // empties its slot. batch_next_ is the index of the batch callback to run next.
  std::uint64_t ready_first_ = 1;
  std::uint64_t batch_first_ = 0;
  std::size_t batch_next_ = 0;
  std::size_t ready_cancelled_ = 0;
  bool turn_requested_ = false;
  // The clock as last read at the start of a turn with timers pending; deadlines at or before
  // it are due.
  TimePoint turn_now_{};
  // Inside a LoopHooks call: the native timer is synced once, when the hook returns.
  bool in_hook_ = false;
  bool in_run_ = false;  // inside run(), where a pending stop() skips further turns
  detail::TimerQueue timers_;
  TimePoint armed_deadline_ = TimePoint::max();
  // RealTimeAlarm deadlines (steady_clock), unordered: at most a few at a time.
  std::vector<TimePoint> real_alarms_;
  absl::flat_hash_map<int, FdEntry> fds_;             // by the user's fd
  absl::flat_hash_map<int, NativeTarget> by_native_;  // what the backend reports
  absl::flat_hash_map<int, std::vector<Watcher*>> signals_;
  absl::flat_hash_map<int, int> signal_slots_;  // signo -> slot in the fan-out
  int signal_read_fd_ = -1;
  int signal_write_fd_ = -1;
  std::size_t io_count_ = 0;  // live IoHandles
  // The fork generation this reactor was made in (core/detail/fork_generation.h).
  std::uint32_t fork_generation_ = 0;
  std::uint64_t next_watch_id_ = 1;
  detail::TaskContext* tasks_ = nullptr;
  std::size_t task_count_ = 0;

  // Cross-thread state. std::mutex, not absl::Mutex: ThreadSanitizer sees
  // pthread locks, and Debian's Abseil is not built with TSan annotations.
  mutable std::mutex incoming_mu_;
  std::vector<Callback> incoming_ ABSL_GUARDED_BY(incoming_mu_);
  // Sequence number of incoming_[0], and how many of incoming_ were cancelled.
  std::uint64_t incoming_first_ ABSL_GUARDED_BY(incoming_mu_) = 1;
  std::size_t incoming_cancelled_ ABSL_GUARDED_BY(incoming_mu_) = 0;
  std::atomic<bool> incoming_pending_{false};
  // ExpectedCall guards held (virtual time: another thread may still make work).
  std::atomic<std::size_t> expected_calls_{0};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};
  std::atomic<std::thread::id> loop_thread_{};
};

namespace detail {
// Lets the task machinery (core/spawn.h, core/deferred.h, ...) register live tasks with their
// reactor and queue their resumptions. Inline: a spawn does each of these once.
struct TaskTracker {
  static void attach(Reactor& reactor, TaskContext& context) noexcept {
    context.reactor = &reactor;
    context.prev = nullptr;
    context.next = reactor.tasks_;
    if (reactor.tasks_ != nullptr) reactor.tasks_->prev = &context;
    reactor.tasks_ = &context;
    ++reactor.task_count_;
  }
  static void detach(Reactor& reactor, TaskContext& context) noexcept {
    if (context.prev != nullptr) {
      context.prev->next = context.next;
    } else {
      reactor.tasks_ = context.next;
    }
    if (context.next != nullptr) context.next->prev = context.prev;
    context.prev = context.next = nullptr;
    --reactor.task_count_;
  }
  // Queues fn(a, b) for the reactor's next turn, in call_soon's order: no Callback, no
  // CallHandle, no context captured (a resumption installs its task's own). Loop thread only.
  static void call_soon(Reactor& reactor, ReadyQueue::PlainFunction fn, void* a, void* b) {
#if WEFT_THREAD_CHECKS
    reactor.check_loop_thread("call_soon");  // the public call a wrong thread would have made
#endif
    reactor.ready_.push(fn, a, b);
    if (!reactor.turn_requested_) reactor.request_turn();
  }
  // Queues context.resume(handle) for the next turn.
  static void resume_soon(TaskContext& context, std::coroutine_handle<> handle) {
    call_soon(
        *context.reactor,
        [](void* c, void* h) {
          static_cast<TaskContext*>(c)->resume(std::coroutine_handle<>::from_address(h));
        },
        &context, handle.address());
  }
};
}  // namespace detail

}  // namespace weft

#endif  // WEFT_CORE_REACTOR_H_
