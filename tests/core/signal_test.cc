// Signals shared by several reactors of any backends, and the dispositions weft leaves behind.
// One suite instantiated over every ordered pair of backend names: the bug this class covers
// ("only the backend that installed its handler last receives it"; "unwatching restores
// SIG_DFL, so the next signal kills the process") only shows across backends.
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"
#include "weft/core/reactor.h"

namespace weft {
namespace {

using namespace std::chrono_literals;

using BackendPair = std::tuple<std::string, std::string>;

class SharedSignal : public ::testing::TestWithParam<BackendPair> {
 protected:
  void SetUp() override {
    fds_before_ = testing::open_fd_count();
    first_ = make_reactor(std::get<0>(GetParam()));
    second_ = make_reactor(std::get<1>(GetParam()));
  }
  void TearDown() override {
    first_.reset();
    second_.reset();
    EXPECT_EQ(testing::open_fd_count(), fds_before_) << "file descriptors leaked";
  }
  // Steps both reactors until `done` holds (10 s at most).
  bool step_until(const std::function<bool()>& done) {
    const auto deadline = Clock::now() + 10s;
    while (!done() && Clock::now() < deadline) {
      if (first_ != nullptr) first_->run_once(false);
      if (second_ != nullptr) second_->run_once(false);
      std::this_thread::sleep_for(200us);
    }
    return done();
  }

  std::unique_ptr<Reactor> first_;
  std::unique_ptr<Reactor> second_;
  int fds_before_ = 0;
};

volatile sig_atomic_t g_program_handler_calls = 0;
void program_handler(int) { g_program_handler_calls = g_program_handler_calls + 1; }

TEST_P(SharedSignal, EveryReactorOfEitherBackendReceivesIt) {
  int first = 0;
  int second = 0;
  Watch a = first_->watch_signal(SIGUSR1, [&] { ++first; });
  Watch b = second_->watch_signal(SIGUSR1, [&] { ++second; });
  ASSERT_EQ(raise(SIGUSR1), 0);
  ASSERT_TRUE(step_until([&] { return first == 1 && second == 1; }))
      << "first " << first << ", second " << second;
  a.cancel();
  b.cancel();
}

TEST_P(SharedSignal, OneReactorLeavingKeepsTheOtherWatchingAndTheProcessAlive) {
  int first = 0;
  int second = 0;
  Watch a = first_->watch_signal(SIGUSR2, [&] { ++first; });
  Watch b = second_->watch_signal(SIGUSR2, [&] { ++second; });
  a.cancel();
  // SIGUSR2's default action would kill the process: weft's handler must still be there.
  ASSERT_EQ(raise(SIGUSR2), 0);
  ASSERT_TRUE(step_until([&] { return second == 1; }));
  EXPECT_EQ(first, 0);
  b.cancel();
}

TEST_P(SharedSignal, ThePreviousDispositionComesBackWhenTheLastWatchLeaves) {
  struct sigaction mine {};
  mine.sa_handler = program_handler;
  sigemptyset(&mine.sa_mask);
  struct sigaction saved {};
  ASSERT_EQ(sigaction(SIGUSR1, &mine, &saved), 0);
  g_program_handler_calls = 0;

  int weft_calls = 0;
  Watch a = first_->watch_signal(SIGUSR1, [&] { ++weft_calls; });
  Watch b = second_->watch_signal(SIGUSR1, [&] { ++weft_calls; });
  ASSERT_EQ(raise(SIGUSR1), 0);
  ASSERT_TRUE(step_until([&] { return weft_calls == 2; }));
  EXPECT_EQ(g_program_handler_calls, 0) << "weft owns the signal while it watches it";
  b.cancel();
  a.cancel();
  ASSERT_EQ(raise(SIGUSR1), 0);
  EXPECT_EQ(g_program_handler_calls, 1) << "the program's own handler is back";

  struct sigaction now {};
  sigaction(SIGUSR1, nullptr, &now);
  EXPECT_EQ(now.sa_handler, &program_handler);
  sigaction(SIGUSR1, &saved, nullptr);
}

TEST_P(SharedSignal, IgnoredSigpipeStaysIgnoredAfterWeftWatchedIt) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  struct sigaction saved {};
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &saved), 0);
  int calls = 0;
  Watch a = first_->watch_signal(SIGPIPE, [&] { ++calls; });
  Watch b = second_->watch_signal(SIGPIPE, [&] { ++calls; });
  ASSERT_EQ(raise(SIGPIPE), 0);
  ASSERT_TRUE(step_until([&] { return calls == 2; }));
  a.cancel();
  b.cancel();
  struct sigaction now {};
  sigaction(SIGPIPE, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
  ASSERT_EQ(raise(SIGPIPE), 0);  // ignored: the process lives
  sigaction(SIGPIPE, &saved, nullptr);
}

TEST_P(SharedSignal, DestroyingAWatchingReactorRestoresTheDisposition) {
  struct sigaction before {};
  sigaction(SIGUSR1, nullptr, &before);
  int calls = 0;
  first_->watch_signal(SIGUSR1, [&] { ++calls; });
  second_->watch_signal(SIGUSR1, [&] { ++calls; });
  first_.reset();
  ASSERT_EQ(raise(SIGUSR1), 0);
  ASSERT_TRUE(step_until([&] { return calls == 1; }));
  second_.reset();
  struct sigaction after {};
  sigaction(SIGUSR1, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST_P(SharedSignal, ABurstOfSignalsReachesEachWatcherAtLeastOnceAndAtMostOncePerSignal) {
  int first = 0;
  int second = 0;
  Watch a = first_->watch_signal(SIGUSR1, [&] { ++first; });
  Watch b = second_->watch_signal(SIGUSR1, [&] { ++second; });
  for (int i = 0; i < 1000; ++i) raise(SIGUSR1);
  ASSERT_TRUE(step_until([&] { return first >= 1 && second >= 1; }));
  for (int i = 0; i < 5; ++i) {
    first_->run_once(false);
    second_->run_once(false);
  }
  EXPECT_LE(first, 1000);
  EXPECT_LE(second, 1000);
  a.cancel();
  b.cancel();
}

std::vector<BackendPair> backend_pairs() {
  std::vector<BackendPair> pairs;
  for (const std::string& a : testing::backend_names()) {
    for (const std::string& b : testing::backend_names()) pairs.emplace_back(a, b);
  }
  return pairs;
}

std::string pair_name(const ::testing::TestParamInfo<BackendPair>& info) {
  std::string name = std::get<0>(info.param) + "_and_" + std::get<1>(info.param);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(BackendPairs, SharedSignal, ::testing::ValuesIn(backend_pairs()),
                         pair_name);

}  // namespace
}  // namespace weft
