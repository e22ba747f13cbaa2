#include "runners/threaded_runner.h"

#include <condition_variable>
#include <exception>
#include <utility>

#include "core/backend_registry.h"
#include "core/spawn.h"

namespace weft {

ThreadedRunner::ThreadedRunner(std::string backend) {
  // The reactor is made on the loop thread (a reactor belongs to the thread
  // that runs it); the constructor waits for it, or for the reason it could not
  // be made.
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::exception_ptr error;
  thread_ = std::thread([&, backend = std::move(backend)]() mutable {
    bool made = true;
    try {
      reactor_ = make_reactor(backend);
    } catch (...) {
      error = std::current_exception();
      made = false;
    }
    {
      // Notify under the lock: once it is released the constructor may return
      // and destroy `mu` and `cv`, and this thread must not touch them again.
      std::lock_guard lock(mu);
      ready = true;
      cv.notify_one();
    }
    if (made) loop();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return ready; });
  if (error != nullptr) {
    lock.unlock();
    thread_.join();
    std::rethrow_exception(error);
  }
  link_ = std::make_shared<detail::ReactorLink>(reactor_.get());
}

void ThreadedRunner::loop() {
  // A stop() of the reactor from user code ends one run(); only shutdown ends
  // the thread.
  while (!shutting_down_.load(std::memory_order_acquire)) reactor_->run();
  {
    std::unique_lock lock(shutdown_mu_);
    shutdown_cv_.wait(lock, [this] { return stop_delivered_; });
  }
  // Destroyed here, on its own thread: unfinished tasks are destroyed, and
  // their results fail with RunnerShutDown (see detail::ShutdownGuard).
  reactor_.reset();
}

ThreadedRunner::~ThreadedRunner() {
  link_->sever();
  shutting_down_.store(true, std::memory_order_release);
  reactor_->stop();
  {
    std::lock_guard lock(shutdown_mu_);
    stop_delivered_ = true;
    shutdown_cv_.notify_one();
  }
  thread_.join();
}

void ThreadedRunner::start(Task<void> task, std::shared_ptr<detail::EventualStateBase> state) {
  reactor_->call_from_thread([this, task = std::move(task), state = std::move(state)]() mutable {
    state->set_canceller(detail::cancel_through(link_, spawn(*reactor_, std::move(task))));
  });
}

}  // namespace weft
