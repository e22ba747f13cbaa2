// Address: parsing, formatting, comparison and hashing of IPv4, IPv6 and Unix addresses.
#include "weft/net/address.h"

#include <unordered_set>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace weft::net {
namespace {

TEST(Address, ParsesAndFormatsEachFamily) {
  for (const char* text : {"127.0.0.1:80", "[::1]:8080", "[2001:db8::1]:443", "/run/weft.sock",
                           "@abstract-name", "0.0.0.0:0"}) {
    auto address = Address::parse(text);
    ASSERT_TRUE(address.has_value()) << text;
    EXPECT_EQ(address->to_string(), text);
    EXPECT_EQ(Address::parse(address->to_string()), address);
  }
  EXPECT_EQ(Address::parse("unix:/tmp/x")->to_string(), "/tmp/x");
  EXPECT_EQ(Address::parse("[::1]:8080")->family(), Address::Family::kIPv6);
  EXPECT_EQ(Address::parse("[::1]:8080")->port(), 8080);
  EXPECT_EQ(Address::parse("10.1.2.3:9")->host(), "10.1.2.3");
  EXPECT_EQ(Address::parse("/a/b")->family(), Address::Family::kUnix);
}

TEST(Address, RejectsWhatIsNotAnAddress) {
  for (const char* text : {"", "localhost:80", "127.0.0.1", "127.0.0.1:65536", "::1:80", "[::1]",
                           "[127.0.0.1]:80", "1.2.3.4:x", "[::1]:-1"}) {
    EXPECT_FALSE(Address::parse(text).has_value()) << text;
  }
  EXPECT_THROW(Address::unix_path(std::string(200, 'x')), std::invalid_argument);
}

TEST(Address, ComparesByFamilyThenAddressThenPort) {
  const Address a = *Address::parse("10.0.0.1:80");
  const Address b = *Address::parse("10.0.0.1:81");
  const Address c = *Address::parse("10.0.0.2:1");
  const Address d = *Address::parse("[::1]:1");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, d);
  EXPECT_EQ(a, *Address::from_ip("10.0.0.1", 80));
  EXPECT_NE(a, b);
  EXPECT_EQ(a.with_port(81), b);
}

TEST(Address, HashesConsistentlyWithEquality) {
  absl::flat_hash_set<Address> set = {*Address::parse("127.0.0.1:1"), *Address::parse("[::1]:1"),
                                      Address::unix_path("/x")};
  EXPECT_TRUE(set.contains(Address::loopback_v4(1)));
  EXPECT_TRUE(set.contains(Address::loopback_v6(1)));
  EXPECT_FALSE(set.contains(Address::loopback_v4(2)));
  std::unordered_set<Address> std_set = {Address::unix_path("/x")};
  EXPECT_TRUE(std_set.contains(*Address::parse("unix:/x")));
}

TEST(Address, RoundTripsThroughSockaddr) {
  const Address v6 = *Address::parse("[fe80::1%1]:53");
  const Address copy = Address::from_sockaddr(v6.sockaddr(), v6.length());
  EXPECT_EQ(copy, v6);
  EXPECT_EQ(copy.to_string(), "[fe80::1%1]:53");
  EXPECT_EQ(Address().to_string(), "(none)");
  EXPECT_EQ(Address::from_sockaddr(nullptr, 0).family(), Address::Family::kNone);
}

}  // namespace
}  // namespace weft::net
