#include "weft/core/task_group.h"

#include "absl/strings/str_cat.h"
#include "weft/core/detail/exception_text.h"

namespace weft {
namespace {

std::string describe(const std::vector<std::exception_ptr>& errors) {
  std::string text = absl::StrCat("weft: ", errors.size(), " errors in a task group");
  for (std::size_t i = 0; i < errors.size(); ++i) {
    absl::StrAppend(&text, i == 0 ? ": " : "; ", "[", i + 1, "] ", detail::what_of(errors[i]));
  }
  return text;
}

}  // namespace

TaskGroupError::TaskGroupError(std::vector<std::exception_ptr> errors)
    : std::runtime_error(describe(errors)), errors_(std::move(errors)) {}

TaskGroup::~TaskGroup() {
  // Only reached with children left when the opening task's frame is destroyed (reactor
  // teardown): no child outlives its group. Each child's promise unlinks itself.
  while (children_ != nullptr) {
    std::coroutine_handle<detail::GroupChild::promise_type>::from_promise(*children_).destroy();
  }
  if (open_) {
    node_.detach();
    opener_->scope = previous_;
  }
}

void TaskGroup::check_open() const {
  if (!open_) throw UsageError("weft: TaskGroup: the group is closed (or not yet open)");
}

void TaskGroup::enter(detail::TaskContext& opener) {
  opener_ = &opener;
  previous_ = opener.scope;
  node_.attach(previous_, &opener);
  opener.scope = &node_;
  open_ = true;
}

void TaskGroup::launch(detail::GroupChild child) {
  detail::TaskContext* context = child.handle().promise().context();
  // The starter's context variables, installed by resume() when the child starts.
  context->vars = detail::current_context();
  detail::TaskTracker::resume_soon(*context, child.handle());
}

void TaskGroup::note_outcome(std::exception_ptr error) {
  if (error == nullptr) return;
  if (node_.effective && detail::holds<Cancelled>(error)) {
    saw_cancel_ = true;  // the group (or a scope around it) was cancelled: expected
    return;
  }
  errors_.push_back(std::move(error));
  node_.cancel();
}

void TaskGroup::child_done(detail::GroupChild::promise_type& child, std::exception_ptr error) {
  if (child.prev_ != nullptr) {
    child.prev_->next_ = child.next_;
  } else {
    children_ = child.next_;
  }
  if (child.next_ != nullptr) child.next_->prev_ = child.prev_;
  child.prev_ = child.next_ = nullptr;
  child.context_.root_scope.detach();
  --live_;
  note_outcome(std::move(error));
  if (live_ == 0 && joiner_) {
    // Bounded: if a resumption is already running on this thread, the opener runs when it
    // suspends, so a chain of nested groups closing together does not grow the stack.
    detail::resume_bounded(*opener_, std::exchange(joiner_, {}));
  }
}

void TaskGroup::close() {
  open_ = false;
  // The group's own cancellation (cancel(), or a failure) is absorbed here; one from a
  // scope around the group goes on up, to the scope it belongs to.
  const bool mine = node_.cancelled && (node_.parent == nullptr || !node_.parent->effective);
  node_.detach();
  opener_->scope = previous_;
  if (errors_.size() == 1) std::rethrow_exception(errors_.front());
  if (errors_.size() > 1) throw TaskGroupError(std::move(errors_));
  if (saw_cancel_ && !mine) throw Cancelled();
}

}  // namespace weft
