// A host that runs its own libuv loop, with a weft reactor adopted onto it.
#include "weft/backends/libuv/libuv_backend.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backends/timer_checks.h"
#include "tests/testing/adopted_work.h"
#include "weft/core/backend_registry.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/fd_wait.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"

namespace weft {
namespace {

using namespace std::chrono_literals;

int count_handles(uv_loop_t* loop) {
  int count = 0;
  uv_walk(
      loop, [](uv_handle_t*, void* arg) { ++*static_cast<int*>(arg); }, &count);
  return count;
}

struct HostTicker {
  uv_timer_t timer;
  std::vector<TimePoint> ticks;
};

TEST(LibuvAdopt, WeftWorkCompletesInsideTheHostsLoopAndTheHostKeepsItsCadence) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  HostTicker ticker;
  uv_timer_init(&loop, &ticker.timer);
  ticker.timer.data = &ticker;
  uv_timer_start(
      &ticker.timer,
      [](uv_timer_t* t) { static_cast<HostTicker*>(t->data)->ticks.push_back(Clock::now()); }, 5,
      5);

  std::unique_ptr<Reactor> reactor = libuv::adopt(&loop);
  EXPECT_EQ(libuv::native_loop(*reactor), &loop);
  testing::AdoptedWork work(*reactor, [&] { uv_stop(&loop); });
  const TimePoint start = Clock::now();
  uv_run(&loop, UV_RUN_DEFAULT);  // the host's own loop; weft runs inside it
  const Duration elapsed = Clock::now() - start;
  work.check();
  // The host's 5 ms timer kept ticking while weft worked (at least 40 ms). A count, not a rate: a
  // loaded machine may stretch any tick, but a loop blocked by weft would tick once at most.
  EXPECT_GE(ticker.ticks.size(), 2u)
      << "in " << std::chrono::duration<double, std::milli>(elapsed).count() << " ms";

  // Destroying the reactor leaves the loop usable and, once the host's loop has run the close
  // callbacks, free of weft's handles.
  reactor.reset();
  uv_run(&loop, UV_RUN_NOWAIT);
  EXPECT_EQ(count_handles(&loop), 1) << "only the host's timer is left";
  const std::size_t before = ticker.ticks.size();
  uv_timer_start(
      &ticker.timer,
      [](uv_timer_t* t) {
        static_cast<HostTicker*>(t->data)->ticks.push_back(Clock::now());
        uv_timer_stop(t);
      },
      1, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(ticker.ticks.size(), before + 1);
  uv_close(reinterpret_cast<uv_handle_t*>(&ticker.timer), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(LibuvAdopt, AnIdleAdoptedReactorDoesNotKeepTheHostsLoopAlive) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::unique_ptr<Reactor> reactor = libuv::adopt(&loop);
  bool ran = false;
  reactor->call_soon([&] { ran = true; });
  uv_run(&loop, UV_RUN_DEFAULT);  // returns once weft has nothing left to do
  EXPECT_TRUE(ran);
  reactor.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(LibuvAdopt, RunDrivesTheHostsLoopToo) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::unique_ptr<Reactor> reactor = libuv::adopt(&loop);
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    reactor->stop();
  });
  reactor->run();  // blocks (the wake-up handle is referenced while weft drives) until stop()
  stopper.join();
  reactor.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

// weft's timers inside the host's own uv_run(): never early, and, while one is pending, they
// keep the host's loop running like any libuv handle (a timerfd watcher is referenced only while
// armed), so uv_run(UV_RUN_DEFAULT) returns exactly when the last has run.
TEST(LibuvAdopt, WeftTimersRunNeverEarlyInsideTheHostsLoopAndKeepItRunningUntilDone) {
  for (const char* source : testing::kTimerSources) {
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    std::unique_ptr<Reactor> reactor;
    {
      testing::ScopedEnv timer("WEFT_TIMER", source);
      reactor = libuv::adopt(&loop);
    }
    testing::RandomTimers timers(*reactor, 60, 7);
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_TRUE(timers.all_ran()) << source << ": " << timers.ran() << " ran";
    EXPECT_EQ(timers.early(), 0) << source;
    reactor.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop), 0) << source;
  }
}

TEST(LibuvAdopt, NativeLoopOfAnotherBackendIsAUsageError) {
  for (const BackendInfo& info : available_backends()) {
    if (info.name == "libuv") continue;
    std::unique_ptr<Reactor> other = make_reactor(info.name);
    EXPECT_THROW(libuv::native_loop(*other), UsageError);
  }
}

}  // namespace
}  // namespace weft
