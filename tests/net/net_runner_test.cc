// The net layer under every runner (blocking, threaded, host) on every backend: a round trip
// run to completion, and a runner timeout that cancels a pending read and leaks nothing.
#include <array>
#include <atomic>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "tests/net/net_testing.h"
#include "tests/testing/runners.h"
#include "weft/core/errors.h"
#include "weft/core/spawn.h"
#include "weft/net/net.h"

namespace weft::net {
namespace {

using namespace std::chrono_literals;

class NetRunnerTest : public weft::testing::RunnerTest {};

Task<std::string> echo_once() {
  Listener listener = Listener::bind(Address::loopback_v4(0));
  Deferred<void> server = spawn(*Reactor::current(), serve(listener, [](Stream s) -> Task<void> {
    std::array<char, 64> buffer{};
    while (std::size_t n = co_await s.read_some(buffer)) {
      co_await s.write_all(std::string_view(buffer.data(), n));
    }
  }));
  Stream client = co_await connect("127.0.0.1", listener.local_address().port());
  co_await client.write_all("round trip");
  std::array<char, 10> got{};
  co_await client.read_exactly(got);
  server.cancel();
  try {
    co_await server;
  } catch (const Cancelled&) {
  }
  co_return std::string(got.data(), got.size());
}

TEST_P(NetRunnerTest, RoundTripRunsToCompletion) {
  EXPECT_EQ(runner().run(echo_once(), 20s), "round trip");
}

// Sets its flag when the coroutine frame holding it is destroyed: a parameter outlives every local
// of the frame, and is destroyed even if the task is cancelled before its body ever ran.
class EndFlag {
 public:
  explicit EndFlag(std::atomic<bool>& flag) : flag_(&flag) {}
  EndFlag(EndFlag&& other) noexcept : flag_(std::exchange(other.flag_, nullptr)) {}
  EndFlag& operator=(EndFlag&&) = delete;
  ~EndFlag() {
    if (flag_ != nullptr) flag_->store(true);
  }

 private:
  std::atomic<bool>* flag_;
};

Task<void> read_forever(EndFlag /*ended*/) {
  Listener listener = Listener::bind(Address::loopback_v4(0));
  Deferred<Stream> accepted = spawn(*Reactor::current(), [](Listener& l) -> Task<Stream> {
    co_return co_await l.accept();
  }(listener));
  Stream client = co_await connect(listener.local_address());
  Stream server = co_await std::move(accepted);
  std::array<char, 8> buffer{};
  (void)co_await server.read_some(buffer);  // the peer never writes
}

TEST_P(NetRunnerTest, TimeoutCancelsAPendingReadAndClosesItsStreams) {
  runner().run(weft::testing::warm_up(), 20s);
  const int before = weft::testing::open_fd_count();
  std::atomic<bool> ended{false};
  EXPECT_THROW(runner().run(read_forever(EndFlag(ended)), 100ms), TimeoutError);
  // The threaded and host runners throw at once and finish the cancellation on their loop (the
  // task may not even have started yet): wait for the task's own end, not for a descriptor count.
  for (int i = 0; i < 1000 && !ended.load(); ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(ended.load()) << "the cancelled task did not end within 5 s";
  EXPECT_EQ(weft::testing::open_fd_count(), before);
}

INSTANTIATE_TEST_SUITE_P(Runners, NetRunnerTest,
                         ::testing::ValuesIn(weft::testing::runner_and_backend_names()),
                         weft::testing::runner_param_name);

}  // namespace
}  // namespace weft::net
