// Test helpers shared by every suite parameterized over backends.
//
// backend_names() is read from the registry at run time, so the conformance
// suites run on every backend (and every libevent mechanism) compiled in, with
// no backend named in a test.
#ifndef WEFT_TESTS_TESTING_BACKENDS_H_
#define WEFT_TESTS_TESTING_BACKENDS_H_

#include <dirent.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "weft/core/backend_registry.h"
#include "weft/core/reactor.h"
#include "gtest/gtest.h"

namespace weft::testing {

inline std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const BackendInfo& info : available_backends()) names.push_back(info.name);
  return names;
}

// gtest parameter names allow [A-Za-z0-9_] only: "libevent:poll" ->
// "libevent_poll".
inline std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// Open file descriptors of this process, to check that a test leaked none.
inline int open_fd_count() {
  int count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++count;
    closedir(dir);
  }
  return count;
}

// Runs `reactor` until `done()` holds, failing the test (instead of hanging)
// after `limit`.
inline bool run_until(Reactor& reactor, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = Clock::now() + limit;
  TimerHandle alarm = reactor.call_at(deadline, [] {});
  while (!done() && Clock::now() < deadline) reactor.run_once(true);
  alarm.cancel();
  EXPECT_TRUE(done()) << "timed out after " << limit.count() << " ms";
  return done();
}

// A fixture for one reactor per test, checked clean at the end (STYLE: close
// and verify, like libuv's MAKE_VALGRIND_HAPPY): nothing pending, no fd leaked.
class ReactorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fds_before_ = open_fd_count();
    reactor_ = make_reactor(GetParam());
  }
  void TearDown() override {
    if (reactor_ != nullptr && !pending_allowed_) {
      const Reactor::Counts counts = reactor_->counts();
      EXPECT_EQ(counts.ready, 0u) << "call_soon callbacks left";
      EXPECT_EQ(counts.timers, 0u) << "timers left";
      EXPECT_EQ(counts.watches, 0u) << "watchers left";
      EXPECT_EQ(counts.tasks, 0u) << "tasks left";
      EXPECT_EQ(counts.from_thread, 0u) << "cross-thread callbacks left";
    }
    reactor_.reset();
    EXPECT_EQ(open_fd_count(), fds_before_) << "file descriptors leaked";
  }
  // For tests that end with work pending on purpose (it is released by the
  // destructor).
  void allow_pending() { pending_allowed_ = true; }
  Reactor& reactor() { return *reactor_; }
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return weft::testing::run_until(*reactor_, done, limit);
  }

  std::unique_ptr<Reactor> reactor_;

 private:
  int fds_before_ = 0;
  bool pending_allowed_ = false;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_TESTING_BACKENDS_H_
