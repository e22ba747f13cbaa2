// Deadlines at the ends of time, on every backend in the registry: a deadline at
// TimePoint::min() is simply due, Duration::max() and TimePoint::max() mean never, and neither
// end overflows a conversion or keeps a near timer from firing.
#include "weft/core/reactor.h"

#include <chrono>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ReactorTimeExtremes = testing::ReactorTest;

TEST_P(ReactorTimeExtremes, DeadlineAtTimePointMinFiresAtOnce) {
  bool fired = false;
  reactor().call_at(TimePoint::min(), [&] { fired = true; });
  EXPECT_TRUE(run_until([&] { return fired; }, 5s));
}

TEST_P(ReactorTimeExtremes, DeadlinesJustAfterTheClocksEpochFireAtOnce) {
  int fired = 0;
  reactor().call_at(TimePoint(Duration(1)), [&] { ++fired; });
  reactor().call_at(TimePoint(Duration(-1)), [&] { ++fired; });
  EXPECT_TRUE(run_until([&] { return fired == 2; }, 5s));
}

TEST_P(ReactorTimeExtremes, NeverDeadlinesNeitherFireNorStallAOneMillisecondTimer) {
  int never = 0;
  TimerHandle a = reactor().call_later(Duration::max(), [&] { ++never; });
  TimerHandle b = reactor().call_at(TimePoint::max(), [&] { ++never; });
  TimerHandle c = reactor().call_at(TimePoint::max() - 1ns, [&] { ++never; });
  TimerHandle d = reactor().call_later(Duration::max() / 2, [&] { ++never; });
  bool soon = false;
  const TimePoint start = Clock::now();
  reactor().call_later(1ms, [&] { soon = true; });
  EXPECT_TRUE(run_until([&] { return soon; }, 5s));
  EXPECT_LT(Clock::now() - start, 2s) << "the 1 ms timer was held up";
  // A few more steps: nothing far away became due by a wrapped-around conversion.
  for (int i = 0; i < 5; ++i) reactor().run_once(false);
  EXPECT_EQ(never, 0);
  for (TimerHandle* handle : {&a, &b, &c, &d}) EXPECT_TRUE(handle->cancel());
}

TEST_P(ReactorTimeExtremes, PastAndNeverDeadlinesTogetherStillLetTheRightOnesFire) {
  bool past = false;
  bool near = false;
  bool never = false;
  TimerHandle far = reactor().call_at(TimePoint::max(), [&] { never = true; });
  reactor().call_at(TimePoint::min(), [&] { past = true; });
  reactor().call_later(1ms, [&] { near = true; });
  EXPECT_TRUE(run_until([&] { return past && near; }, 5s));
  EXPECT_FALSE(never);
  EXPECT_TRUE(far.cancel());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReactorTimeExtremes,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
