// ReactorLink: a way to reach a runner's reactor from any thread, at any time,
// that stays safe after the runner is gone.
//
// EventualResult::cancel() may be called from any thread, even after its runner
// shut down. Its canceller therefore holds a shared ReactorLink instead of a
// Reactor*: the runner severs the link (under its lock) before it destroys the
// reactor, after which the link does nothing.
//
// Threading: every member is thread-safe.
#ifndef WEFT_RUNNERS_DETAIL_REACTOR_LINK_H_
#define WEFT_RUNNERS_DETAIL_REACTOR_LINK_H_

#include <memory>
#include <mutex>

#include "absl/functional/any_invocable.h"
#include "weft/core/reactor.h"

namespace weft::detail {

class ReactorLink {
 public:
  explicit ReactorLink(Reactor* reactor) : reactor_(reactor) {}

  // Queues `callback` on the reactor if it is still linked; false otherwise.
  bool call_from_thread(absl::AnyInvocable<void()> callback) {
    std::lock_guard lock(mu_);
    if (reactor_ == nullptr) return false;
    reactor_->call_from_thread(std::move(callback));
    return true;
  }
  bool linked() {
    std::lock_guard lock(mu_);
    return reactor_ != nullptr;
  }
  // After this returns, no call reaches the reactor.
  void sever() {
    std::lock_guard lock(mu_);
    reactor_ = nullptr;
  }

 private:
  std::mutex mu_;
  Reactor* reactor_;
};

}  // namespace weft::detail

#endif  // WEFT_RUNNERS_DETAIL_REACTOR_LINK_H_
