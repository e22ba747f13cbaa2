#include "runners/eventual_result.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/reactor.h"

namespace weft {
namespace detail {

bool EventualStateBase::ready() const {
  std::lock_guard lock(mu_);
  return done_;
}

std::exception_ptr EventualStateBase::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

bool EventualStateBase::wait(std::optional<Duration> timeout) {
  if (ready()) return true;
  // Only the loop could finish the work, and this thread is the loop.
  if ((reactor_ != nullptr && Reactor::current() == reactor_) ||
      (loop_thread_ != std::thread::id() && loop_thread_ == std::this_thread::get_id())) {
    throw UsageError(absl::StrCat("weft: waiting for a result on the loop thread of reactor '",
                                  reactor_->name(), "' would deadlock; co_await the task instead"));
  }
  std::optional<TimePoint> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  if (driver_ != nullptr) {
    if (!ready()) driver_->drive(*this, deadline);
    return ready();
  }
  std::unique_lock lock(mu_);
  if (!deadline) {
    done_cv_.wait(lock, [this] { return done_; });
    return true;
  }
  return done_cv_.wait_until(lock, *deadline, [this] { return done_; });
}

void EventualStateBase::cancel() {
  absl::AnyInvocable<void()> canceller;
  {
    std::lock_guard lock(mu_);
    if (done_ || cancel_requested_) return;
    cancel_requested_ = true;
    canceller = std::move(canceller_);
  }
  if (canceller != nullptr) canceller();
}

void EventualStateBase::set_canceller(absl::AnyInvocable<void()> canceller) {
  {
    std::lock_guard lock(mu_);
    // A work abandoned before its canceller arrived is still cancelled.
    if (!cancel_requested_) {
      if (!done_) canceller_ = std::move(canceller);
      return;
    }
  }
  canceller();
}

void EventualStateBase::fail(std::exception_ptr error) {
  complete([&] { error_ = std::move(error); });
}

void EventualStateBase::abandon(std::exception_ptr error) {
  absl::AnyInvocable<void()> canceller;
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    error_ = std::move(error);
    done_ = true;
    cancel_requested_ = true;
    canceller = std::move(canceller_);
  }
  done_cv_.notify_all();
  if (canceller != nullptr) canceller();
}

void fail_with_shutdown(EventualStateBase& state) {
  state.fail(std::make_exception_ptr(RunnerShutDown()));
}

}  // namespace detail

void throw_wait_timeout(Duration timeout) {
  throw TimeoutError(
      absl::StrCat("weft: result not ready after ",
                   std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count(), " ms"));
}

}  // namespace weft
