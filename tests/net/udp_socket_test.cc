// UdpSocket: datagrams with their sender, truncation reported, connected sockets, cancellation.
#include "weft/net/udp_socket.h"

#include <array>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/net/net_testing.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"

namespace weft::net {
namespace {

using namespace std::chrono_literals;

class UdpSocketTest : public weft::testing::NetTest {};

TEST_P(UdpSocketTest, DatagramsArriveWithTheirSender) {
  run([]() -> Task<void> {
    for (const Address& where : {Address::loopback_v4(0), Address::loopback_v6(0)}) {
      UdpSocket a = UdpSocket::bind(where);
      UdpSocket b = UdpSocket::bind(where);
      Datagram sent = co_await a.send_to("hello", b.local_address());
      EXPECT_EQ(sent.size, 5u);
      std::array<char, 64> buffer{};
      Datagram got = co_await b.receive_from(buffer);
      EXPECT_EQ(std::string(buffer.data(), got.size), "hello");
      EXPECT_EQ(got.from, a.local_address());
      EXPECT_FALSE(got.truncated);
      co_await b.send_to("back", got.from);
      got = co_await a.receive_from(buffer);
      EXPECT_EQ(std::string(buffer.data(), got.size), "back");
    }
  }());
}

TEST_P(UdpSocketTest, ADatagramLargerThanTheBufferIsReportedTruncated) {
  run([]() -> Task<void> {
    UdpSocket a = UdpSocket::bind(Address::loopback_v4(0));
    UdpSocket b = UdpSocket::bind(Address::loopback_v4(0));
    co_await a.send_to(std::string(1000, 'z'), b.local_address());
    co_await a.send_to("next", b.local_address());
    std::array<char, 10> small{};
    Datagram got = co_await b.receive_from(small);
    EXPECT_TRUE(got.truncated);
    EXPECT_EQ(got.size, 1000u);
    EXPECT_EQ(std::string(small.data(), 10), std::string(10, 'z'));
    got = co_await b.receive_from(small);  // the rest of the big one is gone, not delivered here
    EXPECT_FALSE(got.truncated);
    EXPECT_EQ(std::string(small.data(), got.size), "next");
  }());
}

TEST_P(UdpSocketTest, ConnectedSocketSendsToItsPeerAndSeesRefusal) {
  run([]() -> Task<void> {
    UdpSocket server = UdpSocket::bind(Address::loopback_v4(0));
    UdpSocket client = UdpSocket::bind(Address::loopback_v4(0));
    client.connect(server.local_address());
    co_await client.send("via connect");
    std::array<char, 32> buffer{};
    Datagram got = co_await server.receive_from(buffer);
    EXPECT_EQ(std::string(buffer.data(), got.size), "via connect");
    // Nobody listens any more: the ICMP error comes back on the connected socket.
    const Address gone = server.local_address();
    server.close();
    UdpSocket lonely = UdpSocket::bind(Address::loopback_v4(0));
    lonely.connect(gone);
    co_await lonely.send("anyone?");
    try {
      co_await sleep(20ms);
      (void)co_await lonely.receive_from(buffer);
      ADD_FAILURE() << "no refusal reported";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::connection_refused);
    }
  }());
}

TEST_P(UdpSocketTest, CancelledReceiveLosesNoDatagram) {
  run([]() -> Task<void> {
    UdpSocket a = UdpSocket::bind(Address::loopback_v4(0));
    UdpSocket b = UdpSocket::bind(Address::loopback_v4(0));
    std::array<char, 16> buffer{};
    Deferred<Datagram> receive =
        spawn(*Reactor::current(), [](UdpSocket& s, std::span<char> buf) -> Task<Datagram> {
          co_return co_await s.receive_from(buf);
        }(b, buffer));
    co_await sleep(2ms);
    receive.cancel();
    try {
      (void)co_await receive;
      ADD_FAILURE();
    } catch (const Cancelled&) {
    }
    co_await a.send_to("kept", b.local_address());
    Datagram got = co_await b.receive_from(buffer);
    EXPECT_EQ(std::string(buffer.data(), got.size), "kept");
  }());
}

INSTANTIATE_TEST_SUITE_P(Backends, UdpSocketTest,
                         ::testing::ValuesIn(weft::testing::backend_names()),
                         weft::testing::param_name);

}  // namespace
}  // namespace weft::net
