#include "weft/runners/detail/eventual_state.h"

#include <cstdio>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "weft/core/detail/exception_text.h"
#include "weft/core/detail/fork_generation.h"
#include "weft/runners/detail/reactor_link.h"

namespace weft::detail {
namespace {

void print_unhandled(std::exception_ptr error) {
  const std::string what = what_of(error);
  std::fprintf(stderr,
               "weft: unhandled error in a dropped EventualResult (nobody called wait() or "
               "original_failure()): %s\n",
               what.c_str());
}

}  // namespace

EventualStateBase::EventualStateBase(const Reactor* reactor, std::thread::id loop_thread,
                                     EventualDriver* driver)
    : reactor_(reactor),
      loop_thread_(loop_thread),
      driver_(driver),
      // Only a Runner makes a state, and making a Runner started the fork watch.
      fork_generation_(fork_generation()) {}

EventualStateBase::~EventualStateBase() {
  // Sole owner now: no lock needed (and in a forked child, none may be taken).
  if (inherited_through_fork()) return;  // the parent reports its own; done_cv_ is abandoned
  if (done_cv_made_) done_cv_.~condition_variable();
  if (error_ == nullptr || error_observed_ || cancel_requested_ ||
      holds<RunnerShutDown>(error_)) {  // failures the caller caused: nobody needs telling
    return;
  }
  // On the loop thread the reactor is alive (it is running this), and its error handler is
  // where the program wants such reports.
  if (Reactor* current = Reactor::current(); current != nullptr && current == reactor_) {
    current->report_error(error_, "the work of a dropped EventualResult");
    return;
  }
  print_unhandled(error_);
}

bool EventualStateBase::inherited_through_fork() const {
  return fork_generation_ != fork_generation();
}

void EventualStateBase::throw_inherited(const char* what) const {
  throw UsageError(absl::StrCat("weft: EventualResult::", what,
                                " in a forked child: the result was created before fork(), "
                                "and its runner's loop does not run in this process; make a new "
                                "runner in the child"));
}

std::exception_ptr EventualStateBase::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

std::exception_ptr EventualStateBase::observe_error() {
  std::lock_guard lock(mu_);
  if (error_ != nullptr) error_observed_ = true;
  return error_;
}

bool EventualStateBase::wait(std::optional<Duration> timeout) {
  if (inherited_through_fork()) throw_inherited("wait");
  if (ready()) return true;
  // Only the loop could finish the work, and this thread is the loop.
  if ((reactor_ != nullptr && Reactor::current() == reactor_) ||
      (loop_thread_ != std::thread::id() && loop_thread_ == std::this_thread::get_id())) {
    throw UsageError(absl::StrCat("weft: waiting for a result on the loop thread of reactor '",
                                  reactor_->name(), "' would deadlock; co_await the task instead"));
  }
  const std::optional<TimePoint> deadline = deadline_after(timeout);
  if (driver_ != nullptr) {
    driver_->drive(done_, deadline);  // runs the loop, which completes the state
    return ready();
  }
  std::unique_lock lock(mu_);
  if (done_.load(std::memory_order_relaxed)) return true;
  if (deadline && *deadline <= Clock::now()) return false;
  if (!done_cv_made_) {
    new (&done_cv_) std::condition_variable();
    done_cv_made_ = true;
  }
  if (!deadline) {
    done_cv_.wait(lock, [this] { return done_.load(std::memory_order_relaxed); });
    return true;
  }
  return done_cv_.wait_until(lock, *deadline,
                             [this] { return done_.load(std::memory_order_relaxed); });
}

void EventualStateBase::rethrow_observed_error() { std::rethrow_exception(observe_error()); }

void EventualStateBase::cancel(const std::shared_ptr<EventualStateBase>& self) {
  if (self->inherited_through_fork()) self->throw_inherited("cancel");
  std::shared_ptr<ReactorLink> link;
  {
    std::lock_guard lock(self->mu_);
    if (self->done_ || self->cancel_requested_) return;
    self->cancel_requested_ = true;
    link = self->link_;  // none yet: start_on() will see the request
  }
  // The task belongs to its loop thread. A severed link (the runner is gone) reaches nothing:
  // the result has failed with RunnerShutDown already.
  if (link != nullptr) link->call_from_thread([self] { self->cancel_on_loop(); });
}

void EventualStateBase::install_link(std::shared_ptr<ReactorLink> link) {
  bool cancel_now = false;
  {
    std::lock_guard lock(mu_);
    link_ = std::move(link);
    cancel_now = cancel_requested_;
  }
  // A cancel() (or an abandon()) came before the task reached its loop; this is the loop.
  if (cancel_now) request_cancel();
}

void EventualStateBase::fail(std::exception_ptr error) {
  complete([&] { error_ = std::move(error); });
}

void EventualStateBase::abandon(const std::shared_ptr<EventualStateBase>& self,
                                std::exception_ptr error) {
  std::shared_ptr<ReactorLink> link;
  bool notify = true;
  {
    std::lock_guard lock(self->mu_);
    if (self->done_.load(std::memory_order_relaxed)) return;
    self->error_ = std::move(error);
    self->done_.store(true, std::memory_order_release);
    self->cancel_requested_ = true;
    link = self->link_;
    if (!self->done_cv_made_) notify = false;
  }
  if (notify) self->done_cv_.notify_all();
  if (link != nullptr) link->call_from_thread([self] { self->cancel_on_loop(); });
}

void EventualStateBase::drop_unstarted() noexcept {
  std::exchange(root, {}).destroy();
  fail(std::make_exception_ptr(RunnerShutDown()));
}

void EventualStateBase::destroy_unfinished(TaskContext& context) noexcept {
  auto& self = static_cast<EventualStateBase&>(context);
  std::shared_ptr<EventualStateBase> keep = std::move(self.reactor_ref_);
  self.leave();  // the frame's cleanup first, then the result
  self.fail(std::make_exception_ptr(RunnerShutDown()));
}  // `keep` may free this block: last.

}  // namespace weft::detail
