// Readiness and what cannot be watched, on every backend in the registry.
//
// One non-blocking step (run_once(false)) delivers readiness that was there before it: a host
// that steps weft once per readiness it sees, then waits again, must not miss it. That holds
// right after the watch was added, with a turn queued ahead, and for signals, which reach the
// reactor as readiness of its signal pipe.
//
// An fd that cannot be watched is a std::system_error naming the caller's fd (not weft's
// duplicate of it), never another exception type and never the end of the process.
#include "weft/core/reactor.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <system_error>
#include <typeinfo>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/run_in_child.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::ChildResult;
using ::testing::HasSubstr;

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { EXPECT_EQ(pipe(fd), 0); }
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
};

using ReactorReadiness = testing::ReactorTest;

// ---- One step delivers what was ready before it ----

TEST_P(ReactorReadiness, FdReadyBeforeTheWatchWasAddedIsDeliveredByOneNonBlockingStep) {
  Pipe pipe;
  ASSERT_EQ(write(pipe.fd[1], "x", 1), 1);
  int calls = 0;
  Watch watch = reactor().watch_readable(pipe.fd[0], [&] { ++calls; });
  reactor().run_once(false);
  EXPECT_EQ(calls, 1);
  watch.cancel();
}

TEST_P(ReactorReadiness, FdBecomingReadyBetweenStepsIsDeliveredByTheNextNonBlockingStep) {
  Pipe pipe;
  int calls = 0;
  Watch watch = reactor().watch_readable(pipe.fd[0], [&] { ++calls; });
  reactor().run_once(false);
  ASSERT_EQ(calls, 0);
  ASSERT_EQ(write(pipe.fd[1], "x", 1), 1);
  reactor().run_once(false);
  EXPECT_EQ(calls, 1);
  watch.cancel();
}

TEST_P(ReactorReadiness, FdReadinessIsDeliveredByOneNonBlockingStepWithATurnQueuedAhead) {
  Pipe pipe;
  int calls = 0;
  bool turn = false;
  Watch watch = reactor().watch_readable(pipe.fd[0], [&] { ++calls; });
  reactor().run_once(false);
  ASSERT_EQ(write(pipe.fd[1], "x", 1), 1);
  reactor().call_soon([&] { turn = true; });
  reactor().run_once(false);
  EXPECT_TRUE(turn);
  EXPECT_EQ(calls, 1);
  watch.cancel();
}

TEST_P(ReactorReadiness, SignalRaisedRightAfterTheWatchWasAddedIsDeliveredByOneNonBlockingStep) {
  int calls = 0;
  Watch watch = reactor().watch_signal(SIGUSR1, [&] { ++calls; });
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  reactor().run_once(false);
  EXPECT_EQ(calls, 1);
  watch.cancel();
}

TEST_P(ReactorReadiness, SignalRaisedBetweenStepsIsDeliveredByOneNonBlockingStepWithATurnAhead) {
  int calls = 0;
  bool turn = false;
  Watch watch = reactor().watch_signal(SIGUSR1, [&] { ++calls; });
  reactor().run_once(false);
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  reactor().call_soon([&] { turn = true; });
  reactor().run_once(false);
  EXPECT_TRUE(turn);
  EXPECT_EQ(calls, 1);
  watch.cancel();
}

TEST_P(ReactorReadiness, ReadinessIsDeliveredByOneNonBlockingStepWhileACallbackRequeuesItself) {
  // A callback that re-queues itself has a turn queued at every step's start, ahead of the
  // native loop's poll of the kernel: the step must still poll and deliver what it finds.
  Pipe pipe;
  int turns = 0;
  bool requeue = true;
  std::function<void()> again = [&] {
    ++turns;
    if (requeue) reactor().call_soon(again);
  };
  int reads = 0;
  int signals = 0;
  Watch reader = reactor().watch_readable(pipe.fd[0], [&] {
    char byte;
    if (read(pipe.fd[0], &byte, 1) == 1) ++reads;
  });
  Watch signal = reactor().watch_signal(SIGUSR1, [&] { ++signals; });
  reactor().call_soon(again);
  for (int i = 0; i < 3; ++i) reactor().run_once(false);
  for (int round = 1; round <= 3; ++round) {
    ASSERT_EQ(write(pipe.fd[1], "x", 1), 1);
    reactor().run_once(false);
    EXPECT_EQ(reads, round) << "fd, round " << round;
    ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
    reactor().run_once(false);
    EXPECT_EQ(signals, round) << "signal, round " << round;
  }
  EXPECT_GE(turns, 9);
  requeue = false;
  reactor().run_once(false);
  reader.cancel();
  signal.cancel();
}

TEST_P(ReactorReadiness, ATurnRequestedDuringAStepWaitsForTheNextStep) {
  // The other side of the bound: a step delivers what was ready before it, not what it makes
  // ready, so a callback that re-queues itself runs once per step.
  int runs = 0;
  std::function<void()> again = [&] {
    ++runs;
    reactor().call_soon(again);
  };
  reactor().call_soon(again);
  reactor().run_once(false);
  EXPECT_EQ(runs, 1);
  reactor().run_once(false);
  EXPECT_EQ(runs, 2);
  allow_pending();
}

// ---- What cannot be watched ----

// Watches `fd` for reading: either it works (and then the watcher runs, `fd` being ready), or
// it throws std::system_error naming `fd`. Anything else is a failure.
void expect_watched_or_refused(Reactor& reactor, int fd) {
  try {
    bool ran = false;
    Watch watch = reactor.watch_readable(fd, [&] { ran = true; });
    EXPECT_TRUE(testing::run_until(
        reactor, [&] { return ran; }, 5s))
        << "watch on fd " << fd;
    watch.cancel();
  } catch (const std::system_error& e) {
    EXPECT_THAT(e.what(), ::testing::ContainsRegex(absl::StrCat("fd ", fd, "[^0-9]")))
        << "names the caller's fd";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a std::system_error: " << typeid(e).name() << ": " << e.what();
  }
}

TEST_P(ReactorReadiness, WatchingAClosedFdIsASystemErrorNamingIt) {
  int fd;
  {
    Pipe pipe;
    fd = pipe.fd[0];
  }
  try {
    reactor().watch_readable(fd, [] {});
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
    EXPECT_THAT(e.what(), HasSubstr(absl::StrCat("fd ", fd, ":")));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a std::system_error: " << typeid(e).name() << ": " << e.what();
  }
}

TEST_P(ReactorReadiness, WatchingARegularFileWorksOrIsASystemErrorNamingTheCallersFd) {
  // epoll refuses regular files; poll and select report them always ready.
  char path[] = "/tmp/weft-readiness-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  expect_watched_or_refused(reactor(), fd);
  close(fd);
}

// Raises the soft descriptor limit past FD_SETSIZE (in a child: it is process-wide).
bool allow_high_fds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  constexpr rlim_t kWanted = FD_SETSIZE + 256;
  if (limit.rlim_cur >= kWanted) return true;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < kWanted) return false;
  limit.rlim_cur = kWanted;
  return setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

TEST_P(ReactorReadiness, FdAtOrAboveFdSetSizeWorksOrIsASystemErrorNamingIt) {
  // select cannot watch such an fd (glibc aborts in FD_SET); the others can.
  reactor_.reset();  // made in the child instead
  const ChildResult child = testing::run_in_child([&] {
    if (!allow_high_fds()) return 77;
    std::unique_ptr<Reactor> reactor = make_reactor(GetParam());
    Pipe pipe;
    const int high = fcntl(pipe.fd[0], F_DUPFD_CLOEXEC, FD_SETSIZE + 10);
    if (high < FD_SETSIZE || write(pipe.fd[1], "x", 1) != 1) return 2;
    expect_watched_or_refused(*reactor, high);
    return ::testing::Test::HasFailure() ? 1 : 0;
  });
  if (child.exited_with(77)) GTEST_SKIP() << "the hard descriptor limit is below FD_SETSIZE";
  EXPECT_TRUE(child.exited_with(0)) << child.describe();
}

TEST_P(ReactorReadiness, LowFdWhoseDuplicateLandsAboveFdSetSizeWorksOrIsASystemErrorNamingIt) {
  // weft watches a duplicate of the caller's fd; with every number below FD_SETSIZE taken, the
  // duplicate of a low fd is high. The error must name the caller's fd, not the duplicate.
  reactor_.reset();
  const ChildResult child = testing::run_in_child([&] {
    if (!allow_high_fds()) return 77;
    std::unique_ptr<Reactor> reactor = make_reactor(GetParam());
    Pipe pipe;
    if (write(pipe.fd[1], "x", 1) != 1) return 2;
    for (int fd = fcntl(pipe.fd[1], F_DUPFD, 0); fd >= 0 && fd < FD_SETSIZE;
         fd = fcntl(pipe.fd[1], F_DUPFD, 0)) {
    }
    expect_watched_or_refused(*reactor, pipe.fd[0]);
    return ::testing::Test::HasFailure() ? 1 : 0;
  });
  if (child.exited_with(77)) GTEST_SKIP() << "the hard descriptor limit is below FD_SETSIZE";
  EXPECT_TRUE(child.exited_with(0)) << child.describe();
}

TEST_P(ReactorReadiness, MakingAReactorWithEveryLowNumberTakenWorksOrIsASystemError) {
  // libevent's select base puts its own notification fd in its fd_set when it is made.
  reactor_.reset();
  const ChildResult child = testing::run_in_child([&] {
    if (!allow_high_fds()) return 77;
    Pipe pipe;
    for (int fd = fcntl(pipe.fd[1], F_DUPFD, 0); fd >= 0 && fd < FD_SETSIZE;
         fd = fcntl(pipe.fd[1], F_DUPFD, 0)) {
    }
    try {
      std::unique_ptr<Reactor> reactor = make_reactor(GetParam());
      bool ran = false;
      reactor->call_later(1ms, [&] { ran = true; });
      return testing::run_until(
                 *reactor, [&] { return ran; }, 5s)
                 ? 0
                 : 3;
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "refused: %s\n", e.what());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "not a std::system_error: %s\n", e.what());
      return 4;
    }
  });
  if (child.exited_with(77)) GTEST_SKIP() << "the hard descriptor limit is below FD_SETSIZE";
  EXPECT_TRUE(child.exited_with(0)) << child.describe();
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReactorReadiness,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
