// spawn(): starts a Task on a reactor and returns its result as a Deferred
// (Twisted's ensureDeferred, asyncio's create_task).
//
// The task starts in the reactor's next turn, never inside spawn(). Its
// Deferred fires when the task finishes: with its value, or with the exception
// that escaped it. Cancelling the Deferred cancels the task: a task that has
// not started never runs its body and fails with weft::Cancelled; a started
// task is woken at its current weft await with weft::Cancelled, and every later
// await raises Cancelled too (level-triggered; cleanup that must await runs in a
// shielded CancelScope, core/cancel_scope.h); the Deferred fires when it
// finishes.
//
// Context: the task starts with the context variables current at the spawn()
// call (core/context.h); wrap the call in Context::root().run(...) to start it
// clean. A spawned task is not a child of the spawner: cancelling the spawner
// does not cancel it unless the spawner awaits its Deferred. For work that must
// not outlive its starter, use a TaskGroup (core/task_group.h).
//
// Threading: loop thread only (or before the reactor first runs). To start a
// task from another thread, use a Runner (runners/) or call spawn() inside
// call_from_thread(). Lifetime: the reactor owns the running task; destroying
// the reactor destroys unfinished tasks (see ~Reactor). Dropping the returned
// Deferred does not cancel the task.
#ifndef WEFT_CORE_SPAWN_H_
#define WEFT_CORE_SPAWN_H_

#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>

#include "weft/core/deferred.h"
#include "weft/core/detail/cancel_reason.h"
#include "weft/core/detail/counted_ref.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/task.h"

namespace weft {
namespace detail {

// A spawned task: its Deferred's state and its TaskContext (whose root is its Task frame), in
// one block. The frame is its own root: nothing awaits it, and when it finishes its final
// awaiter hands the outcome to this state's Deferred and frees the frame (no second coroutine
// around it: a spawn is one frame and this one block).
template <typename T>
class SpawnedTask final : public DeferredState<T>, private TaskContext {
 public:
  static Deferred<T> start(Reactor& reactor, Task<T> task) {
    if (!task.valid()) [[unlikely]] {
      throw_empty_task("spawn()");
    }
    CountedRef<SpawnedTask> state = make_counted<SpawnedTask>();
    SpawnedTask& self = *state;
    TaskContext& context = self;
    context.root = std::move(task).release_for_detail();
    context.spawned = &kRoot;
    context.vars = current_context();
    self.frame().promise().adopt_as_root(context);  // no continuation: a spawned root (task.h)
    TaskTracker::attach(reactor, context);
    self.set_cancel_function([](void* task) { static_cast<TaskContext*>(task)->request_cancel(); },
                             &context);
    self.reactor_ref_ = state.copy_unpublished();  // nobody else has it yet
    // The task's context is installed when it starts (begin() resumes through the context).
    TaskTracker::call_soon(
        reactor, [](void* task, void*) { static_cast<SpawnedTask*>(task)->begin(); }, &self,
        nullptr);
    return Deferred<T>(std::move(state));
  }

  // For make_counted; use start(). User-provided, so that make_counted's value-initialization does
  // not zero the block before the members' own initializers run (`perf`: a `rep stos` at a
  // sixth of a spawn).
  SpawnedTask() noexcept {}  // NOLINT(modernize-use-equals-default)

 private:
  static SpawnedTask& of(TaskContext& context) { return static_cast<SpawnedTask&>(context); }
  TaskContext& context() { return *this; }
  // The Task frame: the context's root.
  std::coroutine_handle<TaskPromise<T>> frame() {
    return std::coroutine_handle<TaskPromise<T>>::from_address(context().root.address());
  }

  void begin() {
    // Cancelled before it started: the body never runs.
    if (context().cancelled()) [[unlikely]] {
      end(std::make_exception_ptr(Cancelled()), /*started=*/false);
      return;
    }
    context().resume(context().root);
  }

  static std::coroutine_handle<> finished(TaskContext& context) noexcept {
    SpawnedTask& self = of(context);
    self.end(self.frame().promise().error(), /*started=*/true);
    return std::noop_coroutine();
  }

  // The reactor is going away: the Deferred stays unfired.
  static void destroy(TaskContext& context) noexcept {
    SpawnedTask& self = of(context);
    CountedRef<DeferredState<T>> keep = std::move(self.reactor_ref_);
    self.free_frame_and_leave();
  }  // `keep` may free this block: last.

  // Fires the Deferred with the outcome (unless fired by hand), frees the frame, and drops the
  // reactor's reference (last: it may free this block).
  void end(std::exception_ptr error, bool started) noexcept {
    CountedRef<DeferredState<T>> keep = std::move(reactor_ref_);
    if (!this->fired()) {
      if (started) apply_cancel_reason(&context(), error);
      if (error != nullptr) {
        this->fail(std::move(error));
      } else if constexpr (std::is_void_v<T>) {
        this->succeed();
      } else {
        this->succeed(std::move(*frame().promise().value()));
      }
    }
    free_frame_and_leave();
  }

  void free_frame_and_leave() noexcept {
    // The frame first, while the context is whole: destroying it runs the destructors of what
    // it holds (parameters last, after the promise), and those unhook from the context.
    std::exchange(context().root, {}).destroy();
    // The canceller points at the context, which outlives the task only as memory.
    this->set_cancel_function(nullptr, nullptr);
    TaskTracker::detach(*context().reactor, context());
  }

  static constexpr SpawnedRoot kRoot{&SpawnedTask::finished, &SpawnedTask::destroy};

  CountedRef<DeferredState<T>> reactor_ref_;  // while the task is the reactor's
};

}  // namespace detail

template <typename T>
Deferred<T> spawn(Reactor& reactor, Task<T> task) {
  return detail::SpawnedTask<T>::start(reactor, std::move(task));
}

}  // namespace weft

#endif  // WEFT_CORE_SPAWN_H_
