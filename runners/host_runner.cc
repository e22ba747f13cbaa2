#include "weft/runners/host_runner.h"

#include <algorithm>
#include <utility>

#include "weft/core/errors.h"
#include "weft/core/spawn.h"

namespace weft {

HostRunner::HostRunner(Reactor& reactor, std::thread::id host_thread)
    : reactor_(reactor),
      host_thread_(host_thread),
      link_(std::make_shared<detail::ReactorLink>(&reactor)) {}

HostRunner::~HostRunner() {
  // In a forked child the host's loop is the parent's: failing and cancelling the pending
  // work would take locks the parent's threads may have held and wake the parent's loop
  // through descriptors the two processes share. Leave all of it alone.
  if (inherited_through_fork()) return;
  std::vector<std::weak_ptr<detail::EventualStateBase>> pending;
  {
    std::lock_guard lock(mu_);
    pending.swap(pending_);
  }
  for (const auto& weak : pending) {
    if (std::shared_ptr<detail::EventualStateBase> state = weak.lock()) {
      // Fail first, then cancel (the task winds down in the host's loop): the other order lets
      // the loop finish the cancellation first and report Cancelled instead.
      state->abandon(std::make_exception_ptr(RunnerShutDown()));
    }
  }
  link_->sever();
}

void HostRunner::start(Task<void> task, std::shared_ptr<detail::EventualStateBase> state) {
  {
    std::lock_guard lock(mu_);
    std::erase_if(pending_, [](const auto& weak) {
      auto state = weak.lock();
      return state == nullptr || state->ready();
    });
    pending_.push_back(state);
  }
  // The host's loop may be on another thread: hand the task over. If the runner is gone by the
  // time the callback runs, the task is dropped (its result already failed with RunnerShutDown).
  auto link = link_;
  // The callback must not touch the runner (it may be gone by then), only the reactor, which
  // outlives it and is running the callback.
  link->call_from_thread(
      [reactor = &reactor_, link, task = std::move(task), state = std::move(state)]() mutable {
        if (!link->linked()) return;
        state->set_canceller(detail::cancel_through(link, spawn(*reactor, std::move(task))));
      });
}

}  // namespace weft
