// A backend that fails on request: wraps a registered backend and makes its next run_once()
// throw, as a native loop does when it breaks (libevent's event_base_loop() returning -1, an
// exception escaping an Asio handler). For checking that whatever drives a loop survives a
// failed native step.
#ifndef WEFT_TESTS_RUNNERS_FAILING_BACKEND_H_
#define WEFT_TESTS_RUNNERS_FAILING_BACKEND_H_

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "weft/core/backend.h"
#include "weft/core/backend_registry.h"

namespace weft::testing {

// Shared by the test and its backend: how many of the next run_once() calls throw.
struct Failures {
  std::atomic<int> left{0};
  std::atomic<int> thrown{0};
};

class FailingBackend final : public Backend {
 public:
  FailingBackend(std::unique_ptr<Backend> inner, std::shared_ptr<Failures> failures)
      : inner_(std::move(inner)), failures_(std::move(failures)) {}

  std::string description() const override { return inner_->description(); }
  void run_once(bool may_block) override {
    if (failures_->left.load() > 0) {
      failures_->left.fetch_sub(1);
      failures_->thrown.fetch_add(1);
      throw std::runtime_error("injected backend failure");
    }
    inner_->run_once(may_block);
  }
  void request_turn() override { inner_->request_turn(); }
  void wake() override { inner_->wake(); }
  void set_timer(TimePoint deadline) override { inner_->set_timer(deadline); }
  void clear_timer() override { inner_->clear_timer(); }
  void set_fd_interest(int fd, IoEvents events) override { inner_->set_fd_interest(fd, events); }
  void release_fd(int fd) override { inner_->release_fd(fd); }
  void after_fork_in_child() override { inner_->after_fork_in_child(); }
  WaitFd wait_fd() const override { return inner_->wait_fd(); }

 private:
  std::unique_ptr<Backend> inner_;
  std::shared_ptr<Failures> failures_;
};

// The registry entry of `backend`, wrapped: same name, failing on request. Not registered.
inline BackendInfo failing_backend(std::string_view backend, std::shared_ptr<Failures> failures) {
  BackendInfo info = find_backend(backend);
  info.factory = [inner = info.factory, failures](LoopHooks& hooks) -> std::unique_ptr<Backend> {
    return std::make_unique<FailingBackend>(inner(hooks), failures);
  };
  return info;
}

inline std::unique_ptr<Reactor> make_failing_reactor(std::string_view backend,
                                                     std::shared_ptr<Failures> failures) {
  const BackendInfo info = failing_backend(backend, std::move(failures));
  return std::make_unique<Reactor>(info.name, info.factory);
}

}  // namespace weft::testing

#endif  // WEFT_TESTS_RUNNERS_FAILING_BACKEND_H_
