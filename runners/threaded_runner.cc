#include "weft/runners/threaded_runner.h"

#include <condition_variable>
#include <exception>
#include <utility>

#include "weft/core/backend_registry.h"
#include "weft/runners/detail/abandoned.h"

namespace weft {

ThreadedRunner::ThreadedRunner(std::string_view backend, Duration shutdown_timeout,
                               std::unique_ptr<ReactorClock> clock)
    : ThreadedRunner(find_backend(backend), shutdown_timeout, std::move(clock)) {}

ThreadedRunner::ThreadedRunner(BackendInfo backend, Duration shutdown_timeout,
                               std::unique_ptr<ReactorClock> clock)
    : shutdown_timeout_(shutdown_timeout) {
  // The reactor is made on the loop thread (a reactor belongs to the thread
  // that runs it); the constructor waits for it, or for the reason it could not
  // be made.
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::exception_ptr error;
  thread_ = std::thread([&, backend = std::move(backend), clock = std::move(clock)]() mutable {
    bool made = true;
    try {
      reactor_ = std::make_unique<Reactor>(backend.name, backend.factory, std::move(clock));
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
  // Registered before the constructor returns, so before any task can call
  // start_background(); the loop thread reads it after the registry's lock.
  root_ = std::make_unique<RootGroup>(*reactor_);
}

void ThreadedRunner::loop() {
  // A stop() of the reactor from user code ends one run(); only shutdown ends
  // the thread. A failure of the native loop (an exception out of run()) must
  // not end it either: escaping the thread, it would terminate the process.
  // It is reported, and the loop goes on serving.
  while (!shutting_down_.load(std::memory_order_acquire)) {
    try {
      reactor_->run();
    } catch (...) {
      reactor_->report_error(std::current_exception(), "the threaded runner's loop");
    }
  }
  // Background work: cancelled, and the loop kept running (bounded) until its cleanup has
  // run. The destructor's stop() may arrive meanwhile; shut_down() consumes it.
  root_->shut_down(shutdown_timeout_, name());
  root_.reset();
  {
    std::unique_lock lock(shutdown_mu_);
    shutdown_cv_.wait(lock, [this] { return stop_delivered_; });
  }
  // Destroyed here, on its own thread: unfinished tasks are destroyed, and
  // their results fail with RunnerShutDown (runners/detail/eventual_state.h).
  reactor_.reset();
}

ThreadedRunner::~ThreadedRunner() {
  if (inherited_through_fork()) {
    // A forked child: the loop thread does not exist here, and may have been anywhere in the
    // reactor (or holding one of its locks, or the link's) at the fork. Joining would wait
    // forever, stop() and sever() could wait for a lock nobody will release, and destroying
    // the reactor could find it half updated. Abandon the thread and the reactor to the
    // child's exit or exec; the parent's loop is untouched.
    detail::abandon(root_);
    detail::abandon(reactor_);
    detail::abandon(new std::thread(std::move(thread_)));
    return;
  }
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

void ThreadedRunner::start(detail::SubmittedTask task) {
  reactor_->call_from_thread(
      [this, task = std::move(task)]() mutable { std::move(task).start_on(*reactor_, link_); });
}

}  // namespace weft
