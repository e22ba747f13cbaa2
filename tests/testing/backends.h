// Test helpers shared by every suite parameterized over backends.
//
// backend_names() is read from the registry at run time, so the conformance
// suites run on every backend (and every libevent mechanism) compiled in, with
// no backend named in a test.
#ifndef WEFT_TESTS_TESTING_BACKENDS_H_
#define WEFT_TESTS_TESTING_BACKENDS_H_

#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/core/backend_registry.h"
#include "weft/core/reactor.h"
#include "weft/core/virtual_clock.h"

namespace weft::testing {

// $WEFT_TEST_PLUGINS (':'-separated plugin names, e.g. "glib") loads those plugins first, so
// that the suites also run on backends built out of tree (tests/packaging/). One that cannot be
// loaded is reported here; its instances are then missing, which the caller checks.
inline void load_test_plugins() {
  const char* plugins = std::getenv("WEFT_TEST_PLUGINS");
  if (plugins == nullptr) return;
  std::string list = plugins;
  for (std::size_t start = 0; start <= list.size();) {
    const std::size_t end = std::min(list.find(':', start), list.size());
    const std::string name = list.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    try {
      if (!load_backend_plugin(name)) {
        std::fprintf(stderr, "WEFT_TEST_PLUGINS: no plugin '%s'\n", name.c_str());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "WEFT_TEST_PLUGINS: %s\n", e.what());
    }
  }
}

inline std::vector<std::string> backend_names() {
  load_test_plugins();
  std::vector<std::string> names;
  for (const BackendInfo& info : available_backends()) names.push_back(info.name);
  return names;
}

// Virtual time (core/virtual_clock.h): a parameter "BACKEND@virtual" names a reactor on that
// backend with a VirtualClock (autojump on), so one suite runs its timing tests on real and on
// virtual time, the latter exact and instant. "@virtual" becomes "_virtual" in test names.
inline constexpr char kVirtualSuffix[] = "@virtual";
inline std::vector<std::string> virtual_backend_names() {
  std::vector<std::string> names;
  for (const std::string& name : backend_names()) names.push_back(name + kVirtualSuffix);
  return names;
}
inline bool names_virtual_time(const std::string& param) {
  const std::string suffix = kVirtualSuffix;
  return param.size() > suffix.size() &&
         param.compare(param.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline std::string backend_of(const std::string& param) {
  return names_virtual_time(param) ? param.substr(0, param.size() - sizeof kVirtualSuffix + 1)
                                   : param;
}
inline std::unique_ptr<Reactor> make_test_reactor(const std::string& param) {
  if (names_virtual_time(param)) {
    return make_reactor(backend_of(param), std::make_unique<VirtualClock>());
  }
  return make_reactor(param);
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
// after `limit` of real time. On steady_clock an alarm timer ends the wait; on a reactor's own
// clock (virtual time, where a test may wait for hours that pass at once, and where a loop
// waiting on an fd does not jump) a watchdog thread wakes the loop instead.
inline bool run_until(Reactor& reactor, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const TimePoint real_deadline = Clock::now() + limit;
  TimerHandle alarm;
  if (reactor.clock() == nullptr) alarm = reactor.call_at(real_deadline, [] {});
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread watchdog;
  if (reactor.clock() != nullptr) {
    watchdog = std::thread([&] {
      std::unique_lock lock(mu);
      if (!cv.wait_until(lock, real_deadline, [&] { return finished; })) {
        reactor.call_from_thread([] {});
      }
    });
  }
  while (!done() && Clock::now() < real_deadline) {
    reactor.run_once(true);
  }
  if (watchdog.joinable()) {
    {
      std::lock_guard lock(mu);
      finished = true;
    }
    cv.notify_one();
    watchdog.join();
    reactor.run_once(false);  // takes in the watchdog's call, if it made one
  }
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
    reactor_ = make_test_reactor(GetParam());
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
  // True for a reactor on virtual time (a "BACKEND@virtual" parameter).
  bool virtual_time() const { return names_virtual_time(GetParam()); }
  // Timing checks that hold on both clocks: `at` is no earlier than `expected` on real time,
  // and exactly it on virtual time.
  void expect_at(TimePoint at, TimePoint expected) const {
    if (virtual_time()) {
      EXPECT_EQ(at, expected);
    } else {
      EXPECT_GE(at, expected);
    }
  }
  void expect_elapsed(Duration elapsed, Duration expected) const {
    if (virtual_time()) {
      EXPECT_EQ(elapsed, expected);
    } else {
      EXPECT_GE(elapsed, expected);
    }
  }
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return weft::testing::run_until(*reactor_, done, limit);
  }
  // Runs turns until nothing is ready: every task spawned so far has started and waits on a
  // timer, an fd or a Deferred. Tests that cancel a task "while it waits" cancel after this, not
  // from a timer, which a loaded machine can fire before the task has even started.
  bool run_until_suspended() {
    return run_until([this] { return reactor_->counts().ready == 0; });
  }

  std::unique_ptr<Reactor> reactor_;

 private:
  int fds_before_ = 0;
  bool pending_allowed_ = false;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_TESTING_BACKENDS_H_
