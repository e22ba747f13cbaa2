// fork() and reactors, on every backend in the registry (core/reactor.h, "fork"): in a child,
// an inherited reactor can only be destroyed, and destroying it changes nothing the parent
// sees; any other use throws UsageError; a new reactor works. Children exit with a status and
// are killed (failing the test) if they hang.
#include "weft/core/reactor.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "tests/core/run_in_child.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"
#include "weft/core/io_handle.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::ChildResult;

// A pipe, closed at scope exit.
struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { EXPECT_EQ(pipe(fd), 0); }
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
};

// A reactor watching a pipe's read end and SIGUSR1, with the registrations made live in the
// native loop (one step), as a parent would have it when it forks.
class ReactorFork : public testing::ReactorTest {
 protected:
  void SetUp() override {
    ReactorTest::SetUp();
    reader_ = reactor().watch_readable(pipe_.fd[0], [this] {
      char byte;
      if (read(pipe_.fd[0], &byte, 1) == 1) ++reads_;
    });
    signal_ = reactor().watch_signal(SIGUSR1, [this] { ++signals_; });
    reactor().run_once(false);
  }
  void TearDown() override {
    reader_.cancel();
    signal_.cancel();
    ReactorTest::TearDown();
  }

  Pipe pipe_;
  Watch reader_;
  Watch signal_;
  int reads_ = 0;
  int signals_ = 0;
};

// Each use of an inherited reactor in a child, by name.
std::vector<std::pair<const char*, std::function<void(Reactor&, int)>>> uses() {
  return {
      {"run", [](Reactor& r, int) { r.run(); }},
      {"run_once", [](Reactor& r, int) { r.run_once(false); }},
      {"call_soon", [](Reactor& r, int) { r.call_soon([] {}); }},
      {"call_later", [](Reactor& r, int) { r.call_later(1ms, [] {}); }},
      {"call_from_thread", [](Reactor& r, int) { r.call_from_thread([] {}); }},
      {"watch_readable", [](Reactor& r, int fd) { r.watch_readable(fd, [] {}); }},
      {"watch_signal", [](Reactor& r, int) { r.watch_signal(SIGUSR2, [] {}); }},
      {"stop", [](Reactor& r, int) { r.stop(); }},
  };
}

TEST_P(ReactorFork, ChildDestroyingTheInheritedReactorLeavesTheParentsWatchesWorking) {
  const ChildResult child = testing::run_in_child([this] {
    reactor_.reset();  // must neither hang nor touch the parent's registrations
    return 0;
  });
  ASSERT_TRUE(child.exited_with(0)) << child.describe();
  ASSERT_EQ(write(pipe_.fd[1], "x", 1), 1);
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  EXPECT_TRUE(run_until([this] { return reads_ == 1 && signals_ == 1; }, 10s))
      << "reads " << reads_ << ", signals " << signals_;
}

TEST_P(ReactorFork, ChildDestroyingTheInheritedReactorLeavesTheParentsIdleIoHandleWorking) {
  // An IoHandle whose interest went back to none keeps its registration in the backend
  // (core/backend.h): the child's teardown must release the child's copy only.
  Pipe pipe;
  int ready = 0;
  IoHandle handle(reactor(), pipe.fd[0], [&](IoEvents) {
    char byte;
    if (read(pipe.fd[0], &byte, 1) == 1) ++ready;
  });
  handle.set_interest(IoEvents::kReadable);
  reactor().run_once(false);
  handle.set_interest(IoEvents::kNone);
  reactor().run_once(false);
  const ChildResult child = testing::run_in_child([this] {
    reactor_.reset();
    return 0;
  });
  ASSERT_TRUE(child.exited_with(0)) << child.describe();
  handle.set_interest(IoEvents::kReadable);
  ASSERT_EQ(write(pipe.fd[1], "x", 1), 1);
  EXPECT_TRUE(run_until([&] { return ready == 1; }, 10s));
}

TEST_P(ReactorFork, ChildDestroyingTheInheritedReactorAfterUsingItStillLeavesTheParentAlone) {
  // The failed uses must not have half-changed anything the teardown then undoes.
  const ChildResult child = testing::run_in_child([this] {
    for (const auto& [name, use] : uses()) {
      try {
        use(reactor(), pipe_.fd[1]);
      } catch (const UsageError&) {
      }
    }
    reactor_.reset();
    return 0;
  });
  ASSERT_TRUE(child.exited_with(0)) << child.describe();
  ASSERT_EQ(write(pipe_.fd[1], "x", 1), 1);
  EXPECT_TRUE(run_until([this] { return reads_ == 1; }, 10s));
}

TEST_P(ReactorFork, AnyUseOfAnInheritedReactorInTheChildIsAUsageError) {
  const ChildResult child = testing::run_in_child([this] {
    int failures = 0;
    for (const auto& [name, use] : uses()) {
      try {
        use(reactor(), pipe_.fd[1]);
        std::fprintf(stderr, "%s: no exception in the child\n", name);
        ++failures;
      } catch (const UsageError&) {
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s instead of UsageError\n", name, e.what());
        ++failures;
      }
    }
    reactor_.reset();
    return failures;
  });
  EXPECT_TRUE(child.exited_with(0)) << child.describe();
}

TEST_P(ReactorFork, ChildCanMakeANewReactorAndRunIt) {
  const ChildResult child = testing::run_in_child([this] {
    reactor_.reset();
    std::unique_ptr<Reactor> fresh = make_reactor(GetParam());
    Pipe pipe;
    bool timer = false;
    bool readable = false;
    bool signalled = false;
    fresh->call_later(1ms, [&] { timer = true; });
    Watch reader = fresh->watch_readable(pipe.fd[0], [&] { readable = true; });
    Watch signal = fresh->watch_signal(SIGUSR2, [&] { signalled = true; });
    if (write(pipe.fd[1], "x", 1) != 1 || kill(getpid(), SIGUSR2) != 0) return 2;
    const bool done = testing::run_until(
        *fresh, [&] { return timer && readable && signalled; }, std::chrono::seconds(10));
    reader.cancel();
    signal.cancel();
    return done ? 0 : 1;
  });
  EXPECT_TRUE(child.exited_with(0)) << child.describe();
  // The parent's reactor is untouched by all of that.
  ASSERT_EQ(write(pipe_.fd[1], "x", 1), 1);
  EXPECT_TRUE(run_until([this] { return reads_ == 1; }, 10s));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReactorFork, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
