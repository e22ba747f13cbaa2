// A host that runs its own libevent event_base, with a weft reactor adopted onto it.
#include "weft/backends/libevent/libevent_backend.h"

#include <event2/event.h>
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

struct HostTicker {
  event* timer = nullptr;
  std::vector<TimePoint> ticks;
};

TEST(LibeventAdopt, WeftWorkCompletesInsideTheHostsLoopAndTheHostKeepsItsCadence) {
  event_base* base = event_base_new();
  ASSERT_NE(base, nullptr);
  HostTicker ticker;
  ticker.timer = event_new(
      base, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* arg) {
        static_cast<HostTicker*>(arg)->ticks.push_back(Clock::now());
      },
      &ticker);
  const timeval every_5ms{0, 5000};
  event_add(ticker.timer, &every_5ms);

  std::unique_ptr<Reactor> reactor = libevent::adopt(base);
  EXPECT_EQ(libevent::native_base(*reactor), base);
  testing::AdoptedWork work(*reactor, [&] { event_base_loopbreak(base); });
  const TimePoint start = Clock::now();
  event_base_dispatch(base);  // the host's own loop; weft runs inside it
  const Duration elapsed = Clock::now() - start;
  work.check();
  // The host's 5 ms timer kept ticking while weft worked (at least 40 ms). A count, not a rate: a
  // loaded machine may stretch any tick, but a loop blocked by weft would tick once at most.
  EXPECT_GE(ticker.ticks.size(), 2u)
      << "in " << std::chrono::duration<double, std::milli>(elapsed).count() << " ms";

  // Destroying the reactor leaves the base usable and holding only the host's event.
  reactor.reset();
  EXPECT_EQ(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 1);
  event_del(ticker.timer);
  event_free(ticker.timer);
  EXPECT_EQ(event_base_dispatch(base), 1) << "no events left: dispatch returns at once";
  event_base_free(base);
}

TEST(LibeventAdopt, AnIdleAdoptedReactorDoesNotKeepTheHostsLoopAlive) {
  event_base* base = event_base_new();
  std::unique_ptr<Reactor> reactor = libevent::adopt(base);
  bool ran = false;
  reactor->call_soon([&] { ran = true; });
  event_base_dispatch(base);  // returns once weft has nothing left to do
  EXPECT_TRUE(ran);
  reactor.reset();
  event_base_free(base);
}

TEST(LibeventAdopt, RunDrivesTheHostsLoopToo) {
  event_base* base = event_base_new();
  std::unique_ptr<Reactor> reactor = libevent::adopt(base);
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    reactor->stop();
  });
  reactor->run();
  stopper.join();
  reactor.reset();
  event_base_free(base);
}

// weft's timers inside the host's own event_base_dispatch(): never early, and, while one is
// pending, they keep the host's loop running like any event (the timerfd's event is added only
// while armed), so the dispatch returns exactly when the last has run. On every method.
TEST(LibeventAdopt, WeftTimersRunNeverEarlyInsideTheHostsLoopAndKeepItRunningUntilDone) {
  std::vector<std::string> methods;
  for (const char** m = event_get_supported_methods(); m != nullptr && *m != nullptr; ++m) {
    methods.emplace_back(*m);
  }
  for (const std::string& method : methods) {
    for (const char* source : testing::kTimerSources) {
      event_config* config = event_config_new();
      for (const std::string& other : methods) {
        if (other != method) event_config_avoid_method(config, other.c_str());
      }
      event_base* base = event_base_new_with_config(config);
      event_config_free(config);
      ASSERT_NE(base, nullptr) << method;
      std::unique_ptr<Reactor> reactor;
      {
        testing::ScopedEnv timer("WEFT_TIMER", source);
        reactor = libevent::adopt(base);
      }
      testing::RandomTimers timers(*reactor, 60, 8);
      event_base_dispatch(base);
      EXPECT_TRUE(timers.all_ran()) << method << ", " << source << ": " << timers.ran() << " ran";
      EXPECT_EQ(timers.early(), 0) << method << ", " << source;
      reactor.reset();
      event_base_free(base);
    }
  }
}

TEST(LibeventAdopt, NativeBaseOfAnotherBackendIsAUsageError) {
  for (const BackendInfo& info : available_backends()) {
    if (info.name.starts_with("libevent")) continue;
    std::unique_ptr<Reactor> other = make_reactor(info.name);
    EXPECT_THROW(libevent::native_base(*other), UsageError);
  }
}

}  // namespace
}  // namespace weft
