// Test helpers for scenarios that must run in a process of their own: a low descriptor limit,
// closed standard streams, fork. The parent never waits unboundedly: a child that hangs is
// killed and the test fails.
#ifndef WEFT_TESTS_CORE_RUN_IN_CHILD_H_
#define WEFT_TESTS_CORE_RUN_IN_CHILD_H_

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace weft::testing {

// How a child ended.
struct ChildResult {
  bool timed_out = false;  // killed after the limit
  int status = 0;          // waitpid() status

  bool exited_with(int code) const {
    return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == code;
  }
  std::string describe() const {
    if (timed_out) return "the child hung and was killed";
    if (WIFEXITED(status)) return "the child exited with " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
      return "the child died of signal " + std::to_string(WTERMSIG(status)) + " (" +
             strsignal(WTERMSIG(status)) + ")";
    }
    return "the child ended oddly";
  }
};

// Waits for `pid`, killing it after `limit`.
inline ChildResult wait_for_child(pid_t pid, std::chrono::milliseconds limit) {
  ChildResult result;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const pid_t r = waitpid(pid, &result.status, WNOHANG);
    if (r == pid) return result;
    if (r < 0 && errno != EINTR) {
      ADD_FAILURE() << "waitpid: " << strerror(errno);
      return result;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &result.status, 0);
      result.timed_out = true;
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Runs `body` in a forked child, which _exit()s with its result (an escaping exception: 99,
// after printing it). Only async-signal-safe work is guaranteed in a child of a multithreaded
// process; the tests' own processes have one thread when they fork.
inline ChildResult run_in_child(const std::function<int()>& body,
                                std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  std::fflush(nullptr);  // nothing buffered is written twice
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << strerror(errno);
    return {};
  }
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: unexpected exception: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "child: unexpected non-standard exception\n");
    }
    std::fflush(nullptr);
    _exit(code);
  }
  return wait_for_child(pid, limit);
}

// The variable that tells a re-executed test program which scenario to run (see
// run_fresh_process()).
inline constexpr const char* kFreshProcessVariable = "WEFT_TEST_FRESH_PROCESS";

// Runs `scenario` with `argument` in a fresh process: a child re-executes this test program,
// filtered to the current test, with kFreshProcessVariable set; a gtest environment that the
// test file registers at static initialisation (so before main()'s own) runs the scenario and
// exits. Unlike run_in_child(), everything a process does from its start (static
// initialisation, the first use of each native library) happens under what `prepare` set up
// in the child before the exec: closed standard streams, a low descriptor limit.
inline ChildResult run_fresh_process(const std::string& scenario, const std::string& argument,
                                     const std::function<void()>& prepare,
                                     std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string filter =
      std::string("--gtest_filter=") + test->test_suite_name() + "." + test->name();
  const std::string request = scenario + "=" + argument;
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << strerror(errno);
    return {};
  }
  if (pid == 0) {
    setenv(kFreshProcessVariable, request.c_str(), 1);
    prepare();
    execl("/proc/self/exe", "/proc/self/exe", filter.c_str(), static_cast<char*>(nullptr));
    _exit(98);
  }
  return wait_for_child(pid, limit);
}

// Open descriptors of this process, excluding the one used to list them.
inline int open_fds() {
  int count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++count;
    }
    closedir(dir);
    --count;
  }
  return count;
}

// Sets the soft RLIMIT_NOFILE so that exactly `free_slots` descriptor numbers are free below
// it. Returns false if the hard limit does not allow it.
inline bool leave_free_descriptors(int free_slots) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  rlim_t bound = 0;
  int free_seen = 0;
  for (;; ++bound) {
    if (bound > 1 << 20) return false;
    if (fcntl(static_cast<int>(bound), F_GETFD) < 0) {
      if (free_seen == free_slots) break;
      ++free_seen;
    }
  }
  if (limit.rlim_max != RLIM_INFINITY && bound > limit.rlim_max) return false;
  limit.rlim_cur = bound;
  return setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

}  // namespace weft::testing

#endif  // WEFT_TESTS_CORE_RUN_IN_CHILD_H_
