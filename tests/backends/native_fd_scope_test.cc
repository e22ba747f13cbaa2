// NativeFdScope's view of the standard descriptors (backends/detail/native_fd_scope.h): each
// closed number is seen, an open one in any state (a pipe whose writer is gone) is not taken
// for closed, and a scope holds exactly the closed numbers while it lives.
#include "backends/detail/native_fd_scope.h"

#include <fcntl.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/core/run_in_child.h"

namespace weft::backends::detail {
namespace {

using testing::ChildResult;
using testing::run_in_child;

TEST(NativeFdScope, AgreesWithAskingEachStandardDescriptor) {
  // Whatever this process was started with (a test runner may close stdin).
  bool all_open = true;
  for (int fd = 0; fd <= STDERR_FILENO; ++fd) all_open = all_open && fcntl(fd, F_GETFD) >= 0;
  EXPECT_EQ(NativeFdScope::standard_fds_open(), all_open);
}

TEST(NativeFdScope, SeesEachClosedStandardDescriptor) {
  for (int fd = 0; fd <= STDERR_FILENO; ++fd) {
    const ChildResult result = run_in_child([fd] {
      close(fd);
      return NativeFdScope::standard_fds_open() ? 1 : 0;
    });
    EXPECT_TRUE(result.exited_with(0)) << "fd " << fd << ": " << result.describe();
  }
}

TEST(NativeFdScope, TakesAHungUpPipeOnStdinForOpen) {
  // poll() reports POLLHUP for it, which is not "closed".
  const ChildResult result = run_in_child([] {
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) return 2;
    close(pipe_fds[1]);
    if (dup2(pipe_fds[0], STDIN_FILENO) < 0) return 3;
    close(pipe_fds[0]);
    return NativeFdScope::standard_fds_open() ? 0 : 1;
  });
  EXPECT_TRUE(result.exited_with(0)) << result.describe();
}

TEST(NativeFdScope, HoldsTheClosedStandardNumbersWhileItLives) {
  const ChildResult result = run_in_child([] {
    close(STDIN_FILENO);
    close(STDERR_FILENO);
    {
      NativeFdScope scope(0, "test");
      if (fcntl(STDIN_FILENO, F_GETFD) < 0 || fcntl(STDERR_FILENO, F_GETFD) < 0) return 1;
      const int next = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (next <= STDERR_FILENO) return 2;  // a new descriptor lands above 2
      close(next);
    }
    // Given back: the numbers are free again.
    if (fcntl(STDIN_FILENO, F_GETFD) >= 0 || fcntl(STDERR_FILENO, F_GETFD) >= 0) return 3;
    return 0;
  });
  EXPECT_TRUE(result.exited_with(0)) << result.describe();
}

}  // namespace
}  // namespace weft::backends::detail
