// TaskContext: what every coroutine of one spawned task (or task-group child) shares: the
// reactor it runs on, its place in the cancellation tree, its context variables, and its
// place in the reactor's list of live tasks.
//
// Cancellation is level-triggered (trio's rule; docs/architecture.md, "Cancellation"): every
// cancel scope (core/cancel_scope.h) is a CancelNode in one tree that spans tasks (a task
// group's children hang under the group's scope). A node is *effectively* cancelled when it,
// or an ancestor reached without crossing a shield, was cancelled. While the task's innermost
// open scope is effectively cancelled, every weft await raises weft::Cancelled at once, until
// the scope is left; cleanup that must await runs in a shielded scope. A task suspended at an
// await when its scope becomes effectively cancelled is woken through the cancel hook that its
// awaiter registered (at most one hook at a time: the task is suspended at one await).
//
// Threading: loop thread only.
#ifndef WEFT_CORE_DETAIL_TASK_CONTEXT_H_
#define WEFT_CORE_DETAIL_TASK_CONTEXT_H_

#include <coroutine>
#include <exception>
#include <utility>
#include <vector>

#include "weft/core/detail/context_data.h"

namespace weft {
class Reactor;
}

namespace weft::detail {

struct TaskContext;

// How the Task frame of a spawned task, which is its own root (core/spawn.h), ends: finished
// (returns the coroutine to resume next), or destroyed unfinished because its reactor went away
// (frees the frame, then gives up its place and its context).
struct SpawnedRoot {
  std::coroutine_handle<> (*finished)(TaskContext& context) noexcept;
  void (*destroy)(TaskContext& context) noexcept;
};

// One open cancel scope's place in the cancellation tree.
struct CancelNode {
  CancelNode* parent = nullptr;
  CancelNode* first_child = nullptr;
  CancelNode* prev_sibling = nullptr;
  CancelNode* next_sibling = nullptr;
  TaskContext* task = nullptr;  // whose awaits this scope covers
  bool cancelled = false;       // cancel() was called on this very scope
  bool effective = false;       // cancelled, or an ancestor is and no shield is between
  bool shield = false;          // ancestors' cancellation stops here

  // Links the node under `parent` (null: a tree of its own) for `task`'s awaits.
  void attach(CancelNode* parent, TaskContext* task) noexcept;
  // Unlinks it; its children (none, when scopes are left in order) are orphaned.
  void detach() noexcept;
  // Cancels this scope: marks it and every unshielded descendant effectively cancelled and
  // wakes each task suspended in one of them. Idempotent. Tasks resumed as a consequence
  // (a Deferred failing synchronously) run after the whole tree is marked.
  void cancel();
};

struct TaskContext {
  using CancelHook = void (*)(void* awaiter);

  TaskContext() noexcept { root_scope.task = this; }
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;

  Reactor* reactor = nullptr;
  // The task's outermost scope (cancelled by cancelling the task) and its innermost open one.
  // No unique address: the flag below is laid out in the padding after the node's own flags
  // (8 bytes a task).
  [[no_unique_address]] CancelNode root_scope;
  // The task waits, by design, for something from outside the loop (a runner's shutdown):
  // deadlock detection neither counts nor fails it (core/virtual_clock.h).
  bool deadlock_exempt = false;
  CancelNode* scope = &root_scope;
  // The task's context variables (core/context.h); installed whenever the task resumes.
  ContextRef vars;
  // Why the task was cancelled, when it was not a plain cancel() (a deadlock on virtual time,
  // core/virtual_clock.h): a task that then ends in Cancelled reports this instead.
  std::exception_ptr cancel_reason;
  // True while an await must raise Cancelled (level-triggered).
  bool cancelled() const noexcept { return scope->effective; }
  // Cancels the whole task (its root scope).
  void request_cancel() { root_scope.cancel(); }

  // An awaiter that can be cancelled registers a hook while the task is suspended in it.
  void set_cancel_hook(CancelHook hook, void* awaiter) noexcept {
    cancel_hook_ = hook;
    cancel_arg_ = awaiter;
  }
  void clear_cancel_hook() noexcept { cancel_hook_ = nullptr; }
  // Called by the tree when the innermost scope became effectively cancelled: runs the hook
  // once (the awaiter then stops its operation and arranges the resumption).
  void wake() {
    if (cancel_hook_ != nullptr) {
      CancelHook hook = cancel_hook_;
      cancel_hook_ = nullptr;
      hook(cancel_arg_);
    }
  }

  // Resumes the task now with its context variables installed. Every resumption of a
  // suspended task goes through here (or resume_bounded), never a bare handle.resume().
  void resume(std::coroutine_handle<> handle) {
    ContextSwitch use(vars);
    handle.resume();
  }

  // The reactor's intrusive list of live (spawned, unfinished) tasks, and the root coroutine
  // frame to destroy if the reactor is destroyed first (a spawned task's own Task frame, or a
  // task-group child's frame).
  TaskContext* prev = nullptr;
  TaskContext* next = nullptr;
  std::coroutine_handle<> root;
  // Set when `root` is a spawned task's own Task frame (core/spawn.h).
  const SpawnedRoot* spawned = nullptr;

  // Destroys the unfinished task's root frame (its reactor is going away); the task leaves the
  // reactor's list.
  void destroy_root() {
    if (spawned != nullptr) {
      spawned->destroy(*this);  // may free this context: last
    } else {
      root.destroy();
    }
  }

 private:
  CancelHook cancel_hook_ = nullptr;
  void* cancel_arg_ = nullptr;
};

// Throws UsageError: `what` (spawn(), a runner's submit()) was given an empty Task (moved
// from), which has no frame to run.
[[noreturn]] void throw_empty_task(const char* what);

// While one is alive on this thread, resume_bounded() (core/deferred.h) queues resumptions
// instead of running them; the outermost one runs the queue when it ends. CancelNode::cancel
// holds one so that no task runs (and reshapes the tree) while the tree is being marked.
// Defined in core/deferred.cc.
class ResumptionBatch {
 public:
  ResumptionBatch();
  ~ResumptionBatch();
  ResumptionBatch(const ResumptionBatch&) = delete;
  ResumptionBatch& operator=(const ResumptionBatch&) = delete;

 private:
  std::vector<std::pair<TaskContext*, std::coroutine_handle<>>> queue_;
  std::vector<std::pair<TaskContext*, std::coroutine_handle<>>>* previous_;
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_TASK_CONTEXT_H_
