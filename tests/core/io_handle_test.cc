// IoHandle: one registration per descriptor for the handle's life. Written once, run on every
// backend.
#include "weft/core/io_handle.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/errors.h"

namespace weft {
namespace {

using IoHandleTest = testing::ReactorTest;

struct Pair {
  int fd[2] = {-1, -1};
  Pair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fd), 0); }
  ~Pair() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
};

TEST_P(IoHandleTest, ReportsReadinessOnlyForTheEventsOfInterest) {
  Pair pair;
  std::vector<IoEvents> seen;
  IoHandle handle(reactor(), pair.fd[0], [&](IoEvents ready) { seen.push_back(ready); });
  EXPECT_EQ(reactor().counts().io_handles, 1u);
  EXPECT_EQ(handle.fd(), pair.fd[0]);
  handle.set_interest(IoEvents::kReadable);
  reactor().run_once(false);
  EXPECT_TRUE(seen.empty()) << "nothing to read yet";
  ASSERT_EQ(write(pair.fd[1], "x", 1), 1);
  ASSERT_TRUE(run_until([&] { return !seen.empty(); }));
  EXPECT_EQ(seen.back(), IoEvents::kReadable);
  // Level-triggered: still readable, reported again.
  const std::size_t before = seen.size();
  ASSERT_TRUE(run_until([&] { return seen.size() > before; }));
  // No interest: no callbacks, but the registration stays.
  handle.set_interest(IoEvents::kNone);
  const std::size_t paused = seen.size();
  for (int i = 0; i < 5; ++i) reactor().run_once(false);
  EXPECT_EQ(seen.size(), paused);
  handle.set_interest(IoEvents::kBoth);
  // Both kinds of readiness arrive, together or (on some backends) in separate calls.
  IoEvents both = IoEvents::kNone;
  ASSERT_TRUE(run_until([&] {
    for (std::size_t i = paused; i < seen.size(); ++i) both = both | seen[i];
    return both == IoEvents::kBoth;
  }));
  handle.reset();
  EXPECT_EQ(reactor().counts().io_handles, 0u);
}

TEST_P(IoHandleTest, DoesNotDuplicateTheDescriptor) {
  Pair pair;
  Pair other;
  // A backend may open a descriptor of its own on its first watch; count after that.
  IoHandle first(reactor(), other.fd[0], [](IoEvents) {});
  first.set_interest(IoEvents::kReadable);
  reactor().run_once(false);
  const int before = testing::open_fd_count();
  IoHandle handle(reactor(), pair.fd[0], [](IoEvents) {});
  handle.set_interest(IoEvents::kReadable);
  reactor().run_once(false);
  EXPECT_EQ(testing::open_fd_count(), before);
}

TEST_P(IoHandleTest, MayBeDestroyedFromItsOwnCallback) {
  Pair pair;
  auto handle = std::make_unique<IoHandle>();
  int calls = 0;
  *handle = IoHandle(reactor(), pair.fd[0], [&](IoEvents) {
    ++calls;
    handle.reset();
  });
  handle->set_interest(IoEvents::kWritable);
  ASSERT_TRUE(run_until([&] { return handle == nullptr; }));
  for (int i = 0; i < 3; ++i) reactor().run_once(false);
  EXPECT_EQ(calls, 1);
}

TEST_P(IoHandleTest, SecondHandleOnOneFdIsAUsageErrorAndTheFdIsReusableAfterReset) {
  Pair pair;
  IoHandle first(reactor(), pair.fd[0], [](IoEvents) {});
  EXPECT_THROW(IoHandle(reactor(), pair.fd[0], [](IoEvents) {}), UsageError);
  first.reset();
  IoHandle again(reactor(), pair.fd[0], [](IoEvents) {});
  again.set_interest(IoEvents::kReadable);
}

TEST_P(IoHandleTest, MovedHandleKeepsTheRegistration) {
  Pair pair;
  int calls = 0;
  IoHandle first(reactor(), pair.fd[0], [&](IoEvents) { ++calls; });
  IoHandle second = std::move(first);
  EXPECT_FALSE(first);
  second.set_interest(IoEvents::kWritable);
  ASSERT_TRUE(run_until([&] { return calls > 0; }));
  EXPECT_EQ(reactor().counts().io_handles, 1u);
}

TEST_P(IoHandleTest, InterestTakenAwayAndGivenBackManyTimesReportsEachTimeWithNoNewDescriptor) {
  Pair pair;
  int calls = 0;
  IoHandle handle(reactor(), pair.fd[0], [&](IoEvents ready) {
    EXPECT_EQ(ready, IoEvents::kWritable);
    ++calls;
  });
  handle.set_interest(IoEvents::kWritable);
  ASSERT_TRUE(run_until([&] { return calls == 1; }));
  const int descriptors = testing::open_fd_count();
  for (int round = 2; round <= 200; ++round) {
    handle.set_interest(IoEvents::kNone);
    reactor().run_once(false);
    ASSERT_EQ(calls, round - 1) << "reported with no interest";
    handle.set_interest(IoEvents::kWritable);  // the socket is writable all along
    ASSERT_TRUE(run_until([&] { return calls == round; }));
  }
  EXPECT_EQ(testing::open_fd_count(), descriptors);
}

TEST_P(IoHandleTest, NoInterestOnAHungUpSocketLetsTheLoopSleep) {
  // Readiness that holds (a peer's hang-up) must stop waking the loop once interest is gone, not
  // only stop reaching the callback: otherwise every blocking iteration returns at once.
  Pair pair;
  close(std::exchange(pair.fd[1], -1));
  int calls = 0;
  IoHandle handle(reactor(), pair.fd[0], [&](IoEvents) {
    ++calls;
    handle.set_interest(IoEvents::kNone);  // from inside the callback
  });
  handle.set_interest(IoEvents::kReadable);
  ASSERT_TRUE(run_until([&] { return calls == 1; }));
  bool fired = false;
  reactor().call_later(std::chrono::milliseconds(30), [&] { fired = true; });
  int iterations = 0;
  while (!fired && iterations < 1000) {
    reactor().run_once(true);
    ++iterations;
  }
  EXPECT_TRUE(fired);
  EXPECT_LE(iterations, 10) << "the loop kept waking for a handle with no interest";
  EXPECT_EQ(calls, 1);
}

TEST_P(IoHandleTest, AHandleMadeAfterTheNumberWasReusedWatchesTheNewFile) {
  // A backend may keep its registration while the interest is kNone; the handle's end must
  // release it, or the number's next file would be watched through the old registration.
  auto first = std::make_unique<Pair>();
  const int number = first->fd[0];
  {
    IoHandle handle(reactor(), number, [](IoEvents) {});
    handle.set_interest(IoEvents::kReadable);
    reactor().run_once(false);
    handle.set_interest(IoEvents::kNone);
    reactor().run_once(false);
  }
  first.reset();  // closes the number; the next socketpair takes it again
  Pair second;
  ASSERT_EQ(second.fd[0], number) << "the number was not reused; nothing to test";
  int calls = 0;
  IoHandle handle(reactor(), number, [&](IoEvents ready) {
    EXPECT_EQ(ready, IoEvents::kReadable);
    ++calls;
  });
  handle.set_interest(IoEvents::kReadable);
  reactor().run_once(false);
  EXPECT_EQ(calls, 0);
  ASSERT_EQ(write(second.fd[1], "x", 1), 1);
  EXPECT_TRUE(run_until([&] { return calls > 0; }, std::chrono::seconds(5)));
}

TEST_P(IoHandleTest, AReactorDestroyedBeforeItsHandlesEndsAndTheHandlesAreInertAfter) {
  // Against the rules (a handle must not outlive its reactor), but it must neither hang nor
  // crash: the reactor releases the registrations, the handles only free memory later.
  Pair active;
  Pair idle;
  int calls = 0;
  IoHandle reading(reactor(), active.fd[0], [&](IoEvents) { ++calls; });
  IoHandle paused(reactor(), idle.fd[0], [&](IoEvents) { ++calls; });
  reading.set_interest(IoEvents::kReadable);
  paused.set_interest(IoEvents::kWritable);
  ASSERT_TRUE(run_until([&] { return calls > 0; }));
  paused.set_interest(IoEvents::kNone);
  IoHandle never_armed(reactor(), idle.fd[1], [](IoEvents) {});
  reactor_.reset();
  EXPECT_THROW(reading.set_interest(IoEvents::kNone), UsageError);
  EXPECT_THROW(paused.set_interest(IoEvents::kReadable), UsageError);
  reading.reset();
  paused.reset();
  never_armed.reset();
}

TEST_P(IoHandleTest, RegularFileIsRefusedWithASystemErrorOrWorks) {
  // epoll refuses regular files; poll and select accept them. Either way: no crash, no leak.
  char path[] = "/tmp/weft-io-handle-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  try {
    IoHandle handle(reactor(), fd, [](IoEvents) {});
    handle.set_interest(IoEvents::kReadable);
    reactor().run_once(false);
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find("fd"), std::string::npos) << error.what();
  }
  close(fd);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, IoHandleTest, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
