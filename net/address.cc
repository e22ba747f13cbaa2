#include "weft/net/address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace weft::net {
namespace {

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

constexpr std::size_t kPathOffset = offsetof(::sockaddr_un, sun_path);

}  // namespace

std::optional<Address> Address::from_ip(std::string_view ip, std::uint16_t port) {
  Address address;
  const std::string text(ip);
  if (auto* v4 = reinterpret_cast<::sockaddr_in*>(&address.storage_);
      inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address.length_ = sizeof(::sockaddr_in);
    address.family_ = Family::kIPv4;
    return address;
  }
  // IPv6, with an optional zone ("fe80::1%eth0" or "fe80::1%2").
  std::string bare = text;
  std::uint32_t scope = 0;
  if (const std::size_t percent = text.find('%'); percent != std::string::npos) {
    bare = text.substr(0, percent);
    const std::string zone = text.substr(percent + 1);
    if (zone.empty()) return std::nullopt;
    auto [end, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), scope);
    if (ec != std::errc() || end != zone.data() + zone.size()) {
      scope = if_nametoindex(zone.c_str());
      if (scope == 0) return std::nullopt;
    }
  }
  auto* v6 = reinterpret_cast<::sockaddr_in6*>(&address.storage_);
  if (inet_pton(AF_INET6, bare.c_str(), &v6->sin6_addr) != 1) return std::nullopt;
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  v6->sin6_scope_id = scope;
  address.length_ = sizeof(::sockaddr_in6);
  address.family_ = Family::kIPv6;
  return address;
}

Address Address::unix_path(std::string_view path) {
  Address address;
  auto* un = reinterpret_cast<::sockaddr_un*>(&address.storage_);
  const bool abstract = !path.empty() && path[0] == '@';
  // A filesystem path needs its terminating NUL inside sun_path; an abstract name does not.
  if (path.empty() || path.size() + (abstract ? 0 : 1) > sizeof(un->sun_path)) {
    throw std::invalid_argument(absl::StrCat("weft: Unix socket path \"", std::string(path),
                                             "\" is empty or longer than ",
                                             static_cast<int>(sizeof(un->sun_path)) - 1, " bytes"));
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  if (abstract) un->sun_path[0] = '\0';
  address.length_ = static_cast<socklen_t>(kPathOffset + path.size() + (abstract ? 0 : 1));
  address.family_ = Family::kUnix;
  return address;
}

Address Address::loopback_v4(std::uint16_t port) { return *from_ip("127.0.0.1", port); }
Address Address::loopback_v6(std::uint16_t port) { return *from_ip("::1", port); }

std::optional<Address> Address::parse(std::string_view text) {
  if (text.starts_with("unix:")) text.remove_prefix(5);
  if (text.starts_with('/') || text.starts_with('@') || text.starts_with("./")) {
    if (text.size() >= sizeof(::sockaddr_un::sun_path)) return std::nullopt;
    return unix_path(text);
  }
  if (text.starts_with('[')) {
    const std::size_t close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    auto port = parse_port(text.substr(close + 2));
    if (!port) return std::nullopt;
    auto address = from_ip(text.substr(1, close - 1), *port);
    if (!address || address->family_ != Family::kIPv6) return std::nullopt;
    return address;
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
  auto port = parse_port(text.substr(colon + 1));
  if (!port) return std::nullopt;
  auto address = from_ip(text.substr(0, colon), *port);
  if (!address || address->family_ != Family::kIPv4) return std::nullopt;
  return address;
}

Address Address::local_of(int fd) {
  ::sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (fd < 0 || getsockname(fd, reinterpret_cast<::sockaddr*>(&storage), &length) != 0) return {};
  return from_sockaddr(reinterpret_cast<::sockaddr*>(&storage), length);
}

Address Address::peer_of(int fd) {
  ::sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (fd < 0 || getpeername(fd, reinterpret_cast<::sockaddr*>(&storage), &length) != 0) return {};
  return from_sockaddr(reinterpret_cast<::sockaddr*>(&storage), length);
}

Address Address::from_sockaddr(const ::sockaddr* sa, socklen_t length) {
  Address address;
  if (sa == nullptr || length < static_cast<socklen_t>(sizeof(sa_family_t)) ||
      length > static_cast<socklen_t>(sizeof(::sockaddr_storage))) {
    return address;
  }
  switch (sa->sa_family) {
    case AF_INET:
      if (length < static_cast<socklen_t>(sizeof(::sockaddr_in))) return address;
      address.family_ = Family::kIPv4;
      length = sizeof(::sockaddr_in);
      break;
    case AF_INET6:
      if (length < static_cast<socklen_t>(sizeof(::sockaddr_in6))) return address;
      address.family_ = Family::kIPv6;
      length = sizeof(::sockaddr_in6);
      break;
    case AF_UNIX: {
      address.family_ = Family::kUnix;
      // The kernel may count the path's NUL or not; keep the length as reported.
      break;
    }
    default:
      return address;
  }
  std::memcpy(&address.storage_, sa, length);
  address.length_ = length;
  return address;
}

std::uint16_t Address::port() const {
  switch (family_) {
    case Family::kIPv4:
      return ntohs(reinterpret_cast<const ::sockaddr_in*>(&storage_)->sin_port);
    case Family::kIPv6:
      return ntohs(reinterpret_cast<const ::sockaddr_in6*>(&storage_)->sin6_port);
    default:
      return 0;
  }
}

Address Address::with_port(std::uint16_t port) const {
  Address copy = *this;
  if (family_ == Family::kIPv4) {
    reinterpret_cast<::sockaddr_in*>(&copy.storage_)->sin_port = htons(port);
  } else if (family_ == Family::kIPv6) {
    reinterpret_cast<::sockaddr_in6*>(&copy.storage_)->sin6_port = htons(port);
  }
  return copy;
}

int Address::domain() const {
  switch (family_) {
    case Family::kIPv4:
      return AF_INET;
    case Family::kIPv6:
      return AF_INET6;
    case Family::kUnix:
      return AF_UNIX;
    default:
      return AF_UNSPEC;
  }
}

std::string Address::host() const {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  switch (family_) {
    case Family::kIPv4:
      inet_ntop(AF_INET, &reinterpret_cast<const ::sockaddr_in*>(&storage_)->sin_addr, text,
                sizeof text);
      return text;
    case Family::kIPv6: {
      const auto* v6 = reinterpret_cast<const ::sockaddr_in6*>(&storage_);
      inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
      std::string result = text;
      if (v6->sin6_scope_id != 0) absl::StrAppend(&result, "%", v6->sin6_scope_id);
      return result;
    }
    case Family::kUnix: {
      const auto* un = reinterpret_cast<const ::sockaddr_un*>(&storage_);
      const std::size_t size = length_ > kPathOffset ? length_ - kPathOffset : 0;
      if (size == 0) return "";  // unnamed (a socketpair end, an unbound client)
      if (un->sun_path[0] == '\0') {
        // StrCat, not "@" + std::string: GCC 12 at -O3 reports a false -Wrestrict on the latter.
        return absl::StrCat("@", absl::string_view(un->sun_path + 1, size - 1));
      }
      return std::string(un->sun_path, strnlen(un->sun_path, size));
    }
    default:
      return "";
  }
}

std::string Address::to_string() const {
  switch (family_) {
    case Family::kIPv4:
      return absl::StrCat(host(), ":", port());
    case Family::kIPv6:
      return absl::StrCat("[", host(), "]:", port());
    case Family::kUnix: {
      std::string path = host();
      return path.empty() ? "unix:(unnamed)" : path;
    }
    default:
      return "(none)";
  }
}

Address::Key Address::key(std::size_t& size) const {
  Key key{};
  std::uint8_t* out = key.bytes;
  *out++ = static_cast<std::uint8_t>(family_);
  auto put = [&out](const void* data, std::size_t n) {
    std::memcpy(out, data, n);
    out += n;
  };
  switch (family_) {
    case Family::kIPv4: {
      const auto* v4 = reinterpret_cast<const ::sockaddr_in*>(&storage_);
      put(&v4->sin_addr, 4);
      put(&v4->sin_port, 2);  // network order: compares as the number does
      break;
    }
    case Family::kIPv6: {
      const auto* v6 = reinterpret_cast<const ::sockaddr_in6*>(&storage_);
      put(&v6->sin6_addr, 16);
      put(&v6->sin6_port, 2);
      const std::uint32_t scope = htonl(v6->sin6_scope_id);
      put(&scope, 4);
      break;
    }
    case Family::kUnix: {
      const std::string path = host();
      put(path.data(), path.size());
      break;
    }
    default:
      break;
  }
  size = static_cast<std::size_t>(out - key.bytes);
  return key;
}

int Address::compare(const Address& other) const {
  std::size_t a_size = 0, b_size = 0;
  const Key a = key(a_size);
  const Key b = other.key(b_size);
  const int c = std::memcmp(a.bytes, b.bytes, std::min(a_size, b_size));
  if (c != 0) return c < 0 ? -1 : 1;
  return a_size == b_size ? 0 : (a_size < b_size ? -1 : 1);
}

std::size_t Address::hash() const { return absl::Hash<Address>()(*this); }

}  // namespace weft::net
