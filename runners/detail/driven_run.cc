#include "weft/runners/detail/driven_run.h"

#include "weft/core/context.h"
#include "weft/core/detail/cancel_reason.h"
#include "weft/core/detail/exception_text.h"
#include "weft/core/errors.h"

namespace weft::detail {

DrivenTask::DrivenTask(std::coroutine_handle<> frame, const SpawnedRoot* root, Free free) noexcept
    : free_(free) {
  this->root = frame;
  spawned = root;
}

void DrivenTask::start_on(Reactor& reactor) {
  vars = current_context();
  TaskTracker::attach(reactor, *this);
  try {
    TaskTracker::call_soon(reactor, &DrivenTask::begin, this, nullptr);
  } catch (...) {
    leave();  // never started: nothing of it stays behind
    free_(this);
    throw;
  }
}

void DrivenTask::begin(void* self_ptr, void*) {
  auto& self = *static_cast<DrivenTask*>(self_ptr);
  if (self.cancelled()) [[unlikely]] {
    self.end(std::make_exception_ptr(Cancelled()), /*started=*/false);  // the body never runs
    return;
  }
  self.resume(self.root);
}

void DrivenTask::cancel() {
  if (done_.load(std::memory_order_relaxed)) return;
  cancelled_by_run_ = true;
  request_cancel();
}

void DrivenTask::release() noexcept {
  if (done_.load(std::memory_order_relaxed)) {
    free_(this);
  } else {
    orphaned_ = true;
  }
}

void DrivenTask::end(std::exception_ptr error, bool started) noexcept {
  if (started) apply_cancel_reason(this, error);
  Reactor& reactor = *TaskContext::reactor;
  leave();
  if (!orphaned_) {
    error_ = std::move(error);
    done_.store(true, std::memory_order_relaxed);
    return;
  }
  // run() is gone. It cancelled the task unless it left on an exception out of a turn: then
  // the task went on by itself, and a failure is news to somebody.
  if (error != nullptr && !cancelled_by_run_) {
    reactor.report_error(error, "the work of a run() that ended first");
  }
  free_(this);
}

void DrivenTask::destroy_unfinished(TaskContext& context) noexcept {
  auto& self = static_cast<DrivenTask&>(context);
  self.leave();  // the frame's cleanup first
  if (self.orphaned_) {
    self.free_(&self);
    return;
  }
  self.error_ = std::make_exception_ptr(RunnerShutDown());
  self.done_.store(true, std::memory_order_relaxed);
}

void DrivenTask::leave() noexcept {
  // The frame first, while the context is whole: its destructors unhook from the context.
  std::exchange(root, {}).destroy();
  TaskTracker::detach(*TaskContext::reactor, *this);
}

}  // namespace weft::detail
