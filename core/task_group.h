// TaskGroup: a set of child tasks that a task opens, starts children in, and leaves only when
// every child has finished (trio's nursery, asyncio.TaskGroup, corral's Nursery).
//
//   co_await weft::open_task_group([&](weft::TaskGroup& group) -> weft::Task<void> {
//     group.start_soon(serve(client_a));
//     group.start_soon(serve(client_b));
//     int port = co_await group.start<int>(listen);  // waits until listen() reports ready
//     co_return;
//   });  // returns when the body and every child have finished
//
// The group is opened by co_await, never by a destructor that blocks: open_task_group()
// runs the body in the awaiting task, then waits for the children. No child outlives it.
//
// Failure: the first child (or body) to fail cancels the group: the body and every other
// child wake with weft::Cancelled (level-triggered, see core/cancel_scope.h). When the group
// closes, one failure is rethrown as itself; several come back together as TaskGroupError,
// in the order they happened. Cancelled ending a child or the body because the group (or a
// scope around it) was cancelled is not a failure. cancel() cancels the group by hand: the
// body and children are cancelled and open_task_group() returns normally. A cancellation
// from outside the group reaches every child, and open_task_group() then raises Cancelled
// (after every child has finished) so that the scope that was cancelled can absorb it.
//
// Children start in the reactor's next turn, never inside start_soon(); a child may start
// further children in the same group while it is open. Each child is its own task (its own
// cancellation and context variables, captured from the starter: core/context.h), hung in
// the cancellation tree under the group.
//
// Completion contract: open_task_group() completes exactly once, after the body and every
// child have finished, with the body's normal return, the failure(s), or Cancelled.
//
// Threading: loop thread only. Lifetime: the TaskGroup lives in open_task_group()'s frame;
// do not keep a reference past it (start_soon() on a closed group throws UsageError). If
// the reactor destroys the opening task's frame, the group destroys its children's frames
// first (their RAII cleanup runs; they never resume).
#ifndef WEFT_CORE_TASK_GROUP_H_
#define WEFT_CORE_TASK_GROUP_H_

#include <coroutine>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/core/deferred.h"
#include "weft/core/detail/recycler.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/task.h"

namespace weft {

// Several failures of one task group, in the order they happened. what() says how many and
// quotes each.
class TaskGroupError : public std::runtime_error {
 public:
  explicit TaskGroupError(std::vector<std::exception_ptr> errors);
  const std::vector<std::exception_ptr>& errors() const { return errors_; }

 private:
  std::vector<std::exception_ptr> errors_;
};

// Handed to a child started with TaskGroup::start(): call it once the child is ready (trio's
// task_status.started()). Calling it twice throws AlreadyCalledError.
template <typename T = void>
class Started {
 public:
  template <typename U = T>
  requires(!std::is_void_v<U>) void operator()(U value) const { ready_.callback(std::move(value)); }
  void operator()() const requires std::is_void_v<T> { ready_.callback(); }

 private:
  friend class TaskGroup;
  explicit Started(Deferred<T> ready) : ready_(std::move(ready)) {}
  Deferred<T> ready_;
};

class TaskGroup;

namespace detail {

struct ChildDone;

// The coroutine at the bottom of every group child: owns its TaskContext, hangs it under
// the group's scope, runs the Task, reports the outcome to the group and frees itself.
class GroupChild {
 public:
  class promise_type : public RecycledFrame {
   public:
    template <typename... Args>
    promise_type(TaskGroup& group, Args&...);
    ~promise_type();
    GroupChild get_return_object() noexcept {
      return GroupChild(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the body catches everything
    TaskContext* context() noexcept { return &context_; }

   private:
    friend class weft::TaskGroup;
    friend struct ChildDone;
    TaskContext context_;
    TaskGroup* group_;  // null once the child has reported to the group
    promise_type* prev_ = nullptr;
    promise_type* next_ = nullptr;
  };
  std::coroutine_handle<promise_type> handle() const { return handle_; }

 private:
  explicit GroupChild(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  std::coroutine_handle<promise_type> handle_;
};

// Reports the child's outcome to its group (declared here, defined after TaskGroup).
struct ChildDone {
  // A pointer, not a copy: the awaiter stays trivially destructible (GCC 12 has destroyed
  // awaiter temporaries with non-trivial members twice when the coroutine runs to its end
  // straight from await_suspend).
  std::exception_ptr* error;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<GroupChild::promise_type> self) noexcept;
  void await_resume() const noexcept {}
};

struct StartGateForChild {
  bool cancelled = false;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<GroupChild::promise_type> self) noexcept {
    cancelled = self.promise().context()->cancelled();
    return false;
  }
  void await_resume() const {
    if (cancelled) throw Cancelled();
  }
};

// `ready` is null for start_soon() children, a Deferred for start() children: until it
// fires, the child's outcome goes to start()'s caller instead of the group.
template <typename T, typename Ready>
GroupChild run_child(TaskGroup&, Task<T> task_parameter, Ready ready) {
  Task<T> task = std::move(task_parameter);  // a local: dies before the promise (spawn.h)
  std::exception_ptr error;
  try {
    co_await StartGateForChild{};
    co_await std::move(task);
  } catch (...) {
    error = std::current_exception();
  }
  if constexpr (!std::is_same_v<Ready, std::nullptr_t>) {
    if (!ready.called()) {
      ready.errback(error != nullptr ? error
                                     : std::make_exception_ptr(UsageError(
                                           "weft: a task started with TaskGroup::start() "
                                           "finished without reporting that it started")));
      error = nullptr;
    }
  }
  co_await ChildDone{&error};
}

// Enters the group's scope in the opening task (no suspension).
struct GroupEntry {
  TaskGroup& group;
  bool await_ready() const noexcept { return false; }
  template <WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> opener);
  void await_resume() const noexcept {}
};

}  // namespace detail

class TaskGroup {
 public:
  TaskGroup() = default;
  ~TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Starts `task` as a child in the reactor's next turn (trio's start_soon); its value, if
  // any, is discarded. Throws UsageError once the group has closed.
  template <typename T>
  void start_soon(Task<T> task) {
    check_open();
    if (!task.valid()) [[unlikely]] {
      detail::throw_empty_task("TaskGroup::start_soon()");
    }
    launch(detail::run_child(*this, std::move(task), nullptr));
  }

  // Starts `make(Started<T>)` as a child and waits until it calls its Started<T> (trio's
  // nursery.start()); returns the value it reported. Until then its failure is start()'s
  // (the group never sees it), and cancelling the waiting task cancels the child; after it,
  // the child is an ordinary child of the group. A child that finishes without reporting
  // makes start() throw UsageError. `make` is called at once; a coroutine lambda's captures
  // must outlive the child.
  template <typename T = void, typename Make>
  Task<T> start(Make make);

  // Cancels the group: the body and every child (see above). Idempotent.
  void cancel() { node_.cancel(); }
  bool cancel_called() const { return node_.cancelled; }
  // Children started and not yet finished.
  std::size_t size() const { return live_; }
  bool is_open() const { return open_; }

 private:
  template <typename Body>
  friend Task<void> open_task_group(Body body);
  friend struct detail::GroupEntry;
  friend struct detail::ChildDone;
  friend class detail::GroupChild::promise_type;

  struct JoinAwaiter {
    TaskGroup& group;
    bool await_ready() const noexcept { return group.live_ == 0; }
    template <detail::WeftPromise Promise>
    void await_suspend(std::coroutine_handle<Promise> opener) noexcept {
      // Not a cancellable await: a cancellation reaches the children through the tree, and
      // the group is left only once they have all finished.
      group.joiner_ = opener;
    }
    void await_resume() const noexcept {}
  };

  void check_open() const;
  void enter(detail::TaskContext& opener);
  void launch(detail::GroupChild child);
  // The body (or a child) ended with `error`: record it unless it is the group's expected
  // Cancelled, and cancel the group if it is a failure.
  void note_outcome(std::exception_ptr error);
  void child_done(detail::GroupChild::promise_type& child, std::exception_ptr error);
  // Leaves the scope and rethrows what the group ends with.
  void close();

  detail::CancelNode node_;
  detail::TaskContext* opener_ = nullptr;
  detail::CancelNode* previous_ = nullptr;
  detail::GroupChild::promise_type* children_ = nullptr;
  std::coroutine_handle<> joiner_;
  std::vector<std::exception_ptr> errors_;
  std::size_t live_ = 0;
  bool open_ = false;
  bool saw_cancel_ = false;  // something ended with Cancelled that was not a failure
};

// Opens a task group, runs `body(group)` (a callable returning Task<void>) in the awaiting
// task, and completes when the body and every child have finished (see above).
template <typename Body>
Task<void> open_task_group(Body body) {
  TaskGroup group;
  co_await detail::GroupEntry{group};
  try {
    co_await body(group);
  } catch (...) {
    group.note_outcome(std::current_exception());
  }
  co_await TaskGroup::JoinAwaiter{group};
  group.close();
}

// ---- Implementation ----

namespace detail {

template <typename... Args>
GroupChild::promise_type::promise_type(TaskGroup& group, Args&...) : group_(&group) {
  context_.root = std::coroutine_handle<promise_type>::from_promise(*this);
  TaskTracker::attach(*group.opener_->reactor, context_);
  context_.root_scope.attach(&group.node_, &context_);
  next_ = group.children_;
  if (next_ != nullptr) next_->prev_ = this;
  group.children_ = this;
  ++group.live_;
}

inline GroupChild::promise_type::~promise_type() {
  if (group_ != nullptr) {
    // Destroyed without finishing (the reactor or the group is tearing it down).
    if (prev_ != nullptr) {
      prev_->next_ = next_;
    } else {
      group_->children_ = next_;
    }
    if (next_ != nullptr) next_->prev_ = prev_;
    --group_->live_;
  }
  context_.root_scope.detach();
  TaskTracker::detach(*context_.reactor, context_);
}

inline bool ChildDone::await_suspend(
    std::coroutine_handle<GroupChild::promise_type> self) noexcept {
  GroupChild::promise_type& child = self.promise();
  TaskGroup* group = std::exchange(child.group_, nullptr);
  group->child_done(child, std::move(*error));
  return false;  // run on to the end: the frame frees itself; nothing here touches the group
}

template <WeftPromise Promise>
bool GroupEntry::await_suspend(std::coroutine_handle<Promise> opener) {
  group.enter(*opener.promise().context());
  return false;
}

}  // namespace detail

template <typename T, typename Make>
Task<T> TaskGroup::start(Make make) {
  check_open();
  Deferred<T> ready;
  detail::GroupChild child = detail::run_child(*this, make(Started<T>(ready)), ready);
  detail::TaskContext* child_context = child.handle().promise().context();
  // Cancelling start()'s await cancels the child; the child's end fires `ready`, which also
  // drops this canceller before the context goes away.
  ready.state_for_detail().set_cancel_function(
      [](void* task) { static_cast<detail::TaskContext*>(task)->request_cancel(); }, child_context);
  launch(child);
  co_return co_await ready;
}

}  // namespace weft

#endif  // WEFT_CORE_TASK_GROUP_H_
