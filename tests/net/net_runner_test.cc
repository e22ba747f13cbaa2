// The net layer under every runner (blocking, threaded, host) on every backend: a round trip
// run to completion, and a runner timeout that cancels a pending read and leaks nothing.
#include <array>

#include "weft/core/errors.h"
#include "weft/core/spawn.h"
#include "gtest/gtest.h"
#include "weft/net/net.h"
#include "tests/net/net_testing.h"
#include "tests/testing/runners.h"

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

Task<void> read_forever() {
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
  EXPECT_THROW(runner().run(read_forever(), 100ms), TimeoutError);
  // The threaded and host runners finish the cancellation on their loop; give them a moment.
  for (int i = 0; i < 200 && weft::testing::open_fd_count() != before; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(weft::testing::open_fd_count(), before);
}

INSTANTIATE_TEST_SUITE_P(Runners, NetRunnerTest,
                         ::testing::ValuesIn(weft::testing::runner_and_backend_names()),
                         weft::testing::runner_param_name);

}  // namespace
}  // namespace weft::net
