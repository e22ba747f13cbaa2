#include "weft/core/cancel_scope.h"

#include "weft/core/reactor.h"

namespace weft {

CancelScope::CancelScope(Options options) : deadline_(options.deadline) {
  node_.shield = options.shield;
}

CancelScope::~CancelScope() {
  if (task_ != nullptr) leave();
}

void CancelScope::enter(detail::TaskContext& task) {
  if (entered_) throw UsageError("weft: a CancelScope can be entered only once");
  entered_ = true;
  task_ = &task;
  previous_ = task.scope;
  node_.attach(previous_, &task);
  task.scope = &node_;
  if (deadline_ != TimePoint::max() && !node_.cancelled) {
    // No clock read here (it would double the cost of a scope): a deadline in the past is
    // armed like any other and fires in the next turn. A negative delay (move_on_after(-1s))
    // saturates to TimePoint::min() and cancels at once, so the first await raises.
    if (deadline_ == TimePoint::min()) {
      on_deadline();
    } else {
      arm();
    }
  }
}

bool CancelScope::leave() noexcept {
  timer_.cancel();
  timer_ = TimerHandle();
  // A Cancelled is this scope's if the scope was cancelled and nothing above it is: an
  // enclosing cancellation must reach its own scope, whoever else was cancelled on the way.
  // Level-triggering makes this safe when both are: the next await outside raises again.
  const bool mine =
      node_.cancelled && (node_.shield || node_.parent == nullptr || !node_.parent->effective);
  node_.detach();
  task_->scope = previous_;
  task_ = nullptr;
  return mine;
}

void CancelScope::cancel() { node_.cancel(); }

void CancelScope::arm() {
  detail::NoContext no_capture;  // the deadline belongs to the scope, not to a context
  timer_ = task_->reactor->call_at(deadline_, [this] {
    timer_ = TimerHandle();
    on_deadline();
  });
}

void CancelScope::on_deadline() {
  if (node_.cancelled) return;
  deadline_expired_ = true;
  node_.cancel();
}

void CancelScope::set_deadline(TimePoint when) {
  deadline_ = when;
  if (task_ == nullptr || node_.cancelled) return;  // applied when entered, or moot
  if (when == TimePoint::max()) {
    timer_.cancel();
  } else if (when <= task_->reactor->now()) {
    timer_.cancel();
    on_deadline();
  } else if (!timer_.reschedule(when)) {
    arm();
  }
}

}  // namespace weft
