#include "weft/core/reactor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "weft/core/detail/context_data.h"
#include "weft/core/detail/exception_text.h"
#include "weft/core/detail/fast_tls.h"
#include "weft/core/detail/fork_generation.h"
#include "weft/core/detail/portable.h"
#include "weft/core/detail/signal_fan_out.h"
#include "weft/core/errors.h"
#include "weft/core/io_handle.h"
#include "weft/core/timer.h"
#include "weft/core/virtual_clock.h"

namespace weft {
namespace {

// Initial-exec (core/detail/fast_tls.h): read and set by every turn.
WEFT_FAST_TLS constinit thread_local Reactor* t_current = nullptr;

std::string describe(Watch::Kind kind, int key) {
  switch (kind) {
    case Watch::Kind::kReadable:
      return absl::StrCat("readable watcher on fd ", key);
    case Watch::Kind::kWritable:
      return absl::StrCat("writable watcher on fd ", key);
    case Watch::Kind::kSignal:
      return absl::StrCat("signal watcher for signal ", key, " (", strsignal(key), ")");
    case Watch::Kind::kNone:
      break;
  }
  return "callback";
}

// Context variables (core/context.h): a callback scheduled while a non-root context is
// current runs in that context. In the root context (the common case) this is one
// thread-local load and a branch; otherwise the callback is wrapped with a reference to the
// context, which it installs around each run.
[[gnu::noinline]] void wrap_in_context(Reactor::Callback& callback) {
  callback = [vars = detail::current_context(), inner = std::move(callback)]() mutable {
    detail::ContextSwitch use(vars);
    inner();
  };
}
inline void capture_context(Reactor::Callback& callback) {
  if (detail::t_context != nullptr) [[unlikely]] {
    wrap_in_context(callback);
  }
}

// Two descriptors name the same open file if they agree on device and inode.
// Used to notice a watched fd that was closed and reused without its watch
// being cancelled.
bool same_file(int a, int b) {
  struct stat sa {};
  struct stat sb {};
  if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

IoEvents bit_of(Watch::Kind kind) {
  return kind == Watch::Kind::kReadable ? IoEvents::kReadable : IoEvents::kWritable;
}

// The backend names the descriptor it was given, which for a watched fd is weft's duplicate;
// say the caller's number instead.
// The backend's own reason is kept; its mention of the duplicate becomes the caller's fd.
[[noreturn]] void rethrow_for_fd(const std::system_error& error, int fd, int native) {
  std::string reason = error.what();
  // std::system_error appends ": <strerror>" to what it is given; drop it, it comes back.
  const std::string suffix = ": " + error.code().message();
  if (reason.size() > suffix.size() &&
      reason.compare(reason.size() - suffix.size(), suffix.size(), suffix) == 0) {
    reason.resize(reason.size() - suffix.size());
  }
  const std::string native_name = absl::StrCat("fd ", native);
  bool named = false;
  for (std::size_t at = reason.find(native_name); at != std::string::npos;
       at = reason.find(native_name, at + 1)) {
    const std::size_t end = at + native_name.size();
    if (end < reason.size() && std::isdigit(static_cast<unsigned char>(reason[end]))) continue;
    reason.replace(at, native_name.size(), absl::StrCat("fd ", fd));
    named = true;
    break;
  }
  if (!named) reason = absl::StrCat("weft: cannot watch fd ", fd, ": ", reason);
  absl::StrAppend(&reason, " (weft watches its duplicate, fd ", native, ")");
  throw std::system_error(error.code(), reason);
}

// weft's own descriptors stay off 0, 1 and 2: with a standard stream closed, the lowest free
// number would be one of them, and a program writing to "stdout" would write into weft's pipe.
constexpr int kFirstPrivateFd = 3;

int move_off_standard_streams(int fd) {
  if (fd < 0 || fd >= kFirstPrivateFd) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, kFirstPrivateFd);
  const int error = errno;
  close(fd);
  errno = error;
  return moved;
}

// A native timer is never armed further ahead than this: some libraries misbehave with
// deadlines centuries away (libevent stalls its other timers). Firing early is harmless: the
// reactor finds nothing due and re-arms.
constexpr Duration kMaxNativeTimeout = std::chrono::hours(1);

// Queues whose capacity grew past this in a burst give it back when they are quiet again.
constexpr std::size_t kKeepCapacity = 1 << 16;

int make_pipe(int fds[2]) {
  // pipe2 sets the flags atomically; macOS has none, and the portable fallbacks
  // (core/detail/portable.h) take its path on Linux too.
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
  if (!detail::force_portable_fallbacks()) {
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
  } else
#endif
  {
    if (pipe(fds) != 0) return -1;
    for (int i = 0; i < 2; ++i) {
      fcntl(fds[i], F_SETFD, FD_CLOEXEC);
      fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
  }
  // Moving a descriptor keeps its O_NONBLOCK (a file status flag); F_DUPFD_CLOEXEC sets
  // close-on-exec on the copy.
  for (int i = 0; i < 2; ++i) {
    fds[i] = move_off_standard_streams(fds[i]);
    if (fds[i] < 0) {
      const int error = errno;
      if (fds[1 - i] >= 0) close(fds[1 - i]);
      errno = error;
      return -1;
    }
  }
  return 0;
}

}  // namespace

// An IoHandle's registration. Heap-allocated so that it can outlive its handle while its
// callback is on the stack (like Watcher).
struct Reactor::IoTarget {
  Reactor* reactor = nullptr;  // null once the reactor is gone
  absl::AnyInvocable<void(IoEvents)> callback;
  int fd = -1;
  IoEvents interest = IoEvents::kNone;
  bool registered = false;  // the backend may hold something for fd (release_fd owed)
  bool running = false;
  bool released = false;
};

// Marks this thread as running the reactor's callbacks, for Reactor::current()
// and for the thread checks. Used by every LoopHooks entry, so it also covers a
// host that drives the backend's native loop itself. Callbacks run in the root context
// unless they captured one, whatever context the thread that drives the loop has (a blocking
// runner's caller): the scope installs an empty one.
class Reactor::HookScope {
 public:
  explicit HookScope(Reactor& reactor)
      : reactor_(reactor), previous_(t_current), was_in_hook_(reactor.in_hook_) {
    t_current = &reactor;
    reactor.in_hook_ = true;
    const std::thread::id self = std::this_thread::get_id();
    if (reactor.loop_thread_.load(std::memory_order_relaxed) != self) {
      reactor.loop_thread_.store(self, std::memory_order_relaxed);
    }
  }
  // Timers armed or cancelled by the hook's callbacks reach the native timer here, once.
  ~HookScope() {
    reactor_.in_hook_ = was_in_hook_;
    if (!was_in_hook_) reactor_.sync_timer();
    t_current = previous_;
  }
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;

 private:
  Reactor& reactor_;
  Reactor* previous_;
  bool was_in_hook_;
  detail::ContextRef root_vars_;
  detail::ContextSwitch root_context_{root_vars_};
};

// run() and run_once(): refuses re-entry, owns the running flag.
class Reactor::RunScope {
 public:
  RunScope(Reactor& reactor, const char* what) : reactor_(reactor), previous_(t_current) {
    if (t_current == &reactor || reactor.running_.exchange(true, std::memory_order_acq_rel)) {
      throw UsageError(absl::StrCat("weft: Reactor::", what, " called while reactor '",
                                    reactor.name_, "' is already running"));
    }
    reactor.loop_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    t_current = &reactor;
  }
  ~RunScope() {
    t_current = previous_;
    reactor_.running_.store(false, std::memory_order_release);
  }
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

 private:
  Reactor& reactor_;
  Reactor* previous_;
};

Reactor::Reactor(std::string name, BackendFactory make_backend, std::unique_ptr<ReactorClock> clock)
    : name_(std::move(name)),
      clock_(std::move(clock)),
      fork_generation_((detail::watch_forks(), detail::fork_generation())) {
  backend_ = make_backend(*this);
  if (clock_ != nullptr) clock_->bind(*this);
}

Reactor::~Reactor() {
  if (fork_generation_ != detail::fork_generation()) {
    // Inherited through fork(): detach the backend from the parent's kernel objects first, so
    // that the teardown below changes nothing the parent sees. If the native library cannot,
    // abandon the backend (its memory and descriptors stay with this process until it exits
    // or execs) rather than touch the parent's registrations.
    running_.store(false, std::memory_order_relaxed);
    loop_thread_.store(std::thread::id(), std::memory_order_relaxed);
    try {
      backend_->after_fork_in_child();
    } catch (...) {
      (void)backend_.release();
    }
    fork_generation_ = detail::fork_generation();
    if (backend_ == nullptr) return;
  }
  check_loop_thread("~Reactor");
  // Tasks first: destroying a frame runs its destructors, which may cancel
  // timers and watches and so need the rest of the reactor intact. Each task
  // leaves the list as its root frame is destroyed (TaskContext::destroy_root).
  while (tasks_ != nullptr) tasks_->destroy_root();

  // Destroying a dropped callback can run code that queues more; drain until
  // quiet.
  for (;;) {
    detail::ReadyQueue ready;
    ready.swap(ready_);
    detail::ReadyQueue batch;
    batch.swap(batch_);
    std::vector<Callback> incoming;
    {
      std::lock_guard lock(incoming_mu_);
      incoming.swap(incoming_);
    }
    const bool had_timers = !timers_.empty();
    timers_.clear();
    const bool had_watches = !fds_.empty() || !signals_.empty() || io_count_ != 0;
    while (!fds_.empty()) {
      const int fd = fds_.begin()->first;
      NativeTarget& target = by_native_.find(fds_.begin()->second.native_fd)->second;
      Watcher* reader = std::exchange(target.reader, nullptr);
      Watcher* writer = std::exchange(target.writer, nullptr);
      release_fd_entry(fd);
      free_watcher(reader);
      free_watcher(writer);
    }
    while (!signals_.empty()) {
      auto node = signals_.extract(signals_.begin());
      for (Watcher* watcher : node.mapped()) free_watcher(watcher);
    }
    close_signal_pipe();
    // IoHandles still open belong to their owners; unregister them so the backend holds
    // nothing. An owner that resets its handle later (against the rules) only frees memory.
    for (auto it = by_native_.begin(); it != by_native_.end();) {
      if (IoTarget* io = it->second.io) {
        try {
          if (io->registered) backend_->release_fd(io->fd);
        } catch (...) {
        }
        io->released = true;
        io->reactor = nullptr;
        --io_count_;  // counted as a watch above: the drain must end
        by_native_.erase(it++);
      } else {
        ++it;
      }
    }
    if (ready.empty() && batch.empty() && incoming.empty() && !had_timers && !had_watches) {
      break;
    }
  }
  backend_.reset();
}

Reactor* Reactor::current() { return t_current; }

TimePoint loop_time() {
  const Reactor* reactor = t_current;
  return reactor != nullptr ? reactor->now() : Clock::now();
}

void ReactorClock::wake_reactor() const {
  if (reactor_ != nullptr) reactor_->wake_for_clock();
}

bool Reactor::in_loop_thread() const {
  return loop_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

void Reactor::check_not_forked(const char* what) const {
  if (fork_generation_ != detail::fork_generation()) [[unlikely]] {
    throw UsageError(absl::StrCat("weft: Reactor::", what, " on reactor '", name_,
                                  "', which was made before fork(): in the child an inherited "
                                  "reactor can only be destroyed; make a new one"));
  }
}

void Reactor::check_loop_thread([[maybe_unused]] const char* what) const {
#if WEFT_THREAD_CHECKS
  if (running_.load(std::memory_order_relaxed) && !in_loop_thread()) {
    throw UsageError(absl::StrCat("weft: Reactor::", what,
                                  " called from a thread that is not running reactor '", name_,
                                  "'; only call_from_thread(), stop() and is_running() are "
                                  "thread-safe"));
  }
#endif
}

// ---- Scheduling ----

void Reactor::request_turn() {
  check_not_forked("call_soon");
  turn_requested_ = true;
  backend_->request_turn();
}

CallHandle Reactor::call_soon(Callback callback) {
  check_loop_thread("call_soon");
  if (callback == nullptr) throw std::invalid_argument("weft: call_soon: empty callback");
  capture_context(callback);
  const std::uint64_t sequence = ready_first_ + ready_.size();
  ready_.push(std::move(callback));
  if (!turn_requested_) request_turn();
  return CallHandle(this, sequence, /*from_thread=*/false);
}

TimerHandle Reactor::call_later(Duration delay, Callback callback) {
  if (callback == nullptr) throw std::invalid_argument("weft: call_later: empty callback");
  capture_context(callback);
  return schedule_after(delay, std::move(callback));
}

TimerHandle Reactor::call_at(TimePoint when, Callback callback) {
  if (callback == nullptr) throw std::invalid_argument("weft: call_later: empty callback");
  capture_context(callback);
  return schedule_at(when, std::move(callback));
}

TimerHandle Reactor::add_timer(TimePoint when, detail::PlainFunction fn, void* a, void* b) {
  return schedule_at(when, fn, a, b);
}
TimerHandle Reactor::add_timer_after(Duration delay, detail::PlainFunction fn, void* a, void* b) {
  return schedule_after(delay, fn, a, b);
}

template <typename... Call>
TimerHandle Reactor::schedule_at(TimePoint when, Call&&... call) {
  check_loop_thread("call_later");
  check_not_forked("call_later");
  const detail::TimerId id = timers_.push(when, std::forward<Call>(call)...);
  // Inside a turn the native timer is synced once at its end.
  if (!in_hook_ && when < armed_deadline_) sync_timer();
  return TimerHandle(this, id);
}

template <typename... Call>
TimerHandle Reactor::schedule_after(Duration delay, Call&&... call) {
  check_loop_thread("call_later");  // before in_hook_ is read
  if (delay < Duration::zero()) delay = Duration::zero();
  if (!in_hook_) return schedule_at(add_saturating(now(), delay), std::forward<Call>(call)...);
  // Inside a callback: the deadline is taken when the callback returns (settle_timers), from
  // one clock read made after every call_later of the callback, so it is never early; a timer
  // cancelled before then costs no clock read and no heap work at all.
  check_not_forked("call_later");
  return TimerHandle(this, timers_.push_after(delay, std::forward<Call>(call)...));
}

void Reactor::settle_deferred_timers() {
  timers_.flush(timers_.deferred() != 0 ? now() : TimePoint());
}

bool TimerHandle::cancel() {
  if (reactor_ == nullptr) return false;
  reactor_->check_loop_thread("TimerHandle::cancel");
  if (!reactor_->timers_.cancel(id_)) return false;
  if (!reactor_->in_hook_) reactor_->sync_timer();
  return true;
}

bool TimerHandle::park() {
  if (reactor_ == nullptr) return false;
  reactor_->check_loop_thread("Timer::stop");
  if (!reactor_->timers_.park(id_)) return false;
  if (!reactor_->in_hook_) reactor_->sync_timer();
  return true;
}

bool TimerHandle::pending() const { return reactor_ != nullptr && reactor_->timers_.pending(id_); }

TimePoint TimerHandle::deadline() const {
  if (!pending()) return TimePoint::max();
  reactor_->settle_timers();  // a deadline deferred to the end of the callback is taken now
  return reactor_->timers_.deadline(id_);
}

bool TimerHandle::reschedule(TimePoint when) {
  if (reactor_ == nullptr) return false;
  reactor_->check_loop_thread("TimerHandle::reschedule");
  if (!reactor_->timers_.reschedule(id_, when)) return false;
  if (!reactor_->in_hook_) reactor_->sync_timer();
  return true;
}

void Timer::start_at(TimePoint when) {
  if (handle_.reschedule(when)) return;
  handle_ = reactor_->call_at(when, [this] { callback_(); });
}

bool TimerHandle::reschedule_after(Duration delay) {
  if (reactor_ == nullptr) return false;
  reactor_->check_loop_thread("Timer::start_after");
  if (!reactor_->in_hook_) return reschedule(add_saturating(reactor_->now(), delay));
  // Inside a callback, as call_later: the deadline is taken when the callback returns.
  return reactor_->timers_.reschedule_after(id_, delay);
}

void Timer::start_after(Duration delay) {
  if (delay < Duration::zero()) delay = Duration::zero();
  if (handle_.reschedule_after(delay)) return;
  handle_ = reactor_->call_later(delay, [this] { callback_(); });
}

// Hands the earliest deadline to the backend's one timer. A deadline that is already due is
// not armed natively: inside a native timer callback, a timer armed in the past may fire again
// in the same native pass (libuv's does) before weft can run anything, so a due timer becomes
// a requested turn instead. Far deadlines are clamped (kMaxNativeTimeout).
void Reactor::sync_timer() {
  settle_timers();
  TimePoint next = timers_.empty() ? TimePoint::max() : timers_.next_deadline();
  if (next != TimePoint::max()) {
    if (next <= turn_now_) {
      if (!turn_requested_) request_turn();
      next = TimePoint::max();
    } else if (clock_ != nullptr) [[unlikely]] {
      // The native timer runs on real time: arm it for the moment the clock gets there (never,
      // for virtual time, which moves in prepare_to_wait instead).
      next = clock_->real_deadline(next);
      if (next != TimePoint::max()) {
        next = std::min(next, add_saturating(Clock::now(), kMaxNativeTimeout));
      }
    } else if (next > add_saturating(turn_now_, kMaxNativeTimeout)) {
      next = std::min(next, add_saturating(Clock::now(), kMaxNativeTimeout));
    }
  }
  if (!real_alarms_.empty()) [[unlikely]] {
    // Real-time alarms (a runner's timeout): the earliest still ahead. One already past has
    // woken the loop (or was set late); arming it would fire at once, again and again.
    const TimePoint real_now = Clock::now();
    for (const TimePoint alarm : real_alarms_) {
      if (alarm > real_now) next = std::min(next, alarm);
    }
    if (next != TimePoint::max()) {
      next = std::min(next, add_saturating(real_now, kMaxNativeTimeout));
    }
  }
  if (next == armed_deadline_) return;
  if (next == TimePoint::max()) {
    backend_->clear_timer();
  } else {
    backend_->set_timer(next);
  }
  armed_deadline_ = next;
}

CallHandle Reactor::call_from_thread(Callback callback) {
  check_not_forked("call_from_thread");
  if (callback == nullptr) throw std::invalid_argument("weft: call_from_thread: empty callback");
  capture_context(callback);  // the calling thread's context
  bool first;
  std::uint64_t sequence;
  {
    std::lock_guard lock(incoming_mu_);
    first = incoming_.empty();
    sequence = incoming_first_ + incoming_.size();
    incoming_.push_back(std::move(callback));
    incoming_pending_.store(true, std::memory_order_relaxed);
  }
  // Only the call that made the queue non-empty wakes the loop; the others ride
  // along.
  if (first) backend_->wake();
  return CallHandle(this, sequence, /*from_thread=*/true);
}

bool CallHandle::cancel() {
  return reactor_ != nullptr && reactor_->cancel_call(sequence_, from_thread_);
}

bool CallHandle::pending() const {
  return reactor_ != nullptr && reactor_->call_pending(sequence_, from_thread_);
}

bool Reactor::cancel_call(std::uint64_t sequence, bool from_thread) {
  if (from_thread) {
    Callback dropped;  // destroyed after the lock is released: its destructor may queue more
    std::lock_guard lock(incoming_mu_);
    if (sequence < incoming_first_ || sequence - incoming_first_ >= incoming_.size()) {
      return false;
    }
    Callback& slot = incoming_[sequence - incoming_first_];
    if (slot == nullptr) return false;
    dropped = std::move(slot);
    slot = nullptr;
    ++incoming_cancelled_;
    return true;
  }
  check_loop_thread("CallHandle::cancel");
  detail::QueuedCall dropped;  // destroyed last: a Callback's destructor may queue more
  if (sequence >= ready_first_ && sequence - ready_first_ < ready_.size()) {
    if (!ready_.cancel(sequence - ready_first_, dropped)) return false;
    ++ready_cancelled_;
    return true;
  }
  if (sequence >= batch_first_ + batch_next_ && sequence - batch_first_ < batch_.size()) {
    return batch_.cancel(sequence - batch_first_, dropped);
  }
  return false;
}

bool Reactor::call_pending(std::uint64_t sequence, bool from_thread) const {
  if (from_thread) {
    std::lock_guard lock(incoming_mu_);
    return sequence >= incoming_first_ && sequence - incoming_first_ < incoming_.size() &&
           incoming_[sequence - incoming_first_] != nullptr;
  }
  if (sequence >= ready_first_ && sequence - ready_first_ < ready_.size()) {
    return ready_.pending(sequence - ready_first_);
  }
  return sequence >= batch_first_ + batch_next_ && sequence - batch_first_ < batch_.size() &&
         batch_.pending(sequence - batch_first_);
}

// ---- Running ----

void Reactor::run() {
  check_not_forked("run");
  RunScope scope(*this, "run");
  in_run_ = true;
  struct ClearInRun {
    bool& flag;
    ~ClearInRun() { flag = false; }
  } clear{in_run_};
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) {
    if (clock_ != nullptr) [[unlikely]] {
      consult_clock();
    }
    step_backend(/*may_block=*/true);
  }
}

bool Reactor::run_once(bool may_block) {
  check_not_forked("run_once");
  {
    RunScope scope(*this, "run_once");
    const bool block = may_block && !stop_requested_.load(std::memory_order_acquire);
    if (block && clock_ != nullptr) [[unlikely]] {
      consult_clock();
    }
    step_backend(block);
  }
  return has_work();
}

// A native timer may fire after its deadline: libuv's clock counts whole milliseconds,
// libevent's is coarse, Asio arms its timerfd in whole microseconds from a clock read taken
// before the system call (later still if the thread is preempted in between), and a timerfd's
// expiry reaches the poll only after the timer interrupt. A host steps when its clock reaches
// weft's deadline (GuestReactor::timeout()); a step that ends past the deadline delivers it
// here, for every backend, or that host would find nothing run and step again at once until
// the native timer caught up.
void Reactor::step_backend(bool may_block) {
  backend_->run_once(may_block);
  if (armed_deadline_ != TimePoint::max() && Clock::now() >= armed_deadline_) [[unlikely]] {
    backend_->clear_timer();
    timer_expired();
  }
}

bool Reactor::has_work() const {
  if (ready_.size() > ready_cancelled_ || !timers_.empty() || !fds_.empty() || !signals_.empty() ||
      io_count_ != 0 || task_count_ != 0) {
    return true;
  }
  return incoming_pending_.load(std::memory_order_acquire);
}

// ---- Clocks that move when told (core/clock.h, core/virtual_clock.h) ----

Reactor::ExpectedCall Reactor::expect_call_from_thread() {
  expected_calls_.fetch_add(1, std::memory_order_acq_rel);
  return ExpectedCall(this);
}

void Reactor::ExpectedCall::release() {
  if (Reactor* reactor = std::exchange(reactor_, nullptr)) {
    // The last guard gone may let a virtual clock move: the loop must ask again.
    if (reactor->expected_calls_.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
        reactor->clock_ != nullptr) {
      reactor->wake_for_clock();
    }
  }
}

Reactor::RealTimeAlarm Reactor::wake_at_real_time(TimePoint deadline) {
  check_loop_thread("wake_at_real_time");
  check_not_forked("wake_at_real_time");
  real_alarms_.push_back(deadline);
  if (!in_hook_) sync_timer();
  return RealTimeAlarm(this, deadline);
}

void Reactor::RealTimeAlarm::release() {
  if (Reactor* reactor = std::exchange(reactor_, nullptr)) {
    reactor->check_loop_thread("RealTimeAlarm::release");
    std::vector<TimePoint>& alarms = reactor->real_alarms_;
    if (auto it = std::find(alarms.begin(), alarms.end(), deadline_); it != alarms.end()) {
      *it = alarms.back();
      alarms.pop_back();
    }
    // The native timer may stay armed for it: an early native firing only re-arms (and a
    // destructor had better not call into the backend, which may throw).
  }
}

bool Reactor::prepare_to_wait() {
  check_loop_thread("prepare_to_wait");
  check_not_forked("prepare_to_wait");
  if (clock_ == nullptr) return false;
  return consult_clock();
}

// The loop is about to wait. Only when nothing is ready: time moves between turns, never while
// work queued at the current time is still waiting to run. (run_once() does not wait, and so
// does not get here, while a stop() is pending; a host's loop, which ignores stop(), does.)
bool Reactor::consult_clock() {
  if (turn_requested_ || ready_.size() > ready_cancelled_ ||
      incoming_pending_.load(std::memory_order_acquire)) {
    return false;
  }
  settle_timers();
  ReactorClock::IdleState state;
  if (!timers_.empty()) state.next_deadline = timers_.next_deadline();
  state.quiet = fds_.empty() && signals_.empty() && io_count_ == 0 &&
                expected_calls_.load(std::memory_order_acquire) == 0;
  state.tasks = task_count_;
  if (state.quiet && state.next_deadline == TimePoint::max()) {
    // Only here can it matter (a deadlock): tasks exempt from detection do not count.
    for (const detail::TaskContext* task = tasks_; task != nullptr; task = task->next) {
      if (task->deadlock_exempt) --state.tasks;
    }
  }
  switch (clock_->on_idle(state)) {
    case ReactorClock::IdleAction::kWait:
      return false;
    case ReactorClock::IdleAction::kRunDue:
      // The turn reads the clock again; timers now due run in it.
      request_turn();
      return true;
    case ReactorClock::IdleAction::kDeadlock: {
      HookScope scope(*this);  // task code may run (cleanup of a Deferred failing at once)
      fail_deadlocked_tasks();
      return turn_requested_;
    }
  }
  return false;
}

// Every unfinished task waits with nothing that could wake it: cancel each, with a Deadlock
// as the reason its Deferred reports (core/spawn.h). Their cleanup runs in the next turns. A
// task that shields itself from the cancellation and waits again is beyond help: it is
// reported once, and the loop waits as a real one would.
void Reactor::fail_deadlocked_tasks() {
  std::vector<detail::TaskContext*> tasks;
  for (detail::TaskContext* task = tasks_; task != nullptr; task = task->next) {
    if (!task->deadlock_exempt) tasks.push_back(task);
  }
  std::string what = absl::StrCat(
      "weft: deadlock on reactor '", name_, "' at ", clock_->describe(), ": ", tasks.size(),
      tasks.size() == 1 ? " task waits" : " tasks wait",
      " with nothing that could ever wake them (no callback ready, no timer that will fire, no "
      "fd or signal watched, no cross-thread call pending or expected); without virtual time "
      "the loop would hang here (docs/time.md, \"Deadlock detection\")");
  const std::exception_ptr error = std::make_exception_ptr(Deadlock(what));
  bool fresh = false;
  {
    // Resumptions wait until every task is cancelled: none finishes (and frees its context)
    // while the list is being walked.
    detail::ResumptionBatch batch;
    for (detail::TaskContext* task : tasks) {
      if (task->cancel_reason != nullptr) continue;
      task->cancel_reason = error;
      fresh = true;
      task->request_cancel();
    }
  }
  if (fresh && !turn_requested_) {
    report_error(error, "tasks shielded from the cancellation that a deadlock makes");
  }
}

void Reactor::stop() {
  check_not_forked("stop");
  stop_requested_.store(true, std::memory_order_release);
  // Also from the loop thread: the wake keeps the rest of this iteration from
  // blocking.
  backend_->wake();
}

void Reactor::run_turn() {
  HookScope scope(*this);
  turn_requested_ = false;
  // One clock read per turn, and none when no timer is pending (the common call_soon turn): a
  // stale turn_now_ is only ever earlier than the truth, so "deadline <= turn_now_" (due, see
  // sync_timer) stays true of every timer it is asked about.
  if (!timers_.empty()) {
    turn_now_ = now();
  } else {
    timers_.trim_if_idle();  // a burst's memory, once a turn finds its timers all gone
  }
  if (in_run_ && stop_requested_.load(std::memory_order_acquire)) {
    // run() returns at the end of this iteration; this turn's work waits for the next run().
    // Due timers are not run either; sync_timer (at the end of this hook) turns them into a
    // requested turn rather than re-arming the native timer in the past, which libuv would
    // fire again in this same native pass, forever.
    if (ready_.size() > ready_cancelled_ || incoming_pending_.load(std::memory_order_relaxed)) {
      request_turn();
    }
    return;
  }
  // 1. The ready batch: what was queued before this turn began.
  batch_.swap(ready_);
  batch_first_ = ready_first_;
  ready_first_ += batch_.size();
  ready_cancelled_ = 0;
  for (batch_next_ = 0; batch_next_ < batch_.size();) {
    try {
      batch_.run(batch_next_++);
    } catch (...) {
      report_error(std::current_exception(), "call_soon callback");
    }
    settle_timers();
    detail::clear_root_context();
  }
  batch_.clear();
  batch_first_ = 0;
  batch_next_ = 0;
  // A burst's capacity is given back once the queues are quiet again.
  if (batch_.capacity() > kKeepCapacity && ready_.size() < kKeepCapacity / 4) batch_.release();

  // 2. Cross-thread callbacks taken in so far.
  if (incoming_pending_.load(std::memory_order_acquire)) {
    {
      std::lock_guard lock(incoming_mu_);
      incoming_batch_.swap(incoming_);
      incoming_first_ += incoming_batch_.size();
      incoming_cancelled_ = 0;
      incoming_pending_.store(false, std::memory_order_relaxed);
    }
    run_batch(incoming_batch_, "call_from_thread callback");
    if (incoming_batch_.capacity() > kKeepCapacity) std::vector<Callback>().swap(incoming_batch_);
  }

  // 3. Timers due at the turn's clock reading, one at a time so that an earlier
  // callback can still cancel a later one. Only timers that existed when the pass began: one
  // that a callback adds (or moves) into the past runs next turn, so a timer re-arming itself
  // at a past deadline cannot keep this turn going forever.
  if (!timers_.empty()) {
    const std::uint64_t cutoff = timers_.next_sequence();
    detail::QueuedCall call;  // a Callback is destroyed as it returns, before the next runs
    settle_timers();
    while (timers_.pop_due(turn_now_, cutoff, call)) {
      try {
        call.run();
      } catch (...) {
        report_error(std::current_exception(), "timer callback");
      }
      settle_timers();
      detail::clear_root_context();
    }
  }
  if (ready_.size() > ready_cancelled_ && !turn_requested_) request_turn();
}

void Reactor::run_batch(std::vector<Callback>& batch, std::string_view where) {
  for (Callback& callback : batch) {
    if (callback == nullptr) continue;  // cancelled
    try {
      callback();
    } catch (...) {
      report_error(std::current_exception(), where);
    }
    settle_timers();
    detail::clear_root_context();
  }
  batch.clear();
}

void Reactor::timer_expired() {
  armed_deadline_ = TimePoint::max();
  run_turn();
}

// ---- Watchers ----

Watch Reactor::watch_readable(int fd, Callback callback) {
  return watch_fd(fd, Watch::Kind::kReadable, std::move(callback));
}

Watch Reactor::watch_writable(int fd, Callback callback) {
  return watch_fd(fd, Watch::Kind::kWritable, std::move(callback));
}

Watch Reactor::watch_fd(int fd, Watch::Kind kind, Callback callback) {
  check_loop_thread("watch_readable/watch_writable");
  check_not_forked("watch_readable/watch_writable");
  if (callback == nullptr) throw std::invalid_argument("weft: watch: empty callback");
  capture_context(callback);
  auto it = fds_.find(fd);
  NativeTarget* target;
  if (it == fds_.end()) {
    // Watch a duplicate weft owns: epoll registers open files, not numbers, so
    // a registration on the caller's fd could outlive a close() and report a
    // reused number's neighbour.
    const int native = fcntl(fd, F_DUPFD_CLOEXEC, kFirstPrivateFd);
    if (native < 0) {
      throw std::system_error(errno, std::generic_category(),
                              absl::StrCat("weft: cannot watch fd ", fd));
    }
    it = fds_.emplace(fd, FdEntry{.native_fd = native}).first;
    target = &(by_native_[native] = NativeTarget{.user_fd = fd});
  } else if (!same_file(fd, it->second.native_fd)) {
    throw UsageError(absl::StrCat("weft: fd ", fd,
                                  " is still watched for a file that was closed since; cancel "
                                  "that watch before watching the fd again"));
  } else {
    target = &by_native_.find(it->second.native_fd)->second;
  }
  FdEntry& entry = it->second;
  // Neither map changes until the watcher is stored: the backend calls back into the reactor
  // only from its loop (core/backend.h).
  Watcher*& slot = target->slot(kind);
  if (slot != nullptr) {
    throw UsageError(absl::StrCat("weft: fd ", fd, " already has a ",
                                  kind == Watch::Kind::kReadable ? "readable" : "writable",
                                  " watcher"));
  }
  const IoEvents interest = entry.interest | bit_of(kind);
  try {
    backend_->set_fd_interest(entry.native_fd, interest);
  } catch (const std::system_error& error) {
    const int native = entry.native_fd;
    if (entry.interest == IoEvents::kNone) release_fd_entry(fd);
    rethrow_for_fd(error, fd, native);
  } catch (...) {
    if (entry.interest == IoEvents::kNone) release_fd_entry(fd);
    throw;
  }
  entry.interest = interest;
  const std::uint64_t id = next_watch_id_++;
  slot = new Watcher{.callback = std::move(callback), .id = id};
  return Watch(this, kind, fd, id);
}

void Reactor::release_fd_entry(int fd) {
  auto it = fds_.find(fd);
  const int native = it->second.native_fd;
  try {
    backend_->release_fd(native);
  } catch (...) {
    // Releasing cannot meaningfully fail; the descriptor is closed below regardless.
  }
  by_native_.erase(native);
  fds_.erase(it);
  close(native);
}

// ---- Signals ----

Watch Reactor::watch_signal(int signo, Callback callback) {
  check_loop_thread("watch_signal");
  check_not_forked("watch_signal");
  if (callback == nullptr) throw std::invalid_argument("weft: watch_signal: empty callback");
  capture_context(callback);
  auto it = signals_.find(signo);
  if (it == signals_.end()) {
    const bool fresh_pipe = signal_read_fd_ < 0;
    if (fresh_pipe) open_signal_pipe();
    try {
      signal_slots_[signo] = detail::add_signal_target(signo, signal_write_fd_);
    } catch (...) {
      signal_slots_.erase(signo);
      if (fresh_pipe) close_signal_pipe();
      throw;
    }
    it = signals_.emplace(signo, std::vector<Watcher*>()).first;
  }
  const std::uint64_t id = next_watch_id_++;
  it->second.push_back(new Watcher{.callback = std::move(callback), .id = id});
  return Watch(this, Watch::Kind::kSignal, signo, id);
}

void Reactor::open_signal_pipe() {
  int fds[2];
  if (make_pipe(fds) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "weft: cannot watch signals: cannot make the signal pipe");
  }
  try {
    backend_->set_fd_interest(fds[0], IoEvents::kReadable);
  } catch (...) {
    close(fds[0]);
    close(fds[1]);
    throw;
  }
  signal_read_fd_ = fds[0];
  signal_write_fd_ = fds[1];
  by_native_[signal_read_fd_] = NativeTarget{};
}

// Also removes every target of this reactor from the fan-out.
void Reactor::close_signal_pipe() {
  for (const auto& [signo, slot] : signal_slots_) detail::remove_signal_target(signo, slot);
  signal_slots_.clear();
  if (signal_read_fd_ < 0) return;
  try {
    backend_->release_fd(signal_read_fd_);
  } catch (...) {
  }
  by_native_.erase(signal_read_fd_);
  close(signal_read_fd_);
  close(signal_write_fd_);
  signal_read_fd_ = signal_write_fd_ = -1;
}

void Reactor::drain_signal_pipe() {
  // Read everything available, then deliver each signal number once per batch: the kernel
  // merges pending signals too, and a burst must not run a watcher thousands of times.
  bool raised[NSIG] = {};
  unsigned char bytes[256];
  for (;;) {
    const ssize_t n = read(signal_read_fd_, bytes, sizeof bytes);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (bytes[i] < NSIG) raised[bytes[i]] = true;
    }
    if (n < static_cast<ssize_t>(sizeof bytes)) break;
  }
  for (int signo = 1; signo < NSIG; ++signo) {
    if (raised[signo]) dispatch_signal(signo);
  }
}

void Reactor::dispatch_signal(int signo) {
  auto it = signals_.find(signo);
  if (it == signals_.end()) return;
  // Callbacks may cancel any watcher of this signal; look each up again by id.
  absl::InlinedVector<std::uint64_t, 4> ids;
  for (const Watcher* watcher : it->second) ids.push_back(watcher->id);
  for (std::uint64_t id : ids) {
    auto current = signals_.find(signo);
    if (current == signals_.end()) return;
    for (Watcher* watcher : current->second) {
      if (watcher->id == id) {
        run_watcher(watcher, Watch::Kind::kSignal, signo);
        break;
      }
    }
  }
}

// ---- Watch handles ----

bool Watch::cancel() {
  if (reactor_ == nullptr) return false;
  return reactor_->cancel_watch(kind_, key_, id_);
}

bool Watch::active() const {
  return reactor_ != nullptr && reactor_->watch_active(kind_, key_, id_);
}

bool Reactor::watch_active(Watch::Kind kind, int key, std::uint64_t id) const {
  if (kind == Watch::Kind::kSignal) {
    auto it = signals_.find(key);
    if (it == signals_.end()) return false;
    for (const Watcher* watcher : it->second) {
      if (watcher->id == id) return true;
    }
    return false;
  }
  auto it = fds_.find(key);
  if (it == fds_.end()) return false;
  const Watcher* watcher = by_native_.find(it->second.native_fd)->second.watcher(kind);
  return watcher != nullptr && watcher->id == id;
}

bool Reactor::cancel_watch(Watch::Kind kind, int key, std::uint64_t id) {
  check_loop_thread("Watch::cancel");
  check_not_forked("Watch::cancel");
  if (kind == Watch::Kind::kSignal) {
    auto it = signals_.find(key);
    if (it == signals_.end()) return false;
    std::vector<Watcher*>& watchers = it->second;
    for (auto w = watchers.begin(); w != watchers.end(); ++w) {
      if ((*w)->id != id) continue;
      Watcher* watcher = *w;
      watchers.erase(w);
      if (watchers.empty()) {
        signals_.erase(it);
        if (auto slot = signal_slots_.find(key); slot != signal_slots_.end()) {
          detail::remove_signal_target(key, slot->second);
          signal_slots_.erase(slot);
        }
        if (signals_.empty()) close_signal_pipe();
      }
      free_watcher(watcher);
      return true;
    }
    return false;
  }
  auto it = fds_.find(key);
  if (it == fds_.end()) return false;
  FdEntry& entry = it->second;
  Watcher*& slot = by_native_.find(entry.native_fd)->second.slot(kind);
  if (slot == nullptr || slot->id != id) return false;
  Watcher* watcher = std::exchange(slot, nullptr);
  const IoEvents interest = static_cast<IoEvents>(static_cast<unsigned>(entry.interest) &
                                                  ~static_cast<unsigned>(bit_of(kind)));
  if (interest == IoEvents::kNone) {
    release_fd_entry(key);
  } else {
    entry.interest = interest;
    try {
      backend_->set_fd_interest(entry.native_fd, interest);
    } catch (const std::system_error& error) {
      free_watcher(watcher);
      rethrow_for_fd(error, key, entry.native_fd);
    }
  }
  free_watcher(watcher);
  return true;
}

void Reactor::free_watcher(Watcher* watcher) {
  if (watcher == nullptr) return;
  if (watcher->running) {
    watcher->cancelled = true;  // run_watcher frees it when its callback returns
  } else {
    delete watcher;
  }
}

void Reactor::run_watcher(Watcher* watcher, Watch::Kind kind, int key) {
  watcher->running = true;
  try {
    watcher->callback();
  } catch (...) {
    report_error(std::current_exception(), describe(kind, key));
  }
  settle_timers();
  detail::clear_root_context();
  watcher->running = false;
  if (watcher->cancelled) delete watcher;
}

void Reactor::fd_ready(int native_fd, IoEvents events) {
  HookScope scope(*this);
  auto native = by_native_.find(native_fd);
  if (native == by_native_.end()) return;
  if (IoTarget* io = native->second.io) {
    const IoEvents ready = events & io->interest;
    if (!any(ready)) return;
    io->running = true;
    try {
      io->callback(ready);
    } catch (...) {
      report_error(std::current_exception(), absl::StrCat("I/O callback on fd ", io->fd));
    }
    settle_timers();
    io->running = false;
    if (io->released) delete io;
    return;
  }
  const int fd = native->second.user_fd;
  if (fd < 0) {
    drain_signal_pipe();
    return;
  }
  if (any(events & IoEvents::kReadable)) {
    if (Watcher* reader = native->second.reader) run_watcher(reader, Watch::Kind::kReadable, fd);
    if (!any(events & IoEvents::kWritable)) return;
    // Find the target again: the reader may have cancelled either watcher (or both, releasing
    // the fd, whose number a new watch may then reuse) or watched more fds, moving the table.
    native = by_native_.find(native_fd);
    if (native == by_native_.end() || native->second.user_fd != fd) return;
  }
  if (any(events & IoEvents::kWritable)) {
    if (Watcher* writer = native->second.writer) run_watcher(writer, Watch::Kind::kWritable, fd);
  }
}

// ---- IoHandle ----

Reactor::IoTarget* Reactor::register_io(int fd, absl::AnyInvocable<void(IoEvents)> on_ready) {
  check_loop_thread("IoHandle");
  check_not_forked("IoHandle");
  if (on_ready == nullptr) throw std::invalid_argument("weft: IoHandle: empty callback");
  if (fd < 0) throw std::invalid_argument(absl::StrCat("weft: IoHandle: bad fd ", fd));
  auto [it, fresh] = by_native_.try_emplace(fd);
  if (!fresh) {
    throw UsageError(
        absl::StrCat("weft: fd ", fd, " is already registered with reactor '", name_, "'"));
  }
  auto* io = new IoTarget{.reactor = this, .callback = std::move(on_ready), .fd = fd};
  it->second.io = io;
  ++io_count_;
  return io;
}

void Reactor::set_io_interest(IoTarget* io, IoEvents events) {
  if (io == nullptr) throw UsageError("weft: IoHandle::set_interest on an empty handle");
  if (io->released) {
    throw UsageError(absl::StrCat("weft: IoHandle for fd ", io->fd,
                                  " outlived its reactor's "
                                  "registrations"));
  }
  if (io->interest == events) return;
  Reactor& self = *io->reactor;
  self.check_not_forked("IoHandle::set_interest");
  // kNone keeps the backend's registration (core/backend.h): released with the handle.
  self.backend_->set_fd_interest(io->fd, events);
  io->interest = events;
  io->registered = true;
}

void Reactor::unregister_io(IoTarget* io) {
  if (Reactor* self = io->reactor; self != nullptr && !io->released) {
    io->released = true;
    --self->io_count_;
    self->by_native_.erase(io->fd);
    if (io->registered && self->fork_generation_ == detail::fork_generation()) {
      try {
        self->backend_->release_fd(io->fd);
      } catch (...) {
      }
    }
  }
  if (!io->running) delete io;
}

IoEvents IoHandle::interest() const {
  return target_ != nullptr ? target_->interest : IoEvents::kNone;
}

int IoHandle::fd() const { return target_ != nullptr ? target_->fd : -1; }

// ---- Errors and diagnostics ----

void Reactor::set_error_handler(ErrorHandler handler) { error_handler_ = std::move(handler); }

void Reactor::report_error(std::exception_ptr error, std::string_view where) {
  if (error_handler_ != nullptr) {
    try {
      error_handler_(error, where);
      return;
    } catch (...) {
      std::fprintf(stderr, "weft: the error handler of reactor '%s' threw\n", name_.c_str());
    }
  }
  std::fprintf(stderr, "weft: unhandled exception in %.*s on reactor '%s': %s\n",
               static_cast<int>(where.size()), where.data(), name_.c_str(),
               detail::what_of(error).c_str());
}

Reactor::Counts Reactor::counts() const {
  Counts counts;
  counts.ready = ready_.size() - ready_cancelled_;
  counts.timers = timers_.size();
  counts.watches = 0;
  for (const auto& [native, target] : by_native_) {
    counts.watches += (target.reader != nullptr) + (target.writer != nullptr);
  }
  for (const auto& [signo, watchers] : signals_) counts.watches += watchers.size();
  counts.tasks = task_count_;
  counts.io_handles = io_count_;
  std::lock_guard lock(incoming_mu_);
  counts.from_thread = incoming_.size() - incoming_cancelled_;
  return counts;
}

}  // namespace weft
