// The Backend contract (core/backend.h) checked on each registered backend directly, without a
// Reactor in between: the reactor clamps what it hands over (no deadline further than an hour,
// no past deadline from inside a turn), so a backend's own conversions are only reached here.
// Written once; instantiated for every name in the registry.
#include "weft/core/backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backend_step.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"

namespace weft {
namespace {

using namespace std::chrono_literals;

// Records what the backend reports.
class RecordingHooks final : public LoopHooks {
 public:
  void run_turn() override { ++turns; }
  void timer_expired() override { ++timers; }
  void fd_ready(int fd, IoEvents events) override { ready.emplace_back(fd, events); }

  int turns = 0;
  int timers = 0;
  std::vector<std::pair<int, IoEvents>> ready;
};

class BackendContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fds_before_ = testing::open_fd_count();
    backend_ = find_backend(GetParam()).factory(hooks_);
  }
  void TearDown() override {
    backend_.reset();
    EXPECT_EQ(testing::open_fd_count(), fds_before_) << "file descriptors leaked";
  }

  // One blocking step, ended by a wake() from another thread after `limit` if nothing else
  // ends it: a test fails instead of hanging. Returns how long it took.
  Duration step_blocking(Duration limit = 5s) { return testing::step_blocking(*backend_, limit); }

  // Steps until the timer expires, at most `limit`.
  bool step_until_timer(Duration limit = 5s) {
    const TimePoint deadline = Clock::now() + limit;
    while (hooks_.timers == 0 && Clock::now() < deadline) step_blocking(deadline - Clock::now());
    return hooks_.timers > 0;
  }

  RecordingHooks hooks_;
  std::unique_ptr<Backend> backend_;

 private:
  int fds_before_ = 0;
};

// ---- Timer conversions saturate ----

TEST_P(BackendContract, DeadlinesAtOrNearTimePointMinExpireWithoutWaiting) {
  for (TimePoint deadline : {TimePoint::min(), TimePoint::min() + 1ns, TimePoint(Duration(-1)),
                             TimePoint(), Clock::now() - 1h}) {
    hooks_.timers = 0;
    backend_->set_timer(deadline);
    const TimePoint start = Clock::now();
    EXPECT_TRUE(step_until_timer()) << "deadline " << deadline.time_since_epoch().count();
    EXPECT_LT(Clock::now() - start, 1s) << "deadline " << deadline.time_since_epoch().count();
    EXPECT_EQ(hooks_.timers, 1);
  }
}

TEST_P(BackendContract, FarDeadlinesNeverExpireAndTheNextArmingStillFires) {
  for (TimePoint deadline :
       {TimePoint::max(), TimePoint::max() - 1ns, add_saturating(Clock::now(), Duration::max()),
        Clock::now() + std::chrono::hours(24 * 365 * 200)}) {
    hooks_.timers = 0;
    backend_->set_timer(deadline);
    for (int i = 0; i < 3; ++i) backend_->run_once(false);
    EXPECT_EQ(hooks_.timers, 0) << "deadline " << deadline.time_since_epoch().count();
    // Replacing the far arming with a near one: it fires, soon.
    const TimePoint start = Clock::now();
    backend_->set_timer(start + 1ms);
    EXPECT_TRUE(step_until_timer());
    EXPECT_LT(Clock::now() - start, 2s);
  }
}

TEST_P(BackendContract, ClearingAFarTimerLeavesNothingToFire) {
  backend_->set_timer(TimePoint::max());
  backend_->clear_timer();
  backend_->set_timer(TimePoint::min());
  backend_->clear_timer();
  for (int i = 0; i < 3; ++i) backend_->run_once(false);
  EXPECT_EQ(hooks_.timers, 0);
}

// ---- One non-blocking step delivers what was ready before it ----

TEST_P(BackendContract, OneNonBlockingStepDeliversReadinessPresentBeforeIt) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  backend_->set_fd_interest(fds[0], IoEvents::kReadable);
  backend_->run_once(false);
  EXPECT_EQ(hooks_.ready.size(), 1u) << "right after the interest was set";
  // Again with a turn requested ahead of the readiness.
  hooks_.ready.clear();
  backend_->request_turn();
  backend_->run_once(false);
  EXPECT_EQ(hooks_.turns, 1);
  EXPECT_EQ(hooks_.ready.size(), 1u) << "with a turn queued ahead";
  backend_->set_fd_interest(fds[0], IoEvents::kNone);
  close(fds[0]);
  close(fds[1]);
}

// Hooks whose turn requests another turn, `requeue` times.
struct RequeuingHooks final : LoopHooks {
  Backend* backend = nullptr;
  int turns = 0;
  int requeue = 1 << 30;
  void run_turn() override {
    ++turns;
    if (requeue-- > 0) backend->request_turn();
  }
  void timer_expired() override {}
  void fd_ready(int, IoEvents) override {}
};

TEST_P(BackendContract, ATurnRequestedDuringAStepRunsInTheNextStep) {
  RequeuingHooks hooks;
  std::unique_ptr<Backend> backend = find_backend(GetParam()).factory(hooks);
  hooks.backend = backend.get();
  backend->request_turn();
  backend->run_once(false);
  EXPECT_EQ(hooks.turns, 1);
  backend->run_once(false);
  EXPECT_EQ(hooks.turns, 2);
}

// The same with blocking steps, the runners' kind: the turn requested during a step is queued,
// so the next step runs it without waiting (a step ended by the watchdog's wake would mean
// it was lost), and nothing of a step is left behind to end a later one early (Asio's
// backend decides after a step's first handler whether it needs an end marker at all).
TEST_P(BackendContract, BlockingStepsRunRequeuedTurnsAndThenSleep) {
  RequeuingHooks hooks;
  hooks.requeue = 3;
  std::unique_ptr<Backend> backend = find_backend(GetParam()).factory(hooks);
  hooks.backend = backend.get();
  backend->request_turn();
  for (int step = 1; step <= 4; ++step) {
    EXPECT_LT(testing::step_blocking(*backend, 5s), 5s) << "step " << step << " waited";
    EXPECT_EQ(hooks.turns, step);
  }
  EXPECT_GE(testing::step_blocking(*backend, 30ms), 30ms)
      << "the loop did not sleep: something of the earlier steps stayed queued";
}

// ---- Errors are std::system_error ----

// Sets read interest on `fd`: it works or throws std::system_error, never another type. The
// interest is removed again before any step (a closed fd in a select set fails the loop).
void expect_interest_set_or_system_error(Backend& backend, int fd) {
  try {
    backend.set_fd_interest(fd, IoEvents::kReadable);
    backend.set_fd_interest(fd, IoEvents::kNone);
  } catch (const std::system_error&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << "fd " << fd << ": not a std::system_error: " << typeid(e).name() << ": "
                  << e.what();
  }
}

TEST_P(BackendContract, UnwatchableFdsAreStdSystemErrors) {
  char path[] = "/tmp/weft-contract-XXXXXX";
  const int file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  expect_interest_set_or_system_error(*backend_, file);
  close(file);
  expect_interest_set_or_system_error(*backend_, file);  // now closed
  backend_->run_once(false);
  EXPECT_TRUE(hooks_.ready.empty());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendContract,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
