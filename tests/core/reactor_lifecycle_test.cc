// Making and destroying reactors under pressure, on every backend in the registry: many
// threads at once, descriptors running out, standard streams closed, from the start of a
// process or later in it. Nothing here may end the process: failures are exceptions
// (std::system_error, EMFILE when descriptors run out). Child processes run the scenarios
// that change process-wide state.
#include "weft/core/reactor.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>
#include <typeinfo>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/run_in_child.h"
#include "tests/testing/backends.h"
#include "weft/core/backend_registry.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::ChildResult;

// ---- Scenarios, run in child processes; each returns 0 or prints why not and returns a code
// of its own ----

// Makes a reactor on `name`, runs a timer, a readable watch and a signal watch to completion,
// and destroys it.
int exercise(const std::string& name) {
  std::unique_ptr<Reactor> reactor = make_reactor(name);
  int fds[2];
  if (pipe(fds) != 0) return 20;
  bool timer = false;
  bool readable = false;
  bool signalled = false;
  reactor->call_later(1ms, [&] { timer = true; });
  Watch reader = reactor->watch_readable(fds[0], [&] {
    char byte;
    if (read(fds[0], &byte, 1) == 1) readable = true;
  });
  Watch signal = reactor->watch_signal(SIGUSR2, [&] { signalled = true; });
  if (write(fds[1], "x", 1) != 1 || kill(getpid(), SIGUSR2) != 0) return 21;
  const bool done = testing::run_until(
      *reactor, [&] { return timer && readable && signalled; }, std::chrono::seconds(10));
  reader.cancel();
  signal.cancel();
  reactor.reset();
  close(fds[0]);
  close(fds[1]);
  if (!done) {
    std::fprintf(stderr, "%s: timer %d, readable %d, signal %d\n", name.c_str(), timer, readable,
                 signalled);
    return 22;
  }
  return 0;
}

// UBSan's dynamic type checks need a pipe the first time a thread meets a type (to probe the
// object's memory) and report a bad vptr when they cannot make one. Meet the types the
// scenarios below check while descriptors are left: the exceptions, their comparison with
// errc, and a reactor made, run and destroyed the way they do it.
void meet_types_while_descriptors_are_left(const std::string& name) {
  for (const std::error_category* category : {&std::generic_category(), &std::system_category()}) {
    try {
      throw std::system_error(EMFILE, *category, "warm-up");
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::too_many_files_open || e.what() == nullptr) std::abort();
    }
  }
  if (name.empty()) return;
  std::unique_ptr<Reactor> reactor = make_reactor(name);
  reactor->call_soon([] {});
  reactor->run_once(false);
}

// Lowers the descriptor limit so that 0, 1, 2, ... descriptors are free and makes a reactor
// each time: it works, or throws std::system_error with EMFILE, leaking nothing either way.
// Then, with the limit raised again, a reactor works. The backend has made a reactor in this
// process before (the warm-up), so what it keeps for the process's life (libuv's signal lock
// pipe) is already there.
int exhaust_and_recover(const std::string& name) {
  meet_types_while_descriptors_are_left(name);
  rlimit original{};
  if (getrlimit(RLIMIT_NOFILE, &original) != 0) return 30;
  rlimit raised = original;
  if (raised.rlim_cur < 1024) raised.rlim_cur = std::min<rlim_t>(1024, raised.rlim_max);
  int refused = 0;
  int made = 0;
  for (int free_slots = 0; free_slots <= 12; ++free_slots) {
    const int before = testing::open_fds();
    if (!testing::leave_free_descriptors(free_slots)) return 31;
    try {
      std::unique_ptr<Reactor> reactor = make_reactor(name);
      bool ran = false;
      reactor->call_soon([&] { ran = true; });
      reactor->run_once(false);
      if (!ran) return 32;
      ++made;
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::too_many_files_open) {
        std::fprintf(stderr, "%s with %d free: not EMFILE: %s\n", name.c_str(), free_slots,
                     e.what());
        return 33;
      }
      ++refused;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s with %d free: %s (%s), not std::system_error\n", name.c_str(),
                   free_slots, e.what(), typeid(e).name());
      return 34;
    }
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) return 35;
    if (const int after = testing::open_fds(); after != before) {
      std::fprintf(stderr, "%s with %d free: %d descriptors before, %d after\n", name.c_str(),
                   free_slots, before, after);
      return 36;
    }
  }
  if (refused == 0 || made == 0) {
    std::fprintf(stderr, "%s: refused %d times, made %d times\n", name.c_str(), refused, made);
    return 37;
  }
  return exercise(name);
}

// For a process started with two free descriptors: fewer than any backend needs, so making a
// reactor throws std::system_error (EMFILE) before the native library is touched (libuv's
// first loop used to abort() here, and libevent's start-up probe to exit(1) before main()).
// Then, with the limit raised, a reactor works.
int start_short_then_recover(const std::string& name) {
  meet_types_while_descriptors_are_left("");
  try {
    std::unique_ptr<Reactor> reactor = make_reactor(name);
    std::fprintf(stderr, "%s: made a reactor with two free descriptors\n", name.c_str());
    return 50;
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::too_many_files_open) {
      std::fprintf(stderr, "%s: not EMFILE: %s\n", name.c_str(), e.what());
      return 51;
    }
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 52;
  limit.rlim_cur = std::min<rlim_t>(1024, limit.rlim_max);
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return 53;
  return exercise(name);
}

// Closes the standard descriptors named by the bits of `which` (1: stdin, 2: stdout, 4:
// stderr).
void close_standard_fds(int which) {
  for (int fd = 0; fd <= 2; ++fd) {
    if (which & (1 << fd)) close(fd);
  }
}

// Makes a reactor, checks that the backend left the closed standard numbers closed (its own
// descriptors must not take them), then exercises it.
int work_with_standard_fds_closed(const std::string& name) {
  bool closed[3];
  for (int fd = 0; fd <= 2; ++fd) closed[fd] = fcntl(fd, F_GETFD) < 0;
  {
    std::unique_ptr<Reactor> reactor = make_reactor(name);
    for (int fd = 0; fd <= 2; ++fd) {
      if (closed[fd] && fcntl(fd, F_GETFD) >= 0) return 40 + fd;
    }
  }
  if (int r = exercise(name); r != 0) return r;
  return exercise(name);  // a second reactor, after the first one's teardown
}

// Runs a scenario in a re-executed test program (testing::run_fresh_process) before anything
// else of the test program does: registered at static initialisation, this environment is set
// up before main()'s own, which makes a reactor on every backend.
class FreshProcessScenarios : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* request = std::getenv(testing::kFreshProcessVariable);
    if (request == nullptr) return;
    const std::string text = request;
    const std::string scenario = text.substr(0, text.find('='));
    const std::string name = text.substr(text.find('=') + 1);
    int code = 97;
    try {
      if (scenario == "short") code = start_short_then_recover(name);
      if (scenario == "closed") code = work_with_standard_fds_closed(name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: unexpected exception: %s\n", name.c_str(), e.what());
      code = 96;
    }
    std::fflush(nullptr);
    std::exit(code);  // exit(), not _exit(): libraries' exit-time teardown runs too
  }
};
[[maybe_unused]] ::testing::Environment* const kFreshProcessScenarios =
    ::testing::AddGlobalTestEnvironment(new FreshProcessScenarios);

class ReactorLifecycle : public ::testing::TestWithParam<std::string> {};

// ---- Many threads ----

TEST_P(ReactorLifecycle, ReactorsAreMadeAndDestroyedOnManyThreadsAtOnce) {
  // libevent's event_get_supported_methods() reallocates a static array on every call: 8
  // threads x 4,000 creations (which used to call it once each) reliably corrupted the heap.
  // Sanitizers see such races without a crash, at ten times the cost per creation.
  constexpr int kThreads = 8;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr int kEach = 500;
#else
  constexpr int kEach = 4000;
#endif
  const int fds_before = testing::open_fd_count();
  std::atomic<int> made{0};
  std::atomic<int> turns{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        try {
          std::unique_ptr<Reactor> reactor = make_reactor(GetParam());
          ++made;
          if ((i + t) % 4 == 0) {  // some run a turn too
            reactor->call_soon([&] { ++turns; });
            reactor->run_once(false);
          }
        } catch (const std::exception& e) {
          if (failures++ == 0) ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(made.load(), kThreads * kEach);
  EXPECT_EQ(turns.load(), kThreads * kEach / 4);
  EXPECT_EQ(testing::open_fd_count(), fds_before) << "file descriptors leaked";
}

// ---- Descriptors running out ----

TEST_P(ReactorLifecycle, RunningOutOfDescriptorsIsASystemErrorAndLeaksNothing) {
  const ChildResult result = testing::run_in_child([&] { return exhaust_and_recover(GetParam()); });
  EXPECT_TRUE(result.exited_with(0)) << result.describe();
}

TEST_P(ReactorLifecycle, AProcessStartedWithFewDescriptorsReachesMainAndGetsSystemErrors) {
  // Two free descriptors at the start: fewer than any backend needs. Nothing may probe before
  // main() (it would die there), and making a reactor must then fail with EMFILE until the
  // limit is raised.
  const ChildResult result = testing::run_fresh_process("short", GetParam(), [] {
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = 5;
    setrlimit(RLIMIT_NOFILE, &limit);
  });
  EXPECT_TRUE(result.exited_with(0)) << result.describe();
}

// ---- Closed standard streams ----

TEST_P(ReactorLifecycle, ReactorsWorkWithStandardStreamsClosed) {
  for (int which : {1, 2, 4, 7}) {
    const ChildResult result = testing::run_in_child([&] {
      close_standard_fds(which);
      return work_with_standard_fds_closed(GetParam());
    });
    EXPECT_TRUE(result.exited_with(0))
        << "closed (1: stdin, 2: stdout, 4: stderr): " << which << ": " << result.describe();
  }
}

TEST_P(ReactorLifecycle, ReactorsWorkInAProcessStartedWithStandardStreamsClosed) {
  // A fresh process: the native libraries' first descriptors (libuv's process-wide signal
  // lock pipe among them) are made with the standard numbers free, and the process exits
  // normally (exit-time teardown included) afterwards. `weft demo >&-` used to abort.
  for (int which : {1, 2, 4, 7}) {
    const ChildResult result =
        testing::run_fresh_process("closed", GetParam(), [which] { close_standard_fds(which); });
    EXPECT_TRUE(result.exited_with(0))
        << "closed (1: stdin, 2: stdout, 4: stderr): " << which << ": " << result.describe();
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReactorLifecycle,
                         ::testing::ValuesIn(testing::backend_names()), testing::param_name);

}  // namespace
}  // namespace weft
