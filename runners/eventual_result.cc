#include "weft/runners/eventual_result.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "weft/core/detail/exception_text.h"
#include "weft/core/detail/fork_generation.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/runners/detail/reactor_link.h"

namespace weft {
namespace detail {
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
  // Saturating: a timeout reaching past the clock's end means no limit, and one reaching before
  // its beginning is simply in the past.
  std::optional<TimePoint> deadline;
  if (timeout) {
    deadline = add_saturating(Clock::now(), *timeout);
    if (*deadline == TimePoint::max()) deadline.reset();
  }
  if (driver_ != nullptr) {
    driver_->drive(*this, deadline);  // runs the loop, which completes the state
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

void EventualStateBase::Canceller::operator()() {
  if (function != nullptr) {
    std::exchange(function, nullptr)();
  } else if (link != nullptr) {
    // cancel() may come from any thread; the Deferred belongs to the loop thread.
    std::exchange(link, nullptr)->call_from_thread([task = *std::exchange(task, std::nullopt)] {
      task.cancel();
    });
  }
}

void EventualStateBase::rethrow_observed_error() { std::rethrow_exception(observe_error()); }

void EventualStateBase::cancel() {
  if (inherited_through_fork()) throw_inherited("cancel");
  Canceller canceller;
  {
    std::lock_guard lock(mu_);
    if (done_ || cancel_requested_) return;
    cancel_requested_ = true;
    canceller = std::move(canceller_);
  }
  canceller();
}

template <typename Put>
void EventualStateBase::install(Put put) {
  {
    std::lock_guard lock(mu_);
    // A work abandoned before its canceller arrived is still cancelled.
    if (!cancel_requested_) {
      if (!done_) put(canceller_);
      return;
    }
  }
  Canceller canceller;
  put(canceller);
  canceller();
}

void EventualStateBase::set_canceller(absl::AnyInvocable<void()> canceller) {
  install([&](Canceller& into) { into.function = std::move(canceller); });
}

void EventualStateBase::set_canceller(std::shared_ptr<ReactorLink> link, Deferred<void> task) {
  install([&](Canceller& into) {
    into.link = std::move(link);
    into.task.emplace(std::move(task));
  });
}

void EventualStateBase::fail(std::exception_ptr error) {
  complete([&] { error_ = std::move(error); });
}

void EventualStateBase::abandon(std::exception_ptr error) {
  Canceller canceller;
  bool notify = true;
  {
    std::lock_guard lock(mu_);
    if (done_.load(std::memory_order_relaxed)) return;
    error_ = std::move(error);
    done_.store(true, std::memory_order_release);
    cancel_requested_ = true;
    canceller = std::move(canceller_);
    if (!done_cv_made_) notify = false;
  }
  if (notify) done_cv_.notify_all();
  canceller();
}

void fail_with_shutdown(EventualStateBase& state) {
  state.fail(std::make_exception_ptr(RunnerShutDown()));
}

}  // namespace detail

void throw_wait_timeout(Duration timeout) {
  throw TimeoutError(absl::StrCat(
      "weft: result not ready after ",
      std::chrono::duration_cast<std::chrono::milliseconds>(std::max(timeout, Duration::zero()))
          .count(),
      " ms"));
}

}  // namespace weft
