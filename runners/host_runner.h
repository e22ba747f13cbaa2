// HostRunner: runs tasks inside a loop the host application owns and drives (IPython's
// autoawait inside ipykernel's already-running asyncio loop).
//
// The host keeps running its own loop on its own thread: a native libuv/libevent/Asio loop
// with a reactor adopted onto it (weft::libuv::adopt(), ...), or any other loop driving a
// GuestReactor (GLib, ...). submit(task) schedules the task on that loop and returns at once
// with an EventualResult; run(task, timeout) from another thread waits for it. From the host's
// own thread, run() and wait() throw UsageError rather than deadlock: the host's loop cannot
// make progress while its thread waits, and the runner never drives the host's loop itself.
// From the host thread, submit and collect the result later, or co_await inside a task.
//
// Background work (weft::start_background, runners/root_group.h) runs in the host's loop.
// Destroying the runner cancels it. From another thread, the destructor then waits until its
// cleanup has run in the host's loop, or `shutdown_timeout` has passed; on the host's own
// thread it cannot wait (the loop needs the thread), and the cleanup runs as the host's loop
// goes on. Either way, what has not finished `shutdown_timeout` after the cancellation is
// reported to the reactor's error handler, by name, and goes on winding down in the host's
// loop (or is destroyed with the reactor).
//
// Threading: submit(), run() (other threads) and the EventualResults are safe from any
// thread. Make and destroy the runner on any thread; the reactor must outlive it.
// Lifetime: destroying the runner cancels its tasks still running in the host loop and fails
// their results with RunnerShutDown at once. The host's reactor is not touched otherwise.
// fork: in a forked child, run() and submit() (and wait()/cancel() on results) throw
// UsageError, and the destructor touches neither the host's reactor nor the results.
#ifndef WEFT_RUNNERS_HOST_RUNNER_H_
#define WEFT_RUNNERS_HOST_RUNNER_H_

#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "weft/core/reactor.h"
#include "weft/core/time.h"
#include "weft/runners/detail/reactor_link.h"
#include "weft/runners/root_group.h"
#include "weft/runners/runner.h"

namespace weft {

class HostRunner final : public Runner {
 public:
  // `reactor` runs on the host's loop, driven on `host_thread`. The destructor waits up to
  // `shutdown_timeout` for background work (see above).
  HostRunner(Reactor& reactor, std::thread::id host_thread,
             Duration shutdown_timeout = kDefaultShutdownTimeout);
  ~HostRunner() override;

  std::string_view name() const override { return "host"; }
  Reactor& reactor() override { return reactor_; }
  std::thread::id loop_thread() const override { return host_thread_; }

 protected:
  void start(detail::SubmittedTask task) override;

 private:
  // Cancels the background work and waits for it (bounded) as the class comment says.
  void shut_down_background();

  Reactor& reactor_;
  const std::thread::id host_thread_;
  std::shared_ptr<detail::ReactorLink> link_;
  // Touched on the host's thread only, except construction; the destructor hands it over.
  std::unique_ptr<RootGroup> root_;
  const Duration shutdown_timeout_;
  std::mutex mu_;
  std::vector<std::weak_ptr<detail::EventualStateBase>> pending_;  // guarded by mu_
};

}  // namespace weft

#endif  // WEFT_RUNNERS_HOST_RUNNER_H_
