#include "weft/runners/host_runner.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <utility>

#include "weft/core/errors.h"
#include "weft/runners/detail/abandoned.h"

namespace weft {

HostRunner::HostRunner(Reactor& reactor, std::thread::id host_thread, Duration shutdown_timeout)
    : reactor_(reactor),
      host_thread_(host_thread),
      link_(std::make_shared<detail::ReactorLink>(&reactor)),
      root_(std::make_unique<RootGroup>(reactor)),
      shutdown_timeout_(shutdown_timeout) {}

HostRunner::~HostRunner() {
  // In a forked child the host's loop is the parent's: failing and cancelling the pending
  // work would take locks the parent's threads may have held and wake the parent's loop
  // through descriptors the two processes share. Leave all of it alone.
  if (inherited_through_fork()) {
    detail::abandon(root_);  // its registry's lock may have been held by the parent's threads
    return;
  }
  std::vector<std::weak_ptr<detail::EventualStateBase>> pending;
  {
    std::lock_guard lock(mu_);
    pending.swap(pending_);
  }
  for (const auto& weak : pending) {
    if (std::shared_ptr<detail::EventualStateBase> state = weak.lock()) {
      // Fail first, then cancel (the task winds down in the host's loop): the other order lets
      // the loop finish the cancellation first and report Cancelled instead.
      detail::EventualStateBase::abandon(state, std::make_exception_ptr(RunnerShutDown()));
    }
  }
  shut_down_background();
  link_->sever();
}

void HostRunner::shut_down_background() {
  if (std::this_thread::get_id() == host_thread_) {
    // The loop's own thread: the group is ours to touch, but waiting here would stop the very
    // loop the cleanup needs. Cancel; the cleanup runs as the host's loop goes on.
    root_->close_then(shutdown_timeout_, name());
    root_.reset();
    return;
  }
  // Another thread: the group belongs to the host's thread, so it is closed (and destroyed)
  // there, and this thread waits until it has closed, bounded. Nothing to wait for if no
  // background work was ever started (a start racing this destructor is cancelled all the
  // same, unwaited).
  struct Closing {
    std::mutex mu;
    std::condition_variable cv;
    bool closed = false;
  };
  auto closing = std::make_shared<Closing>();
  const bool wait = root_->ever_started();
  // The reactor outlives the runner, so it may be used here and by the callback directly.
  reactor_.call_from_thread([root = std::move(root_), closing, bound = shutdown_timeout_,
                             runner = std::string(name())]() mutable {
    root->close_then(bound, runner, [closing] {
      std::lock_guard lock(closing->mu);
      closing->closed = true;
      closing->cv.notify_all();
    });
    root.reset();
  });
  if (!wait) return;
  std::unique_lock lock(closing->mu);
  const auto closed = [&] { return closing->closed; };
  if (shutdown_timeout_ == Duration::max()) {
    closing->cv.wait(lock, closed);
  } else {
    closing->cv.wait_until(lock, add_saturating(Clock::now(), shutdown_timeout_), closed);
  }
}

void HostRunner::start(detail::SubmittedTask task) {
  {
    std::lock_guard lock(mu_);
    std::erase_if(pending_, [](const auto& weak) {
      auto state = weak.lock();
      return state == nullptr || state->ready();
    });
    pending_.push_back(task.state());
  }
  // The host's loop may be on another thread: hand the task over. If the runner is gone by the
  // time the callback runs, the task is dropped (its result already failed with RunnerShutDown).
  auto link = link_;
  // The callback must not touch the runner (it may be gone by then), only the reactor, which
  // outlives it and is running the callback.
  link->call_from_thread([reactor = &reactor_, link, task = std::move(task)]() mutable {
    if (!link->linked()) return;
    std::move(task).start_on(*reactor, link);
  });
}

}  // namespace weft
