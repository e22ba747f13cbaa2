// The system resolver on virtual time (core/virtual_clock.h): a lookup runs getaddrinfo on a
// pool thread whose answer comes back through call_from_thread, so while it runs the loop must
// neither jump time ahead nor declare a deadlock (Reactor::expect_call_from_thread). On every
// backend.
#include "weft/net/resolver.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/virtual_clock.h"

namespace weft::net {
namespace {

using namespace std::chrono_literals;

Task<void> sleep_for(Duration delay) { co_await sleep(delay); }

class ResolverVirtualTime : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    previous_ = set_resolver(nullptr);  // the getaddrinfo pool
    auto clock = std::make_unique<VirtualClock>();
    clock_ = clock.get();
    reactor_ = make_reactor(GetParam(), std::move(clock));
    begin_ = clock_->now();
  }
  void TearDown() override {
    const Reactor::Counts counts = reactor_->counts();
    EXPECT_EQ(counts.tasks, 0u);
    EXPECT_EQ(counts.timers, 0u);
    reactor_.reset();
    set_resolver(previous_ == system_resolver() ? nullptr : previous_);
  }
  Duration t() const { return clock_->now() - begin_; }

  std::shared_ptr<Resolver> previous_;
  std::unique_ptr<Reactor> reactor_;
  VirtualClock* clock_ = nullptr;
  TimePoint begin_;
};

// Without the announcement the loop, idle with only a timer pending, jumped to the 1 h sleep at
// once, and then, with the lookup's task alone and nothing watched, failed it with Deadlock
// before the pool's thread had answered.
TEST_P(ResolverVirtualTime, LookupBesideALongSleepIsAnsweredBeforeTimeJumps) {
  for (int round = 0; round < 3; ++round) {
    Duration answered_at = Duration::max();
    auto lookup = [&]() -> Task<std::vector<Address>> {
      std::vector<Address> found = co_await resolve("localhost", "80");
      answered_at = t();
      co_return found;
    };
    const Duration started = t();
    Deferred<std::vector<Address>> found = spawn(*reactor_, lookup());
    Deferred<void> slept = spawn(*reactor_, sleep_for(1h));
    const auto real_begin = Clock::now();
    ASSERT_TRUE(testing::run_until(
        *reactor_, [&] { return found.called() && slept.called(); }, 20s));
    ASSERT_FALSE(found.failed()) << "the lookup failed (Deadlock?)";
    EXPECT_FALSE(found.value().empty());
    for (const Address& address : found.value()) EXPECT_EQ(address.port(), 80);
    EXPECT_EQ(answered_at, started) << "time moved while the lookup ran";
    EXPECT_NO_THROW(slept.check());
    EXPECT_EQ(t(), started + 1h) << "the sleep, exact";
    EXPECT_LT(Clock::now() - real_begin, 10s) << "and instant, once the lookup was answered";
  }
}

// An abandoned lookup ends the announcement at once: time jumps again although the pool's
// thread may still be inside getaddrinfo.
TEST_P(ResolverVirtualTime, AbandonedLookupLetsTimeJumpAgain) {
  Deferred<std::vector<Address>> found = spawn(*reactor_, resolve("localhost", "80"));
  // In the turn the task starts and hands the lookup to the pool, right after it: the answer
  // cannot have come back yet.
  reactor_->call_soon([&] { found.cancel(); });
  Deferred<void> slept = spawn(*reactor_, sleep_for(1h));
  ASSERT_TRUE(testing::run_until(
      *reactor_, [&] { return found.called() && slept.called(); }, 20s));
  EXPECT_THROW(found.check(), Cancelled);
  EXPECT_NO_THROW(slept.check());
  EXPECT_EQ(t(), 1h);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ResolverVirtualTime,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft::net
