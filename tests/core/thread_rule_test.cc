// The loop-thread rule: in builds with thread checks (debug), a loop-thread-only call made from
// another thread while the reactor runs is a UsageError, not an abort. Run on every backend.
#include <future>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ThreadRule = testing::ReactorTest;

TEST_P(ThreadRule, LoopThreadOnlyCallFromAnotherThreadThrowsUsageErrorWhenChecked) {
#ifdef NDEBUG
  GTEST_SKIP() << "thread checks are compiled in debug builds only (WEFT_THREAD_CHECKS)";
#else
  std::promise<void> running;
  reactor().call_soon([&] { running.set_value(); });
  std::thread loop([&] { reactor().run(); });
  running.get_future().wait();
  EXPECT_THROW(reactor().call_soon([] {}), UsageError);
  EXPECT_THROW(reactor().call_later(1ms, [] {}), UsageError);
  EXPECT_THROW(reactor().watch_signal(SIGUSR1, [] {}), UsageError);
  reactor().stop();
  loop.join();
#endif
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ThreadRule, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
