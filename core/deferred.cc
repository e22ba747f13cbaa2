#include "weft/core/deferred.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

#include "weft/core/detail/exception_text.h"
#include "weft/core/detail/fast_tls.h"
#include "weft/core/reactor.h"

namespace weft::detail {
namespace {

void report(std::exception_ptr error, std::string_view where) {
  if (Reactor* reactor = Reactor::current()) {
    reactor->report_error(error, where);
    return;
  }
  std::fprintf(stderr, "weft: %.*s: %s\n", static_cast<int>(where.size()), where.data(),
               what_of(error).c_str());
}

}  // namespace

void DeferredStateBase::report_if_unhandled() const {
  // A cancellation nobody looked at is expected (the canceller's caller knows);
  // anything else would vanish silently.
  if (!error_observed_ && !holds<Cancelled>(error_)) report(error_, "unhandled error in Deferred");
}

void DeferredStateBase::throw_already_called() { throw AlreadyCalledError(); }

void DeferredStateBase::add_listener(absl::AnyInvocable<void()> listener) {
  if (!fired_) {
    consumers_.push_back(Consumer{.listener = std::move(listener)});
    return;
  }
  try {
    listener();
  } catch (...) {
    report(std::current_exception(), "Deferred callback");
  }
}

void DeferredStateBase::add_waiter(Waiter* waiter) {
  waiter->slot = consumers_.size();
  consumers_.push_back(Consumer{.waiter = waiter});
}

void DeferredStateBase::remove_waiter(Waiter* waiter) {
  if (waiter->slot < consumers_.size() && consumers_[waiter->slot].waiter == waiter) {
    consumers_[waiter->slot].waiter = nullptr;
  }
}

void DeferredStateBase::cancel() {
  if (fired_ || cancel_requested_) return;
  cancel_requested_ = true;
  if (cancel_function_ != nullptr) {
    std::exchange(cancel_function_, nullptr)(cancel_arg_);
  } else if (canceller_ != nullptr) {
    const std::unique_ptr<absl::AnyInvocable<void()>> canceller = std::move(canceller_);
    (*canceller)();
  } else {
    fail(std::make_exception_ptr(Cancelled()));
  }
}

void DeferredStateBase::fail(std::exception_ptr error) {
  if (error == nullptr) throw std::invalid_argument("weft: Deferred::errback: null exception");
  check_not_fired();
  error_ = std::move(error);
  fire();
}

void DeferredStateBase::fire_consumers() {
  canceller_.reset();
  // Once fired nothing is appended (late listeners run at once, awaiters do not
  // suspend), but a consumer may remove a later waiter (by destroying its
  // frame): index, don't iterate.
  for (std::size_t i = 0; i < consumers_.size(); ++i) {
    if (Waiter* waiter = std::exchange(consumers_[i].waiter, nullptr)) {
      TaskContext* context = nullptr;
      const std::coroutine_handle<> handle = waiter->on_fired(waiter, context);
      resume_bounded(*context, handle);
    } else if (consumers_[i].listener != nullptr) {
      absl::AnyInvocable<void()> listener = std::move(consumers_[i].listener);
      try {
        listener();
      } catch (...) {
        report(std::current_exception(), "Deferred callback");
      }
    }
  }
  consumers_.clear();
}

namespace {
using Queue = std::vector<std::pair<TaskContext*, std::coroutine_handle<>>>;
// The resumptions held back while one runs (or a cancellation is being marked) on this
// thread; null when none is. Initial-exec (core/detail/fast_tls.h): every resumption reads it.
WEFT_FAST_TLS constinit thread_local Queue* t_resumptions = nullptr;
}  // namespace

ResumptionBatch::ResumptionBatch() : previous_(t_resumptions) {
  if (previous_ == nullptr) t_resumptions = &queue_;
}

ResumptionBatch::~ResumptionBatch() {
  if (previous_ != nullptr) return;
  // Index, don't iterate: each resumption may queue more.
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    const auto [context, handle] = queue_[i];
    context->resume(handle);
  }
  t_resumptions = nullptr;
}

void resume_bounded(TaskContext& context, std::coroutine_handle<> handle) {
  if (t_resumptions != nullptr) {
    t_resumptions->emplace_back(&context, handle);
    return;
  }
  ResumptionBatch batch;
  context.resume(handle);
}

void resume_next_turn(TaskContext& context, std::coroutine_handle<> handle) {
  TaskTracker::resume_soon(context, handle);  // installs the task's own context
}

}  // namespace weft::detail
