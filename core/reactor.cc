#include "core/reactor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
#include "core/errors.h"

// Debug builds check the loop-thread rule on every loop-thread-only entry
// point.
#ifndef WEFT_THREAD_CHECKS
#ifdef NDEBUG
#define WEFT_THREAD_CHECKS 0
#else
#define WEFT_THREAD_CHECKS 1
#endif
#endif

namespace weft {
namespace {

thread_local Reactor* t_current = nullptr;

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

std::string what_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "non-standard exception";
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

}  // namespace

// Marks this thread as running the reactor's callbacks, for Reactor::current()
// and for the thread checks. Used by every LoopHooks entry, so it also covers a
// host that drives the backend's native loop itself.
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

Reactor::Reactor(std::string name, BackendFactory make_backend)
    : name_(std::move(name)), backend_(make_backend(*this)) {}

Reactor::~Reactor() {
  check_loop_thread("~Reactor");
  // Tasks first: destroying a frame runs its destructors, which may cancel
  // timers and watches and so need the rest of the reactor intact. Each root's
  // promise detaches itself.
  while (tasks_ != nullptr) tasks_->root.destroy();

  // Destroying a dropped callback can run code that queues more; drain until
  // quiet.
  for (;;) {
    std::vector<Callback> ready = std::move(ready_);
    std::vector<Callback> batch = std::move(batch_);
    std::vector<Callback> incoming;
    {
      std::lock_guard lock(incoming_mu_);
      incoming.swap(incoming_);
    }
    const bool had_timers = !timers_.empty();
    timers_.clear();
    const bool had_watches = !fds_.empty() || !signals_.empty();
    while (!fds_.empty()) {
      const int fd = fds_.begin()->first;
      FdEntry& entry = fds_.begin()->second;
      Watcher* reader = std::exchange(entry.reader, nullptr);
      Watcher* writer = std::exchange(entry.writer, nullptr);
      release_fd_entry(fd);
      free_watcher(reader);
      free_watcher(writer);
    }
    while (!signals_.empty()) {
      auto node = signals_.extract(signals_.begin());
      backend_->set_signal_interest(node.key(), false);
      for (Watcher* watcher : node.mapped()) free_watcher(watcher);
    }
    if (ready.empty() && batch.empty() && incoming.empty() && !had_timers && !had_watches) {
      break;
    }
  }
  backend_.reset();
}

Reactor* Reactor::current() { return t_current; }

bool Reactor::in_loop_thread() const {
  return loop_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

void Reactor::check_loop_thread([[maybe_unused]] const char* what) const {
#if WEFT_THREAD_CHECKS
  if (running_.load(std::memory_order_relaxed) && !in_loop_thread()) {
    std::fprintf(stderr,
                 "weft: Reactor::%s called from a thread that is not running reactor "
                 "'%s'; "
                 "only call_from_thread(), stop() and is_running() are thread-safe\n",
                 what, name_.c_str());
    std::abort();
  }
#endif
}

// ---- Scheduling ----

void Reactor::request_turn() {
  turn_requested_ = true;
  backend_->request_turn();
}

void Reactor::call_soon(Callback callback) {
  check_loop_thread("call_soon");
  ready_.push_back(std::move(callback));
  if (!turn_requested_) request_turn();
}

TimerHandle Reactor::call_later(Duration delay, Callback callback) {
  if (delay < Duration::zero()) delay = Duration::zero();
  return add_timer(now() + delay, std::move(callback));
}

TimerHandle Reactor::call_at(TimePoint when, Callback callback) {
  return add_timer(when, std::move(callback));
}

TimerHandle Reactor::add_timer(TimePoint when, Callback callback) {
  check_loop_thread("call_later");
  if (callback == nullptr) throw std::invalid_argument("weft: call_later: empty callback");
  const detail::TimerId id = timers_.push(when, std::move(callback));
  // Inside a turn the native timer is synced once at its end.
  if (!in_hook_ && when < armed_deadline_) sync_timer();
  return TimerHandle(this, id);
}

bool TimerHandle::cancel() {
  if (reactor_ == nullptr) return false;
  reactor_->check_loop_thread("TimerHandle::cancel");
  if (!reactor_->timers_.cancel(id_)) return false;
  if (!reactor_->in_hook_) reactor_->sync_timer();
  return true;
}

bool TimerHandle::pending() const { return reactor_ != nullptr && reactor_->timers_.pending(id_); }

void Reactor::sync_timer() {
  const TimePoint next = timers_.empty() ? TimePoint::max() : timers_.next_deadline();
  if (next == armed_deadline_) return;
  if (next == TimePoint::max()) {
    backend_->clear_timer();
  } else {
    backend_->set_timer(next);
  }
  armed_deadline_ = next;
}

void Reactor::call_from_thread(Callback callback) {
  bool first;
  {
    std::lock_guard lock(incoming_mu_);
    first = incoming_.empty();
    incoming_.push_back(std::move(callback));
    incoming_pending_.store(true, std::memory_order_relaxed);
  }
  // Only the call that made the queue non-empty wakes the loop; the others ride
  // along.
  if (first) backend_->wake();
}

// ---- Running ----

void Reactor::run() {
  RunScope scope(*this, "run");
  in_run_ = true;
  struct ClearInRun {
    bool& flag;
    ~ClearInRun() { flag = false; }
  } clear{in_run_};
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) {
    backend_->run_once(/*may_block=*/true);
  }
}

void Reactor::run_once(bool may_block) {
  RunScope scope(*this, "run_once");
  backend_->run_once(may_block && !stop_requested_.load(std::memory_order_acquire));
}

void Reactor::stop() {
  stop_requested_.store(true, std::memory_order_release);
  // Also from the loop thread: the wake keeps the rest of this iteration from
  // blocking.
  backend_->wake();
}

void Reactor::run_turn() {
  HookScope scope(*this);
  turn_requested_ = false;
  if (in_run_ && stop_requested_.load(std::memory_order_acquire)) {
    // run() returns at the end of this iteration; this turn's work waits for
    // the next run().
    if (!ready_.empty() || incoming_pending_.load(std::memory_order_relaxed)) request_turn();
    return;
  }
  // 1. The ready batch: what was queued before this turn began.
  batch_.swap(ready_);
  run_batch(batch_, "call_soon callback");

  // 2. Cross-thread callbacks taken in so far.
  if (incoming_pending_.load(std::memory_order_acquire)) {
    {
      std::lock_guard lock(incoming_mu_);
      incoming_batch_.swap(incoming_);
      incoming_pending_.store(false, std::memory_order_relaxed);
    }
    run_batch(incoming_batch_, "call_from_thread callback");
  }

  // 3. Timers due at the turn's clock reading, one at a time so that an earlier
  // callback can still cancel a later one.
  if (!timers_.empty()) {
    const TimePoint now = Clock::now();
    Callback callback;
    while (timers_.pop_due(now, callback)) {
      try {
        callback();
      } catch (...) {
        report_error(std::current_exception(), "timer callback");
      }
      callback = nullptr;
    }
  }
  if (!ready_.empty() && !turn_requested_) request_turn();
}

void Reactor::run_batch(std::vector<Callback>& batch, std::string_view where) {
  for (Callback& callback : batch) {
    try {
      callback();
    } catch (...) {
      report_error(std::current_exception(), where);
    }
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
  if (callback == nullptr) throw std::invalid_argument("weft: watch: empty callback");
  auto it = fds_.find(fd);
  if (it == fds_.end()) {
    // Watch a duplicate weft owns: epoll registers open files, not numbers, so
    // a registration on the caller's fd could outlive a close() and report a
    // reused number's neighbour.
    const int native = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (native < 0) {
      throw std::system_error(errno, std::generic_category(),
                              absl::StrCat("weft: cannot watch fd ", fd));
    }
    it = fds_.emplace(fd, FdEntry{.native_fd = native}).first;
    fd_by_native_[native] = fd;
  } else if (!same_file(fd, it->second.native_fd)) {
    throw UsageError(absl::StrCat("weft: fd ", fd,
                                  " is still watched for a file that was closed since; cancel "
                                  "that watch before watching the fd again"));
  }
  FdEntry& entry = it->second;
  Watcher*& slot = kind == Watch::Kind::kReadable ? entry.reader : entry.writer;
  if (slot != nullptr) {
    throw UsageError(absl::StrCat("weft: fd ", fd, " already has a ",
                                  kind == Watch::Kind::kReadable ? "readable" : "writable",
                                  " watcher"));
  }
  const IoEvents interest = entry.interest | bit_of(kind);
  try {
    backend_->set_fd_interest(entry.native_fd, interest);
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
    backend_->set_fd_interest(native, IoEvents::kNone);
  } catch (...) {
    // Removing interest cannot meaningfully fail; the descriptor is closed
    // below regardless.
  }
  fd_by_native_.erase(native);
  fds_.erase(it);
  close(native);
}

Watch Reactor::watch_signal(int signo, Callback callback) {
  check_loop_thread("watch_signal");
  if (callback == nullptr) throw std::invalid_argument("weft: watch_signal: empty callback");
  std::vector<Watcher*>& watchers = signals_[signo];
  if (watchers.empty()) {
    try {
      backend_->set_signal_interest(signo, true);
    } catch (...) {
      signals_.erase(signo);
      throw;
    }
  }
  const std::uint64_t id = next_watch_id_++;
  watchers.push_back(new Watcher{.callback = std::move(callback), .id = id});
  return Watch(this, Watch::Kind::kSignal, signo, id);
}

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
  const Watcher* watcher = kind == Watch::Kind::kReadable ? it->second.reader : it->second.writer;
  return watcher != nullptr && watcher->id == id;
}

bool Reactor::cancel_watch(Watch::Kind kind, int key, std::uint64_t id) {
  check_loop_thread("Watch::cancel");
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
        backend_->set_signal_interest(key, false);
      }
      free_watcher(watcher);
      return true;
    }
    return false;
  }
  auto it = fds_.find(key);
  if (it == fds_.end()) return false;
  FdEntry& entry = it->second;
  Watcher*& slot = kind == Watch::Kind::kReadable ? entry.reader : entry.writer;
  if (slot == nullptr || slot->id != id) return false;
  Watcher* watcher = std::exchange(slot, nullptr);
  const IoEvents interest = static_cast<IoEvents>(static_cast<unsigned>(entry.interest) &
                                                  ~static_cast<unsigned>(bit_of(kind)));
  if (interest == IoEvents::kNone) {
    release_fd_entry(key);
  } else {
    entry.interest = interest;
    backend_->set_fd_interest(entry.native_fd, interest);
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
  watcher->running = false;
  if (watcher->cancelled) delete watcher;
}

void Reactor::fd_ready(int native_fd, IoEvents events) {
  HookScope scope(*this);
  auto native = fd_by_native_.find(native_fd);
  if (native == fd_by_native_.end()) return;
  const int fd = native->second;
  // Re-find the entry before each callback: the previous one may have cancelled
  // either watcher (or both, releasing the entry) or watched more fds, moving
  // the table.
  for (Watch::Kind kind : {Watch::Kind::kReadable, Watch::Kind::kWritable}) {
    if (!any(events & bit_of(kind))) continue;
    auto it = fds_.find(fd);
    if (it == fds_.end() || it->second.native_fd != native_fd) return;
    Watcher* watcher = kind == Watch::Kind::kReadable ? it->second.reader : it->second.writer;
    if (watcher != nullptr) run_watcher(watcher, kind, fd);
  }
}

void Reactor::signal_raised(int signo) {
  HookScope scope(*this);
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
               static_cast<int>(where.size()), where.data(), name_.c_str(), what_of(error).c_str());
}

Reactor::Counts Reactor::counts() const {
  Counts counts;
  counts.ready = ready_.size();
  counts.timers = timers_.size();
  counts.watches = 0;
  for (const auto& [fd, entry] : fds_) {
    counts.watches += (entry.reader != nullptr) + (entry.writer != nullptr);
  }
  for (const auto& [signo, watchers] : signals_) counts.watches += watchers.size();
  counts.tasks = task_count_;
  std::lock_guard lock(incoming_mu_);
  counts.from_thread = incoming_.size();
  return counts;
}

// ---- Tasks ----

void detail::TaskTracker::attach(Reactor& reactor, TaskContext& context) {
  context.reactor = &reactor;
  context.prev = nullptr;
  context.next = reactor.tasks_;
  if (reactor.tasks_ != nullptr) reactor.tasks_->prev = &context;
  reactor.tasks_ = &context;
  ++reactor.task_count_;
}

void detail::TaskTracker::detach(Reactor& reactor, TaskContext& context) {
  if (context.prev != nullptr) {
    context.prev->next = context.next;
  } else {
    reactor.tasks_ = context.next;
  }
  if (context.next != nullptr) context.next->prev = context.prev;
  context.prev = context.next = nullptr;
  --reactor.task_count_;
}

}  // namespace weft
