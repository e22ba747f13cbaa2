// RootGroup: the task group a runner owns for background work (a ticker, a server started
// by one call and still running at the next), so that nothing a runner started outlives it
// unseen (trio's system nursery; asyncio.run cancelling leftover tasks at shutdown).
//
//   // inside any task run by a runner (every built-in runner owns a root group):
//   weft::start_background("ticker", make_noise(noise));
//
// Background work is a child of a TaskGroup opened by a root task on the runner's reactor
// (core/task_group.h), with two differences that background work needs: a child that fails
// does not cancel its siblings, and its error is reported to the reactor's error handler
// with the work's name ("background work 'ticker'"), not lost. A child that ends with
// Cancelled (shutdown, or a cancel scope inside it) is not an error. Each child keeps the
// context variables of the task that started it (core/context.h), so its output can still be
// attributed to the notebook cell that started it; start it inside Context::root().run() for
// work that must not be pinned to its starter.
//
// The root task is spawned when the first piece of background work starts (a runner that
// never starts any has no extra task in its reactor), in the root context. Work runs while
// the reactor runs: under the blocking runner, only during later run()/wait() calls.
//
// Shutdown (the runner's job, see shut_down()): close() cancels every piece of background
// work; the runner drives its loop (or lets the host's run) until closed() or its bound
// passes, reports the names of what did not finish (unfinished()) to the reactor's error
// handler, and destroys the group and the reactor (which destroys whatever is left: their
// RAII cleanup runs, they never resume; see ~Reactor).
//
// Threading: construction and of() on any thread; everything else on the reactor's loop
// thread (or before it first runs, the thread that made it). Lifetime: the reactor must
// outlive the group. Destroying the group cancels what is left and unregisters it; the
// cancelled work winds down if the reactor runs again (it keeps only a shared state alive,
// never the RootGroup), or is destroyed with the reactor.
#ifndef WEFT_RUNNERS_ROOT_GROUP_H_
#define WEFT_RUNNERS_ROOT_GROUP_H_

#include <atomic>
#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "weft/core/context.h"
#include "weft/core/deferred.h"
#include "weft/core/detail/context_data.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/task.h"
#include "weft/core/task_group.h"
#include "weft/core/time.h"

namespace weft {

namespace detail {

// What the root task and every piece of background work share with the RootGroup; it lives
// as long as any of them, so that the RootGroup may go first.
struct RootGroupState {
  explicit RootGroupState(Reactor& reactor) : reactor(&reactor) {}

  Reactor* reactor;
  TaskGroup* group = nullptr;  // while the root task holds the group open
  // Work started before the root task opened the group, with its starter's context.
  std::vector<std::pair<Task<void>, ContextRef>> pending;
  std::list<std::string> live;  // the names of work started and not finished
  Deferred<void> done;          // the root task's
  bool started = false;         // the root task was spawned
  bool closing = false;
  std::atomic<bool> ever_started{false};  // `started`, for other threads
};

// A name in RootGroupState::live for as long as the piece of work (its frame) exists, even
// if the frame is destroyed before it runs.
class LiveName {
 public:
  LiveName(std::shared_ptr<RootGroupState> state, std::string name)
      : state_(std::move(state)), it_(state_->live.insert(state_->live.end(), std::move(name))) {}
  LiveName(LiveName&& other) noexcept
      : state_(std::move(other.state_)), it_(other.it_) {}  // other no longer owns it
  LiveName& operator=(LiveName&&) = delete;
  ~LiveName() {
    if (state_ != nullptr) state_->live.erase(it_);
  }
  const std::string& name() const { return *it_; }
  Reactor& reactor() const { return *state_->reactor; }

 private:
  std::shared_ptr<RootGroupState> state_;
  std::list<std::string>::iterator it_;
};

// Reports a failure of background work instead of letting it cancel its siblings.
void report_background_error(Reactor& reactor, const std::string& name);

template <typename T>
Task<void> run_background(LiveName name, Task<T> task) {
  try {
    co_await std::move(task);
  } catch (const Cancelled&) {
    // Shutting down, or cancelled on purpose: not an error.
  } catch (...) {
    report_background_error(name.reactor(), name.name());
  }
}

}  // namespace detail

class RootGroup {
 public:
  // Registers the group as the root group of `reactor` (start_background() finds it). Any
  // thread; nothing runs on the reactor until background work starts.
  explicit RootGroup(Reactor& reactor);
  // Cancels what is left (see "Lifetime" above) and unregisters the group.
  ~RootGroup();
  RootGroup(const RootGroup&) = delete;
  RootGroup& operator=(const RootGroup&) = delete;

  // Starts `task` as background work named `name` in the reactor's next turn (or, if the
  // root task has not started yet, in the turn it starts), with the caller's context
  // variables. Its value, if any, is discarded. Throws UsageError once the group is closing.
  template <typename T>
  void start_soon(std::string name, Task<T> task) {
    if (state_->closing) {
      throw UsageError("weft: the runner is shutting down; no new background work ('" + name +
                       "' not started)");
    }
    Task<void> work =
        detail::run_background(detail::LiveName(state_, std::move(name)), std::move(task));
    if (state_->group != nullptr) {
      state_->group->start_soon(std::move(work));
      return;
    }
    state_->pending.emplace_back(std::move(work), detail::current_context());
    if (!state_->started) start_root_task();
  }

  // Cancels every piece of background work; closed() becomes true once all have finished.
  // Idempotent.
  void close();
  // True when nothing is running: no work was ever started, or the group has closed.
  bool closed() const { return !state_->started || state_->done.called(); }
  // Background work started and not yet finished.
  std::size_t size() const { return state_->live.size(); }
  // The names of that work, oldest first.
  std::vector<std::string> unfinished() const;

  // For runners that drive their reactor on the calling thread (blocking, and threaded on
  // its loop thread): close(), drive the loop until closed() or `bound` has passed, and
  // report what did not finish to the reactor's error handler (a TimeoutError naming it, in
  // "shutting down the <runner> runner"). Returns closed(). Never throws: a failure of the
  // native loop is reported the same way and ends the wait.
  bool shut_down(Duration bound, std::string_view runner);
  // For runners whose loop the host drives (host): close(); if the group has not closed
  // `bound` from now, report what is left as shut_down() does. `on_closed` runs on the loop
  // thread once the group has closed (at once if it has); not at all if the reactor is
  // destroyed first.
  void close_then(Duration bound, std::string_view runner,
                  absl::AnyInvocable<void()> on_closed = nullptr);
  // The report shut_down() makes: a TimeoutError listing unfinished(), if anything is.
  void report_unfinished(Duration bound, std::string_view runner);
  // True once background work was started in this group. Any thread.
  bool ever_started() const { return state_->ever_started.load(std::memory_order_acquire); }

  // The root group of `reactor` (the most recently made, if several runners share it), or
  // null. Any thread may ask; use the group on the loop thread.
  static RootGroup* of(Reactor& reactor);

 private:
  void start_root_task();

  std::shared_ptr<detail::RootGroupState> state_;
};

// Starts `task` as background work named `name` in the root group of the reactor running
// the caller (loop thread): it outlives the call that started it, keeps the caller's context
// variables, is cancelled and awaited (bounded) when the runner shuts down, and its failure
// is reported with its name. Throws UsageError outside a reactor with a root group (a bare
// reactor, not a runner's), or once the runner is shutting down.
template <typename T>
void start_background(std::string name, Task<T> task) {
  Reactor* reactor = Reactor::current();
  RootGroup* group = reactor != nullptr ? RootGroup::of(*reactor) : nullptr;
  if (group == nullptr) {
    throw UsageError("weft: start_background('" + name +
                     "'): no runner owns this reactor (call it inside a task run by a Runner)");
  }
  group->start_soon(std::move(name), std::move(task));
}

}  // namespace weft

#endif  // WEFT_RUNNERS_ROOT_GROUP_H_
