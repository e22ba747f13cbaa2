// RootGroup: the task group a runner owns for background work (a ticker, a server started
// by one call and still running at the next), so that nothing a runner started outlives it
// unseen (trio's system nursery; asyncio.run cancelling leftover tasks at shutdown).
//
//   // inside any task run by a runner that owns a root group:
//   weft::start_background("ticker", make_noise(noise));
//
// Background work is a child of a TaskGroup opened by a root task on the runner's reactor
// (core/task_group.h), with two differences that background work needs: a child that fails
// does not cancel its siblings, and its error is reported to the reactor's error handler
// with the work's name ("background work 'ticker'"), not lost. Each child keeps the context
// variables of the task that started it (core/context.h), so its output can still be
// attributed to the notebook cell that started it.
//
// Shutdown (the runner's job): close() cancels every piece of background work; the runner
// then drives its loop until closed() or its bound passes, and destroys the reactor (which
// destroys whatever is left: see ~Reactor).
//
// Threading: loop thread only, including construction and destruction; a runner makes it
// on the loop thread when the reactor is made. Lifetime: destroy it once closed(), or just
// before destroying the reactor without running it again (its root task refers to it).
#ifndef WEFT_RUNNERS_ROOT_GROUP_H_
#define WEFT_RUNNERS_ROOT_GROUP_H_

#include <cstddef>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "weft/core/context.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/spawn.h"
#include "weft/core/task.h"
#include "weft/core/task_group.h"

namespace weft {

class RootGroup {
 public:
  // Opens the group on `reactor` (its root task starts in the reactor's next turn; work
  // started before that waits for it).
  explicit RootGroup(Reactor& reactor) : reactor_(reactor) {
    register_for(&reactor, this);
    // The root task runs in the root context: background work carries its starter's context,
    // not the runner's.
    Context::root().run([&] { done_ = spawn(reactor, serve(this)); });
  }
  // Destroying an open group cancels it; what is left is destroyed with the reactor.
  ~RootGroup() {
    register_for(&reactor_, nullptr);
    if (!done_.called()) done_.cancel();
    done_.add_errback([](std::exception_ptr) {});
  }
  RootGroup(const RootGroup&) = delete;
  RootGroup& operator=(const RootGroup&) = delete;

  // Starts `task` as background work named `name` in the reactor's next turn. Throws
  // UsageError once the group is closing.
  template <typename T>
  void start_soon(std::string name, Task<T> task) {
    if (closing_) throw UsageError("weft: the runner is shutting down; no new background work");
    if (group_ == nullptr) {
      pending_.push_back(report_errors(std::move(name), std::move(task), &reactor_));
      return;
    }
    group_->start_soon(report_errors(std::move(name), std::move(task), &reactor_));
  }

  // Cancels every piece of background work; closed() becomes true once all have finished.
  void close() {
    closing_ = true;
    if (group_ != nullptr) {
      group_->cancel();
    } else {
      done_.cancel();
    }
  }
  bool closed() const { return done_.called(); }
  // Background work started and not yet finished.
  std::size_t size() const { return (group_ != nullptr ? group_->size() : 0) + pending_.size(); }

  // The root group of `reactor`, or null (any thread may ask; use it on the loop thread).
  static RootGroup* of(Reactor& reactor) {
    std::lock_guard lock(registry_mu());
    auto it = registry().find(&reactor);
    return it == registry().end() ? nullptr : it->second;
  }

 private:
  template <typename T>
  static Task<void> report_errors(std::string name, Task<T> task, Reactor* reactor) {
    try {
      co_await std::move(task);
    } catch (const Cancelled&) {
      // Shutting down, or cancelled on purpose: not an error.
    } catch (...) {
      reactor->report_error(std::current_exception(), "background work '" + name + "'");
    }
  }

  static Task<void> serve(RootGroup* self) {
    co_await open_task_group([self](TaskGroup& group) -> Task<void> {
      self->group_ = &group;
      for (Task<void>& task : self->pending_) group.start_soon(std::move(task));
      self->pending_.clear();
      // Open until close(): a Deferred nobody fires, so the body waits until cancelled.
      Deferred<void> forever;
      try {
        co_await forever;
      } catch (const Cancelled&) {
      }
      self->group_ = nullptr;
    });
  }

  static std::mutex& registry_mu() {
    static std::mutex mu;
    return mu;
  }
  static absl::flat_hash_map<Reactor*, RootGroup*>& registry() {
    static auto* map = new absl::flat_hash_map<Reactor*, RootGroup*>();
    return *map;
  }
  static void register_for(Reactor* reactor, RootGroup* group) {
    std::lock_guard lock(registry_mu());
    if (group != nullptr) {
      registry()[reactor] = group;
    } else {
      registry().erase(reactor);
    }
  }

  Reactor& reactor_;
  TaskGroup* group_ = nullptr;
  std::vector<Task<void>> pending_;
  Deferred<void> done_;
  bool closing_ = false;
};

// Starts `task` as background work named `name` in the root group of the reactor running
// the caller (loop thread). Throws UsageError if that reactor's runner has no root group.
template <typename T>
void start_background(std::string name, Task<T> task) {
  Reactor* reactor = Reactor::current();
  RootGroup* group = reactor != nullptr ? RootGroup::of(*reactor) : nullptr;
  if (group == nullptr) {
    throw UsageError("weft: start_background: this reactor's runner owns no root group");
  }
  group->start_soon(std::move(name), std::move(task));
}

}  // namespace weft

#endif  // WEFT_RUNNERS_ROOT_GROUP_H_
