// The weft work every adoption test runs inside a host's own native loop: a task that sleeps and
// then waits for an fd, and a call from another thread. check() verifies that all of it ran, in
// order, on the host's thread; the test checks the host's side (its own timer's cadence, its
// loop left clean).
#ifndef WEFT_TESTS_TESTING_ADOPTED_WORK_H_
#define WEFT_TESTS_TESTING_ADOPTED_WORK_H_

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weft/core/deferred.h"
#include "weft/core/fd_wait.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"

namespace weft::testing {

class AdoptedWork {
 public:
  // Starts the work on `reactor`; `on_done` (on the host's thread) should end the host's loop.
  AdoptedWork(Reactor& reactor, std::function<void()> on_done) : host_(std::this_thread::get_id()) {
    using namespace std::chrono_literals;
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0);
    finished_ = spawn(reactor, work());
    finished_.add_done(std::move(on_done));
    other_ = std::thread([this, &reactor] {
      std::this_thread::sleep_for(10ms);
      reactor.call_from_thread([this] {
        on_host();
        done_.push_back("cross-thread");
      });
      std::this_thread::sleep_for(30ms);
      EXPECT_EQ(write(fds_[1], "x", 1), 1);
    });
  }
  ~AdoptedWork() {
    if (other_.joinable()) other_.join();
    close(fds_[0]);
    close(fds_[1]);
  }

  // After the host's loop returned.
  void check() {
    other_.join();
    EXPECT_TRUE(finished_.called());
    // The call (at 10 ms) usually comes before the sleep's end (30 ms), but a loaded machine can
    // reorder the two; the fd is written only after the call, and waited on after the sleep.
    ASSERT_EQ(done_.size(), 3u);
    EXPECT_THAT(std::vector<std::string>(done_.begin(), done_.begin() + 2),
                ::testing::UnorderedElementsAre("cross-thread", "sleep"));
    EXPECT_EQ(done_.back(), "fd");
    EXPECT_FALSE(off_thread_) << "a weft callback ran off the host's thread";
  }

 private:
  Task<void> work() {
    using namespace std::chrono_literals;
    co_await sleep(30ms);
    on_host();
    done_.push_back("sleep");
    co_await wait_readable(fds_[0]);
    on_host();
    char c;
    EXPECT_EQ(read(fds_[0], &c, 1), 1);
    done_.push_back("fd");
  }
  void on_host() {
    if (std::this_thread::get_id() != host_) off_thread_ = true;
  }

  const std::thread::id host_;
  int fds_[2] = {-1, -1};
  std::vector<std::string> done_;
  std::atomic<bool> off_thread_{false};
  Deferred<void> finished_;
  std::thread other_;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_TESTING_ADOPTED_WORK_H_
