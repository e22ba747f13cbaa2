#include "weft/core/detail/task_context.h"

#include <string>

#include "absl/container/inlined_vector.h"
#include "weft/core/errors.h"

namespace weft::detail {

void throw_empty_task(const char* what) {
  throw UsageError(std::string("weft: ") + what +
                   " of an empty Task (one already moved from, awaited or started)");
}

void CancelNode::attach(CancelNode* new_parent, TaskContext* owner) noexcept {
  task = owner;
  parent = new_parent;
  prev_sibling = nullptr;
  next_sibling = nullptr;
  first_child = nullptr;
  effective = cancelled || (!shield && parent != nullptr && parent->effective);
  if (parent != nullptr) {
    next_sibling = parent->first_child;
    if (next_sibling != nullptr) next_sibling->prev_sibling = this;
    parent->first_child = this;
  }
}

void CancelNode::detach() noexcept {
  if (parent != nullptr) {
    if (prev_sibling != nullptr) {
      prev_sibling->next_sibling = next_sibling;
    } else {
      parent->first_child = next_sibling;
    }
    if (next_sibling != nullptr) next_sibling->prev_sibling = prev_sibling;
  }
  for (CancelNode* child = first_child; child != nullptr; child = child->next_sibling) {
    child->parent = nullptr;
  }
  parent = prev_sibling = next_sibling = first_child = nullptr;
}

namespace {

// Marks `root`'s unshielded subtree effectively cancelled and collects the tasks to wake.
// Iterative (groups nest: when_all of when_alls), pre-order, so a scope is marked before the
// tasks under it are woken.
using WakeList = absl::InlinedVector<TaskContext*, 8>;

void mark(CancelNode* root, WakeList& to_wake) {
  absl::InlinedVector<CancelNode*, 16> stack{root};
  while (!stack.empty()) {
    CancelNode* node = stack.back();
    stack.pop_back();
    node->effective = true;
    if (node->task != nullptr && node->task->scope == node) to_wake.push_back(node->task);
    for (CancelNode* child = node->first_child; child != nullptr; child = child->next_sibling) {
      if (!child->shield && !child->effective) stack.push_back(child);
    }
  }
}

}  // namespace

void CancelNode::cancel() {
  if (cancelled) return;
  cancelled = true;
  if (effective) return;  // an ancestor's cancellation already covers everything below
  // The hooks only stop operations and queue resumptions; a Deferred that fails at once
  // resumes its waiters through resume_bounded, which the batch holds back until every hook
  // has run, so no task runs (and opens or closes scopes) in the middle of the walk.
  ResumptionBatch batch;
  WakeList to_wake;
  mark(this, to_wake);
  for (TaskContext* task : to_wake) task->wake();
}

}  // namespace weft::detail
