// connect() and resolve(): errors that say what failed, Happy Eyeballs (RFC 8305) against fake
// resolver answers, timeouts, and cancellation that abandons a lookup at once.
#include "weft/net/connect.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/net/net_testing.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/net/listener.h"
#include "weft/net/resolver.h"

namespace weft::net {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Answers from a table, after a delay; throws EAI_NONAME for names it does not know. Counts
// lookups so tests can check that literals skip it.
class FakeResolver : public Resolver {
 public:
  std::map<std::string, std::vector<Address>> answers;
  Duration delay = Duration::zero();
  int lookups = 0;

  Task<std::vector<Address>> resolve(std::string host, std::string service) override {
    ++lookups;
    if (delay > Duration::zero()) co_await sleep(delay);
    auto it = answers.find(host);
    if (it == answers.end()) {
      throw std::system_error(EAI_NONAME, resolver_category(), "weft: resolve " + host);
    }
    std::vector<Address> result;
    for (const Address& a : it->second) result.push_back(a.with_port(std::stoi(service)));
    co_return result;
  }
};

// A port on which connect attempts hang (SYNs dropped): a listener with a full backlog that
// never accepts.
class BlackHole {
 public:
  explicit BlackHole(const Address& where) {
    fd_ = socket(where.domain(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(bind(fd_, where.sockaddr(), where.length()), 0);
    EXPECT_EQ(listen(fd_, 0), 0);
    ::sockaddr_storage s{};
    socklen_t n = sizeof s;
    getsockname(fd_, reinterpret_cast<::sockaddr*>(&s), &n);
    address_ = Address::from_sockaddr(reinterpret_cast<::sockaddr*>(&s), n);
    for (int i = 0; i < 2; ++i) {  // fill the queue
      int c = socket(where.domain(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      (void)::connect(c, address_.sockaddr(), address_.length());
      fillers_.push_back(c);
    }
    usleep(20'000);
  }
  ~BlackHole() {
    for (int c : fillers_) close(c);
    close(fd_);
  }
  const Address& address() const { return address_; }

 private:
  int fd_ = -1;
  Address address_;
  std::vector<int> fillers_;
};

// A port where nothing listens (connect is refused at once).
std::uint16_t closed_port() {
  Listener probe = Listener::bind(Address::loopback_v4(0));
  return probe.local_address().port();
}

class ConnectTest : public weft::testing::NetTest {
 protected:
  void SetUp() override {
    NetTest::SetUp();
    fake_ = std::make_shared<FakeResolver>();
    set_resolver(fake_);
  }
  void TearDown() override {
    set_resolver(nullptr);
    NetTest::TearDown();
  }
  std::shared_ptr<FakeResolver> fake_;
};

TEST_P(ConnectTest, RefusedConnectionIsEconnrefusedNamingTheAddress) {
  const std::uint16_t port = closed_port();
  try {
    run(connect(Address::loopback_v4(port)));
    ADD_FAILURE() << "connected to a closed port";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(port)));
  }
}

TEST_P(ConnectTest, LiteralAddressesSkipTheResolver) {
  Listener listener = Listener::bind(Address::loopback_v6(0));
  const std::uint16_t port = listener.local_address().port();
  Stream s = run(connect("::1", port));
  EXPECT_TRUE(s.is_open());
  Stream s2 = run(connect("[::1]", port));
  EXPECT_EQ(fake_->lookups, 0);
  s.close();
  s2.close();
}

TEST_P(ConnectTest, EveryFailedAddressIsListedWithItsError) {
  const std::uint16_t port = closed_port();
  fake_->answers["two.test"] = {Address::loopback_v6(), Address::loopback_v4()};
  try {
    run(connect("two.test", port));
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);
    EXPECT_THAT(e.what(), HasSubstr("two.test:" + std::to_string(port)));
    EXPECT_THAT(e.what(), HasSubstr("[::1]:" + std::to_string(port) + ": Connection refused"));
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(port) + ": Connection refused"));
  }
}

TEST_P(ConnectTest, NextAttemptStartsAsSoonAsThePreviousFails) {
  Listener listener = Listener::bind(Address::loopback_v4(0));
  const std::uint16_t port = listener.local_address().port();
  // ::1 on this port is refused at once; the IPv4 attempt must not wait 250 ms for it.
  fake_->answers["fast.test"] = {Address::loopback_v6(), Address::loopback_v4()};
  std::vector<std::pair<Address, TimePoint>> attempts;
  ConnectOptions options;
  options.on_attempt = [&](const Address& a) { attempts.emplace_back(a, Clock::now()); };
  Stream s = run(connect("fast.test", port, options));
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].first.family(), Address::Family::kIPv6);
  EXPECT_EQ(attempts[1].first.family(), Address::Family::kIPv4);
  EXPECT_LT(attempts[1].second - attempts[0].second, 200ms);
  EXPECT_EQ(s.peer_address(), Address::loopback_v4(port));
}

TEST_P(ConnectTest, HappyEyeballsStartsTheNextFamilyAfterTheAttemptDelayAndTheFirstWins) {
  BlackHole hole(Address::loopback_v6(0));
  Listener listener = Listener::bind(Address::loopback_v4(hole.address().port()), ListenOptions{});
  fake_->answers["slow6.test"] = {Address::loopback_v6(), Address::loopback_v4()};
  std::vector<std::pair<Address, TimePoint>> attempts;
  ConnectOptions options;
  options.on_attempt = [&](const Address& a) { attempts.emplace_back(a, Clock::now()); };
  const TimePoint start = Clock::now();
  Stream s = run(connect("slow6.test", hole.address().port(), options));
  ASSERT_EQ(attempts.size(), 2u);
  const Duration gap = attempts[1].second - attempts[0].second;
  EXPECT_GE(gap, 250ms);  // lower bound only: a loaded machine may be later
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(s.peer_address().family(), Address::Family::kIPv4);
  s.close();
}

TEST_P(ConnectTest, FamiliesAreInterleaved) {
  const Address a6 = *Address::parse("[::1]:1"), b6 = *Address::parse("[::2]:1");
  const Address a4 = *Address::parse("10.0.0.1:1"), b4 = *Address::parse("10.0.0.2:1");
  EXPECT_EQ(interleave_families({a6, b6, a4, b4}), (std::vector<Address>{a6, a4, b6, b4}));
  EXPECT_EQ(interleave_families({a4, a6, b6}), (std::vector<Address>{a4, a6, b6}));
}

TEST_P(ConnectTest, TimesOutWithEtimedoutAndLeavesNothingOpen) {
  BlackHole hole(Address::loopback_v4(0));
  ConnectOptions options;
  options.timeout = 100ms;
  const TimePoint start = Clock::now();
  try {
    run(connect(hole.address(), options));
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::timed_out);
    EXPECT_THAT(e.what(), HasSubstr("timed out"));
  }
  EXPECT_GE(Clock::now() - start, 100ms);
}

TEST_P(ConnectTest, CancellingAConnectClosesEveryAttempt) {
  BlackHole hole(Address::loopback_v4(0));
  const int before = weft::testing::open_fd_count();
  Deferred<Stream> pending = spawn(reactor(), connect(hole.address()));
  spin(30ms);  // in flight
  pending.cancel();
  run_until([&] { return pending.called(); });
  EXPECT_THROW(pending.check(), Cancelled);
  EXPECT_EQ(weft::testing::open_fd_count(), before);
}

TEST_P(ConnectTest, ResolveErrorsNameTheHostAndTheResolversText) {
  try {
    run(connect("unknown.test", 80));
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().category(), resolver_category());
    EXPECT_THAT(e.what(), HasSubstr("unknown.test"));
  }
}

TEST_P(ConnectTest, SystemResolverFindsLocalhostAndReportsGaiErrors) {
  set_resolver(nullptr);
  std::vector<Address> found = run(resolve("localhost", "80"));
  ASSERT_FALSE(found.empty());
  for (const Address& a : found) EXPECT_EQ(a.port(), 80);
  try {
    run(resolve("localhost", "no-such-service-weft"));
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().category(), resolver_category());
    EXPECT_THAT(e.what(), HasSubstr("localhost"));
    EXPECT_THAT(e.what(), HasSubstr(gai_strerror(e.code().value())));
  }
}

TEST_P(ConnectTest, NumericHostsNeverReachTheResolver) {
  std::vector<Address> found = run(resolve("127.0.0.1", "8080"));
  EXPECT_EQ(found, std::vector<Address>{Address::loopback_v4(8080)});
  EXPECT_EQ(fake_->lookups, 0);
}

TEST_P(ConnectTest, CancellingAResolveAbandonsItAtOnce) {
  fake_->delay = 10s;
  fake_->answers["slow.test"] = {Address::loopback_v4()};
  Deferred<std::vector<Address>> lookup = spawn(reactor(), resolve("slow.test", "1"));
  spin(10ms);
  const TimePoint start = Clock::now();
  lookup.cancel();
  run_until([&] { return lookup.called(); });
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_THROW(lookup.check(), Cancelled);
}

TEST_P(ConnectTest, CancellingASystemLookupResumesAtOnce) {
  set_resolver(nullptr);
  Deferred<std::vector<Address>> lookup = spawn(reactor(), resolve("localhost", "1"));
  lookup.cancel();  // before or while the pool runs it; either way the task does not wait
  run_until([&] { return lookup.called(); });
  EXPECT_THROW(lookup.check(), Cancelled);
}

TEST_P(ConnectTest, ConnectTimeoutCoversTheLookup) {
  fake_->delay = 10s;
  fake_->answers["slow.test"] = {Address::loopback_v4()};
  ConnectOptions options;
  options.timeout = 50ms;
  try {
    run(connect("slow.test", 1, options));
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::timed_out);
    EXPECT_THAT(e.what(), HasSubstr("slow.test"));
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ConnectTest, ::testing::ValuesIn(weft::testing::backend_names()),
                         weft::testing::param_name);

}  // namespace
}  // namespace weft::net
