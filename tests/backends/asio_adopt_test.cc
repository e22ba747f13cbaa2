// A host that runs its own Boost.Asio io_context, with a weft reactor adopted onto it.
#include "weft/backends/asio/asio_backend.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
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

// The host's own repeating timer.
struct HostTicker {
  explicit HostTicker(boost::asio::io_context& context) : timer(context) {}
  void start() {
    timer.expires_after(5ms);
    timer.async_wait([this](boost::system::error_code error) {
      if (error || stopped) return;
      ticks.push_back(Clock::now());
      start();
    });
  }
  boost::asio::steady_timer timer;
  std::vector<TimePoint> ticks;
  bool stopped = false;
};

TEST(AsioAdopt, WeftWorkCompletesInsideTheHostsLoopAndTheHostKeepsItsCadence) {
  boost::asio::io_context context;
  HostTicker ticker(context);
  ticker.start();

  std::unique_ptr<Reactor> reactor = asio::adopt(context);
  EXPECT_EQ(&asio::native_context(*reactor), &context);
  testing::AdoptedWork work(*reactor, [&] {
    ticker.stopped = true;
    ticker.timer.cancel();
  });
  const TimePoint start = Clock::now();
  context.run();  // the host's own loop; returns when the host and weft have nothing left
  const Duration elapsed = Clock::now() - start;
  work.check();
  // The host's 5 ms timer kept ticking while weft worked (at least 40 ms). A count, not a rate: a
  // loaded machine may stretch any tick, but a loop blocked by weft would tick once at most.
  EXPECT_GE(ticker.ticks.size(), 2u)
      << "in " << std::chrono::duration<double, std::milli>(elapsed).count() << " ms";

  // Destroying the reactor leaves the context usable, with nothing of weft's that runs.
  reactor.reset();
  context.restart();
  bool host_ran = false;
  boost::asio::post(context, [&] { host_ran = true; });
  context.run();
  EXPECT_TRUE(host_ran);
}

TEST(AsioAdopt, AnIdleAdoptedReactorDoesNotKeepTheHostsLoopAlive) {
  boost::asio::io_context context;
  std::unique_ptr<Reactor> reactor = asio::adopt(context);
  bool ran = false;
  reactor->call_soon([&] { ran = true; });
  context.run();  // returns once weft has nothing left to do
  EXPECT_TRUE(ran);
}

// Someone stops the io_context under weft's own reactor (native_context() hands it out for I/O
// objects): the reactor restarts it, so work queued before and after still runs, blocking and
// not, and a blocking step never turns into a spin.
TEST(AsioAdopt, AStoppedOwnContextIsRestartedAndItsWorkStillRuns) {
  auto reactor = make_reactor("asio");
  boost::asio::io_context& context = asio::native_context(*reactor);
  for (const bool may_block : {true, false}) {
    context.stop();
    int ran = 0;
    reactor->call_soon([&] { ++ran; });
    for (int step = 0; step < 3 && ran == 0; ++step) reactor->run_once(may_block);
    EXPECT_EQ(ran, 1) << (may_block ? "blocking" : "non-blocking") << " steps";
    EXPECT_FALSE(context.stopped());
  }
  bool fired = false;
  reactor->call_later(5ms, [&] { fired = true; });
  context.stop();
  const TimePoint start = Clock::now();
  while (!fired && Clock::now() - start < 5s) reactor->run_once(true);
  EXPECT_TRUE(fired) << "a timer armed on a context stopped since still fires";
}

TEST(AsioAdopt, RunDrivesTheHostsLoopToo) {
  boost::asio::io_context context;
  std::unique_ptr<Reactor> reactor = asio::adopt(context);
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    reactor->stop();
  });
  reactor->run();
  stopper.join();
}

// weft's timers inside the host's own io_context::run(): never early, and, while one is pending,
// they keep the host's run() going like any outstanding operation, so it returns exactly when
// the last has run. (WEFT_TIMER does not change Asio's timer; both values are checked anyway.)
TEST(AsioAdopt, WeftTimersRunNeverEarlyInsideTheHostsLoopAndKeepItRunningUntilDone) {
  for (const char* source : testing::kTimerSources) {
    boost::asio::io_context context(1);
    std::unique_ptr<Reactor> reactor;
    {
      testing::ScopedEnv timer("WEFT_TIMER", source);
      reactor = asio::adopt(context);
    }
    testing::RandomTimers timers(*reactor, 60, 9);
    context.run();
    EXPECT_TRUE(timers.all_ran()) << source << ": " << timers.ran() << " ran";
    EXPECT_EQ(timers.early(), 0) << source;
    reactor.reset();
  }
}

TEST(AsioAdopt, NativeContextOfAnotherBackendIsAUsageError) {
  for (const BackendInfo& info : available_backends()) {
    if (info.name == "asio") continue;
    std::unique_ptr<Reactor> other = make_reactor(info.name);
    EXPECT_THROW(asio::native_context(*other), UsageError);
  }
}

}  // namespace
}  // namespace weft
