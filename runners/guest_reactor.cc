#include "weft/runners/guest_reactor.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "weft/core/backend.h"
#include "weft/core/backend_registry.h"
#include "weft/core/detail/fork_generation.h"
#include "weft/core/errors.h"
#include "weft/runners/detail/abandoned.h"

namespace weft {

// The backend the reactor sees: forwards everything to the real backend, and remembers what
// the reactor asked for (turn, deadline, fd interest), which is what the host or the
// helper thread must wait for.
class GuestReactor::Tee final : public Backend, private LoopHooks {
 public:
  Tee(LoopHooks& hooks, const BackendInfo& info, GuestReactor& guest)
      : hooks_(hooks), guest_(guest), inner_(info.factory(*this)) {}

  std::string description() const override { return inner_->description(); }
  void run_once(bool may_block) override { inner_->run_once(may_block); }
  void request_turn() override {
    turn_requested = true;
    inner_->request_turn();
    guest_.changed();
  }
  void wake() override {
    inner_->wake();
    guest_.poke();
  }
  void set_timer(TimePoint deadline) override {
    this->deadline = deadline;
    inner_->set_timer(deadline);
    guest_.changed();
  }
  void clear_timer() override {
    deadline.reset();
    inner_->clear_timer();
  }
  void set_fd_interest(int fd, IoEvents events) override {
    inner_->set_fd_interest(fd, events);
    if (events == IoEvents::kNone) {
      fds.erase(fd);
    } else {
      fds[fd] = events;
      registrations_pending = true;
    }
    guest_.changed();
  }
  void release_fd(int fd) override {
    inner_->release_fd(fd);
    fds.erase(fd);
    guest_.changed();
  }
  void after_fork_in_child() override { inner_->after_fork_in_child(); }
  WaitFd wait_fd() const override { return inner_->wait_fd(); }

  // What the reactor is waiting for. Host thread.
  bool turn_requested = false;
  // A backend may hand new interest to the kernel only in its next iteration (libuv does):
  // true until the next step, which the host must then make at once. Also true before the
  // first step, for the backend's own descriptors.
  bool registrations_pending = true;
  std::optional<TimePoint> deadline;
  absl::flat_hash_map<int, IoEvents> fds;

 private:
  void run_turn() override {
    turn_requested = false;
    hooks_.run_turn();
  }
  void timer_expired() override {
    deadline.reset();
    hooks_.timer_expired();
  }
  void fd_ready(int fd, IoEvents events) override { hooks_.fd_ready(fd, events); }

  LoopHooks& hooks_;
  GuestReactor& guest_;
  std::unique_ptr<Backend> inner_;
};

struct GuestReactor::PollSpec {
  std::vector<pollfd> fds;
  std::optional<TimePoint> deadline;
};

GuestReactor::GuestReactor(std::string_view backend, Wait wait_mode,
                           std::unique_ptr<ReactorClock> clock)
    : GuestReactor(find_backend(backend), wait_mode, std::move(clock)) {}

GuestReactor::GuestReactor(const BackendInfo& info, Wait wait_mode,
                           std::unique_ptr<ReactorClock> clock)
    : fork_generation_((detail::watch_forks(), detail::fork_generation())) {
  reactor_ = std::make_unique<Reactor>(
      info.name,
      [&](LoopHooks& hooks) {
        auto tee = std::make_unique<Tee>(hooks, info, *this);
        tee_ = tee.get();
        return tee;
      },
      std::move(clock));
  const Backend::WaitFd wait = tee_->wait_fd();
  if (wait.complete && wait_mode == Wait::kAuto) {
    host_fd_ = wait.fd;
    return;
  }
  // If anything below fails, the destructor does not run: undo by hand what was done.
  try {
    host_wake_ = std::make_unique<detail::WakeFd>();
    host_fd_ = host_wake_->fd();
    poke_ = std::make_unique<detail::WakeFd>();
    poll_precision_ = detail::default_poll_precision();
    helper_ = std::thread([this] { helper_loop(); });
    arm_helper();
  } catch (...) {
    stop_helper();
    reactor_.reset();
    close_fds();
    throw;
  }
}

GuestReactor::~GuestReactor() {
  if (inherited_through_fork()) {
    // A forked child: the helper thread does not exist here, and may have held mu_ or waited on
    // cv_ at the fork. Joining it, locking, or destroying the condition variable (which waits
    // for its waiters) would hang; poking it would wake the parent's helper through the
    // descriptor the two processes share. Abandon the thread and the condition variable; close
    // only this process's descriptors. The reactor follows the core rule: an inherited reactor
    // may be destroyed.
    if (helper_.joinable()) detail::abandon(new std::thread(std::move(helper_)));
    detail::abandon(cv_);
    poke_.reset();
    reactor_.reset();
    host_wake_.reset();
    return;
  }
  stop_helper();
  reactor_.reset();
  close_fds();
}

void GuestReactor::stop_helper() {
  if (!helper_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  cv_->notify_one();
  poke();
  helper_.join();
}

void GuestReactor::close_fds() {
  host_wake_.reset();
  host_fd_ = -1;
  poke_.reset();
}

void GuestReactor::check_not_forked(const char* what) const {
  if (inherited_through_fork()) [[unlikely]] {
    throw UsageError(absl::StrCat("weft: GuestReactor::", what,
                                  " in a forked child: the guest was created before fork(), and "
                                  "its descriptors and helper thread belong to the parent; make "
                                  "a new one in the child"));
  }
}

std::optional<Duration> GuestReactor::timeout() const {
  check_not_forked("timeout");
  if (tee_->turn_requested || tee_->registrations_pending) return Duration::zero();
  // Saturating: a deadline near TimePoint::min() is simply due.
  if (tee_->deadline)
    return std::max(Duration::zero(), sub_saturating(*tee_->deadline, Clock::now()));
  return std::nullopt;
}

// Ends a step however it ends. Normally the helper gets its next wait (or the host is told
// there is work at once). If the native step threw, whatever it left undone still needs a
// step: the host is asked for one at once (fd() readable in helper mode, timeout() zero in
// both), without allocating, since this may run during unwinding.
class GuestReactor::StepScope {
 public:
  explicit StepScope(GuestReactor& guest) : guest_(guest) { guest_.stepping_ = true; }
  ~StepScope() {
    guest_.stepping_ = false;
    if (finished_) return;
    guest_.tee_->registrations_pending = true;
    if (guest_.helper_.joinable()) guest_.host_wake_->signal();
  }
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;

  void finish() {
    finished_ = true;
    guest_.stepping_ = false;
    if (guest_.helper_.joinable()) guest_.arm_helper();
  }

 private:
  GuestReactor& guest_;
  bool finished_ = false;
};

void GuestReactor::step() {
  check_not_forked("step");
  StepScope scope(*this);
  if (host_wake_ != nullptr) host_wake_->drain();
  tee_->registrations_pending = false;
  reactor_->run_once(/*may_block=*/false);
  // The host may wait next: a clock that moves only when told (virtual time) moves now, or
  // fails deadlocked tasks; the turn that needs asks the host for another step at once.
  reactor_->prepare_to_wait();
  scope.finish();
}

void GuestReactor::poke() const {
  if (poke_ != nullptr) poke_->signal();
}

void GuestReactor::changed() {
  // During a step the helper is re-armed at its end; in fd mode timeout() tells the host.
  if (stepping_ || !helper_.joinable()) return;
  std::lock_guard lock(mu_);
  // Waiting, or about to wait on a spec made before this change: cut that wait short.
  if (helper_waiting_ || spec_ != nullptr) poke();
}

// Hands the helper its next wait, or, if there is work already, tells the host at once.
void GuestReactor::arm_helper() {
  if (tee_->turn_requested || tee_->registrations_pending ||
      (tee_->deadline && *tee_->deadline <= Clock::now())) {
    host_wake_->signal();
    return;
  }
  auto spec = std::make_unique<PollSpec>();
  for (const auto& [fd, events] : tee_->fds) {
    short mask = 0;
    if (any(events & IoEvents::kReadable)) mask |= POLLIN;
    if (any(events & IoEvents::kWritable)) mask |= POLLOUT;
    spec->fds.push_back(pollfd{.fd = fd, .events = mask, .revents = 0});
  }
  const Backend::WaitFd wait = tee_->wait_fd();
  if (wait.fd >= 0) spec->fds.push_back(pollfd{.fd = wait.fd, .events = POLLIN, .revents = 0});
  spec->deadline = tee_->deadline;
  {
    std::lock_guard lock(mu_);
    if (helper_waiting_) {
      // Still in a wait armed before this step (the host stepped on its own timeout): end it.
      // The helper then tells the host, whose next step arms the fresh wait.
      poke();
      return;
    }
    spec_ = std::move(spec);
  }
  cv_->notify_one();
}

void GuestReactor::helper_loop() {
  for (;;) {
    std::unique_ptr<PollSpec> spec;
    {
      std::unique_lock lock(mu_);
      cv_->wait(lock, [this] { return spec_ != nullptr || quit_; });
      if (quit_) return;
      spec = std::move(spec_);
      helper_waiting_ = true;
    }
    spec->fds.push_back(pollfd{.fd = poke_->fd(), .events = POLLIN, .revents = 0});
    // Ends at the deadline, never before it (EINTR: just tell the host).
    detail::poll_until(spec->fds.data(), spec->fds.size(), spec->deadline, poll_precision_);
    poke_->drain();
    {
      std::lock_guard lock(mu_);
      helper_waiting_ = false;
      if (quit_) return;
    }
    host_wake_->signal();
  }
}

}  // namespace weft
