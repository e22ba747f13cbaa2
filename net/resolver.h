// resolve() and Resolver: from a host name and a service to every address it has (DNS).
//
//   std::vector<weft::net::Address> addresses = co_await weft::net::resolve("example.org", "443");
//
// A numeric host ("127.0.0.1", "::1") is converted in place, without touching the resolver. Other
// names go to the process's Resolver: by default getaddrinfo() run on a small pool of threads
// that weft owns (at most kLookupThreads, started on demand; never one thread per lookup), so
// the loop thread never blocks. The result keeps getaddrinfo's order (RFC 6724), one entry per
// address (stream sockets).
//
// Completion contract: resolve() completes once, with every address, or throws
// std::system_error whose message names the host and carries gai_strerror's text (its code is in
// resolver_category(); EAI_SYSTEM carries the errno instead). The task is resumed from the loop,
// never from the pool's thread. Cancelling it abandons the lookup at once: the task resumes with
// weft::Cancelled next turn, the pool's thread finishes getaddrinfo on its own and its answer is
// dropped. A lookup still running when its reactor is destroyed is abandoned the same way.
// On virtual time (core/virtual_clock.h) the system resolver's lookup counts as an expected
// cross-thread call (Reactor::expect_call_from_thread): time does not jump, and no deadlock is
// declared, while it runs. A replacement Resolver that waits for another thread must do the same.
//
// Testing: set_resolver() replaces the resolver for the whole process (trio's custom resolver),
// so tests hand weft fake answers (delays, failures, several families) without a network.
//
// Threading: resolve() inside a task on its loop thread; set_resolver() from any thread.
#ifndef WEFT_NET_RESOLVER_H_
#define WEFT_NET_RESOLVER_H_

#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "weft/core/task.h"
#include "weft/net/address.h"

namespace weft::net {

inline constexpr int kLookupThreads = 4;

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Every address of `host` (never numeric: resolve() handled those) with `service`'s port.
  // Runs as a task on the caller's reactor; must throw std::system_error when there is none.
  virtual Task<std::vector<Address>> resolve(std::string host, std::string service) = 0;
};

// The getaddrinfo() pool resolver (the default).
std::shared_ptr<Resolver> system_resolver();
// Replaces the process's resolver; nullptr restores the default. Returns the previous one.
// Lookups already started keep the resolver they started with.
std::shared_ptr<Resolver> set_resolver(std::shared_ptr<Resolver> resolver);

// Every address of host:service. `service` is a port number or a name from /etc/services.
Task<std::vector<Address>> resolve(std::string host, std::string service);

// The category of getaddrinfo's EAI_* codes; message() is gai_strerror's text.
const std::error_category& resolver_category();

}  // namespace weft::net

#endif  // WEFT_NET_RESOLVER_H_
