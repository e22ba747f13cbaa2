// What only the threaded runner promises: the loop keeps running between calls
// on its own thread, many threads may submit and wait at once, and shutdown
// leaves nobody waiting.
#include "weft/runners/threaded_runner.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runners/failing_backend.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"

namespace weft {
namespace {

using namespace std::chrono_literals;

class ThreadedRunnerTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<ThreadedRunner> runner_ = std::make_unique<ThreadedRunner>(GetParam());
};

Task<int> add_later(int a, int b, Duration delay) {
  co_await sleep(delay);
  co_return a + b;
}

TEST_P(ThreadedRunnerTest, BackgroundWorkProgressesBetweenCalls) {
  auto ticks = std::make_shared<std::atomic<int>>(0);
  auto ticker = [](std::shared_ptr<std::atomic<int>> ticks) -> Task<void> {
    for (;;) {
      co_await sleep(2ms);
      ++*ticks;
    }
  };
  auto start = [&]() -> Task<void> {
    spawn(*Reactor::current(), ticker(ticks));
    co_return;
  };
  runner_->run(start());
  const int before = ticks->load();
  std::this_thread::sleep_for(60ms);  // no call in progress
  EXPECT_GT(ticks->load(), before) << "the ticker ran while the caller was away";
  EXPECT_EQ(runner_->run(add_later(1, 2, 1ms)), 3) << "and the runner still serves calls";
}

TEST_P(ThreadedRunnerTest, TasksRunOnTheLoopThreadNotTheCaller) {
  auto where = []() -> Task<std::thread::id> { co_return std::this_thread::get_id(); };
  EXPECT_EQ(runner_->run(where()), runner_->loop_thread());
  EXPECT_NE(runner_->loop_thread(), std::this_thread::get_id());
}

TEST_P(ThreadedRunnerTest, EightThreadsSubmitAThousandTasksEachAndEveryResultIsRight) {
  constexpr int kThreads = 8;
  constexpr int kTasks = 1000;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<EventualResult<int>> results;
      results.reserve(kTasks);
      for (int i = 0; i < kTasks; ++i) {
        results.push_back(runner_->submit(add_later(t * kTasks, i, i % 3 == 0 ? 1ms : 0ms)));
      }
      for (int i = 0; i < kTasks; ++i) {
        if (results[i].wait(30s) != t * kTasks + i) ++wrong;
      }
      // run() from many threads at once, too.
      for (int i = 0; i < 50; ++i) {
        if (runner_->run(add_later(t, i, 0ms), 30s) != t + i) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_P(ThreadedRunnerTest, ManyThreadsWaitOnOneResult) {
  EventualResult<int> result = runner_->submit(add_later(40, 2, 10ms));
  std::atomic<int> right{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 8; ++i) {
    waiters.emplace_back([&] {
      if (result.wait() == 42) ++right;
    });
  }
  for (std::thread& waiter : waiters) waiter.join();
  EXPECT_EQ(right.load(), 8);
}

TEST_P(ThreadedRunnerTest, CancelFromAnotherThreadWhileOthersWait) {
  EventualResult<int> result = runner_->submit(add_later(1, 1, 1h));
  std::thread waiter([&] { EXPECT_THROW(result.wait(), Cancelled); });
  std::this_thread::sleep_for(5ms);
  std::thread([&] { result.cancel(); }).join();
  waiter.join();
  EXPECT_NE(result.original_failure(), nullptr);
}

TEST_P(ThreadedRunnerTest, WaitingOnTheLoopThreadIsRefused) {
  EventualResult<int> other = runner_->submit(add_later(1, 1, 1h));
  auto waits_inside = [](EventualResult<int> other) -> Task<std::string> {
    try {
      other.wait(1s);
    } catch (const UsageError& e) {
      co_return e.what();
    }
    co_return "no error";
  };
  EXPECT_THAT(runner_->run(waits_inside(other)), ::testing::HasSubstr("would deadlock"));
  // A callback on the loop thread is refused the same way.
  std::atomic<bool> refused{false};
  std::atomic<bool> done{false};
  runner_->reactor().call_from_thread([&] {
    try {
      other.wait();
    } catch (const UsageError&) {
      refused = true;
    }
    done = true;
  });
  while (!done) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(refused);
  other.cancel();
}

TEST_P(ThreadedRunnerTest, ShutdownFailsPendingWorkAndWakesEveryWaiter) {
  std::vector<EventualResult<int>> pending;
  for (int i = 0; i < 20; ++i) pending.push_back(runner_->submit(add_later(i, i, 1h)));
  std::atomic<int> shut_down{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] {
      try {
        pending[i].wait();
      } catch (const RunnerShutDown&) {
        ++shut_down;
      }
    });
  }
  std::this_thread::sleep_for(10ms);
  runner_.reset();
  for (std::thread& waiter : waiters) waiter.join();
  EXPECT_EQ(shut_down.load(), 4);
  for (const EventualResult<int>& result : pending) {
    EXPECT_TRUE(result.ready());
    EXPECT_THROW(result.wait(), RunnerShutDown);
    result.cancel();  // harmless after shutdown
  }
}

TEST_P(ThreadedRunnerTest, AStopOfTheReactorDoesNotStopTheRunner) {
  runner_->reactor().stop();
  EXPECT_EQ(runner_->run(add_later(2, 2, 1ms), 10s), 4);
}

TEST_P(ThreadedRunnerTest, AStopFromInsideATaskDoesNotEndTheRun) {
  auto stops = []() -> Task<int> {
    Reactor::current()->stop();
    co_await sleep(5ms);
    co_return 9;
  };
  EXPECT_EQ(runner_->run(stops(), 10s), 9);
  EXPECT_EQ(runner_->run(add_later(2, 2, 1ms), 10s), 4);
}

TEST_P(ThreadedRunnerTest, AFailedNativeStepIsReportedAndTheLoopGoesOn) {
  // An exception out of the native loop must not escape the loop thread (which would end the
  // process): it goes to the reactor's error handler, and the runner keeps serving.
  auto failures = std::make_shared<testing::Failures>();
  ThreadedRunner runner(testing::failing_backend(GetParam(), failures));
  ::testing::internal::CaptureStderr();
  failures->left = 2;
  runner.reactor().call_from_thread([] {});  // a wake-up, so that the loop steps again
  EXPECT_EQ(runner.run(add_later(1, 2, 1ms), 10s), 3);
  for (int i = 0; i < 5000 && failures->thrown < 2; ++i) {
    EXPECT_EQ(runner.run(add_later(1, 1, 0ms), 10s), 2);
  }
  EXPECT_EQ(failures->thrown.load(), 2);
  EXPECT_EQ(runner.run(add_later(2, 3, 1ms), 10s), 5);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, ::testing::HasSubstr("injected backend failure"));
  EXPECT_THAT(err, ::testing::HasSubstr("threaded runner's loop"));
}

TEST_P(ThreadedRunnerTest, UnknownBackendFailsInTheConstructorListingTheNames) {
  try {
    ThreadedRunner bad("no-such-backend");
    FAIL() << "no exception";
  } catch (const UnknownNameError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(GetParam()));
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ThreadedRunnerTest,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
