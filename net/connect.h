// connect(): a TCP (or Unix-domain) client connection, with a connect timeout and Happy Eyeballs.
//
//   weft::net::Stream stream = co_await weft::net::connect("localhost", 8080);
//   weft::net::Stream local = co_await weft::net::connect(*weft::net::Address::parse("/run/x"));
//
// connect(host, port) resolves `host` (a literal address skips DNS, net/resolver.h) and then
// races the addresses RFC 8305's way: the families are interleaved (the first family the resolver
// returned first, then the other, alternately), one attempt starts, and the next one starts
// `attempt_delay` (250 ms) after the previous one or as soon as it fails, whichever is first.
// The first attempt to connect wins; the others are closed. Nothing is left open on failure.
//
// Completion contract: completes once with a connected Stream, or throws std::system_error:
// with ETIMEDOUT past `timeout`, else with the error of the first address tried (ECONNREFUSED,
// ENETUNREACH, EHOSTUNREACH, ...). When every attempt failed the message lists each address with
// its own error. Cancelling it closes every attempt and throws weft::Cancelled next turn.
//
// Threading: inside a task, on its reactor's loop thread.
#ifndef WEFT_NET_CONNECT_H_
#define WEFT_NET_CONNECT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "weft/core/task.h"
#include "weft/core/time.h"
#include "weft/net/address.h"
#include "weft/net/stream.h"

namespace weft::net {

struct ConnectOptions {
  // For the whole connect (resolution included). Duration::max(): none.
  Duration timeout = std::chrono::seconds(30);
  // RFC 8305's "Connection Attempt Delay".
  Duration attempt_delay = std::chrono::milliseconds(250);
  bool nodelay = true;
  bool keepalive = false;
  // Called as each attempt starts (for tests and tracing); loop thread.
  std::function<void(const Address&)> on_attempt;
};

Task<Stream> connect(std::string host, std::uint16_t port, ConnectOptions options = {});
// Connects to exactly one address (IP or Unix path); no DNS.
Task<Stream> connect(Address address, ConnectOptions options = {});
// Races `addresses` as given (already in preference order), Happy-Eyeballs style. `label` names
// the destination in error messages ("example.org:443").
Task<Stream> connect_any(std::vector<Address> addresses, std::string label,
                         ConnectOptions options = {});

// RFC 8305 section 4: the addresses reordered so that families alternate, starting with the
// family of the first address; order within a family is kept.
std::vector<Address> interleave_families(const std::vector<Address>& addresses);

}  // namespace weft::net

#endif  // WEFT_NET_CONNECT_H_
