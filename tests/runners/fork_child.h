// Runs checks in a real forked child: the child runs `body` and _exit()s with its status; the
// parent waits a bounded time (a hung child is killed and fails the test) and checks the status.
// The child's own checks report on stderr, which the test's output shows.
#ifndef WEFT_TESTS_RUNNERS_FORK_CHILD_H_
#define WEFT_TESTS_RUNNERS_FORK_CHILD_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "gtest/gtest.h"
#include "weft/core/errors.h"
#include "weft/core/time.h"

namespace weft::testing {

// Collects the child's failed checks; gtest's assertions mean nothing in the child.
class ChildChecks {
 public:
  void expect(bool ok, std::string_view what) {
    if (ok) return;
    std::fprintf(stderr, "forked child: FAILED: %.*s\n", static_cast<int>(what.size()),
                 what.data());
    ++failed_;
  }
  // `call` must throw UsageError whose message names fork().
  template <typename Call>
  void expect_fork_usage_error(Call&& call, std::string_view what) {
    try {
      call();
    } catch (const UsageError& e) {
      expect(std::string_view(e.what()).find("fork()") != std::string_view::npos,
             std::string(what) + ": the UsageError does not name fork(): " + e.what());
      return;
    } catch (const std::exception& e) {
      expect(false, std::string(what) + ": threw something else: " + e.what());
      return;
    }
    expect(false, std::string(what) + ": did not throw");
  }
  int status() const { return failed_ == 0 ? 0 : 1; }

 private:
  int failed_ = 0;
};

// Forks; the child runs `body` and exits with its status (uncaught exceptions count as
// failures). Fails the test if the child does not exit with 0 within `limit`.
inline void expect_child_succeeds(const std::function<int()>& body,
                                  std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  std::fflush(nullptr);  // nothing buffered is written twice
  const pid_t pid = fork();
  ASSERT_GE(pid, 0) << "fork failed";
  if (pid == 0) {
    int status = 3;
    try {
      status = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "forked child: unexpected exception: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "forked child: unexpected non-standard exception\n");
    }
    _exit(status);  // no atexit handlers, no static destructors: only what the test did
  }
  int status = 0;
  pid_t done = 0;
  const TimePoint deadline = Clock::now() + limit;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the forked child hung; killed after " << limit.count() << " ms";
  }
  ASSERT_EQ(done, pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the forked child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the forked child's checks failed (see its stderr)";
}

}  // namespace weft::testing

#endif  // WEFT_TESTS_RUNNERS_FORK_CHILD_H_
