// Address: where a socket connects, binds or receives from: an IPv4 or IPv6 address with a port,
// or a Unix-domain socket path (a filesystem path, or an abstract name written "@name").
//
// A small value type (a sockaddr_storage and its length): parse it from text, format it back,
// compare it, hash it (absl::Hash and std::hash), and hand it to the socket calls through
// sockaddr()/length(). parse() accepts "127.0.0.1:80", "[::1]:80", "[fe80::1%eth0]:80",
// "/run/app.sock", "@abstract" and "unix:/run/app.sock"; it never resolves a name (that is
// resolve(), net/resolver.h). Ordering is by family, then address bytes, then port, so sorted
// lists and map keys are stable.
//
// Threading: a plain value; safe anywhere.
#ifndef WEFT_NET_ADDRESS_H_
#define WEFT_NET_ADDRESS_H_

#include <sys/socket.h>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace weft::net {

class Address {
 public:
  enum class Family : std::uint8_t { kNone, kIPv4, kIPv6, kUnix };

  // No address (family kNone); formats as "(none)".
  Address() = default;

  // Parses one of the forms above; nullopt if the text is none of them.
  static std::optional<Address> parse(std::string_view text);
  // An IP literal ("127.0.0.1", "::1", "fe80::1%lo") and a port; nullopt if `ip` is not one.
  static std::optional<Address> from_ip(std::string_view ip, std::uint16_t port);
  // A Unix-domain socket: a path, or an abstract name if `path` starts with '@'. Throws
  // std::invalid_argument if it does not fit in sockaddr_un.
  static Address unix_path(std::string_view path);
  static Address loopback_v4(std::uint16_t port = 0);
  static Address loopback_v6(std::uint16_t port = 0);
  // Copies what the kernel reported (accept, getsockname, recvfrom). Family kNone if `length`
  // is too short or the family is none of the three.
  static Address from_sockaddr(const ::sockaddr* address, socklen_t length);
  // The local (getsockname) or peer (getpeername) address of socket `fd`; family kNone if the
  // kernel has none to report (fd closed, not connected).
  static Address local_of(int fd);
  static Address peer_of(int fd);

  Family family() const { return family_; }
  bool is_ip() const { return family_ == Family::kIPv4 || family_ == Family::kIPv6; }
  // The port of an IP address (host order); 0 for a Unix address.
  std::uint16_t port() const;
  // The same address with another port (IP only).
  Address with_port(std::uint16_t port) const;
  // The address without the port ("::1", "127.0.0.1") or the Unix path ("@name" if abstract).
  std::string host() const;
  // parse()'s form: "127.0.0.1:80", "[::1]:80", "/run/app.sock", "@name"; "(none)" if empty.
  std::string to_string() const;
  // AF_INET, AF_INET6, AF_UNIX (AF_UNSPEC if empty).
  int domain() const;

  const ::sockaddr* sockaddr() const { return reinterpret_cast<const ::sockaddr*>(&storage_); }
  socklen_t length() const { return length_; }

  friend bool operator==(const Address& a, const Address& b) { return a.compare(b) == 0; }
  friend std::strong_ordering operator<=>(const Address& a, const Address& b) {
    return a.compare(b) <=> 0;
  }
  template <typename H>
  friend H AbslHashValue(H state, const Address& address) {
    std::size_t size = 0;
    const auto key = address.key(size);
    return H::combine(H::combine_contiguous(std::move(state), key.data(), size), size);
  }
  std::size_t hash() const;

 private:
  // The bytes that identify the address: family, address, port (big-endian), scope; or family
  // and path. Equality, order and hash all read it, so they agree.
  struct Key {
    std::uint8_t bytes[1 + sizeof(::sockaddr_storage)];
    const std::uint8_t* data() const { return bytes; }
  };
  Key key(std::size_t& size) const;
  int compare(const Address& other) const;

  ::sockaddr_storage storage_{};
  socklen_t length_ = 0;
  Family family_ = Family::kNone;
};

}  // namespace weft::net

template <>
struct std::hash<weft::net::Address> {
  std::size_t operator()(const weft::net::Address& address) const { return address.hash(); }
};

#endif  // WEFT_NET_ADDRESS_H_
