// Backend registry: backends by name, chosen at run time (libcouchbase's IO
// plugins, the way
// `%autoawait NAME` picks a loop runner).
//
// Each backend registers itself (a static BackendRegistration in its own
// folder), so the core names none of them and a backend added later, even one
// loaded at run time, needs no change here. Names are what make_reactor()
// takes: "libuv", "libevent:poll", "asio", ... The default backend is
// $WEFT_BACKEND if set, else the first registered by preference.
//
// Threading: every function is thread-safe.
#ifndef WEFT_CORE_BACKEND_REGISTRY_H_
#define WEFT_CORE_BACKEND_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/backend.h"
#include "weft/core/reactor.h"

namespace weft {

struct BackendInfo {
  std::string name = {};       // what make_reactor() takes, e.g. "libuv" or "libevent:poll"
  std::string mechanism = {};  // what waits underneath, e.g. "epoll"; see find_mechanism
  int preference = 100;        // lower sorts first; the first is the default
  // Makes the backend. Called by make_reactor() on the calling thread, possibly on many threads
  // at once: it must be thread-safe. Failures are exceptions (std::system_error for the
  // system's, EMFILE when descriptors run out); it must never end the process.
  std::function<std::unique_ptr<Backend>(LoopHooks&)> factory = {};
  // Optional, for a backend that can only learn its mechanism by trying (libevent's own choice
  // depends on the environment and on which methods initialise): fills in an empty `mechanism`.
  // Never called at registration, which runs before main() (a probe there could fail, or end
  // the process, before the program can handle it): the registry calls it on first need
  // (available_backends(), find_backend()), once, thread-safely, and keeps the answer. If it
  // throws, the entry is listed without a mechanism and it is asked again next time.
  std::function<std::string()> find_mechanism = {};

  // For listings: "libuv (epoll)"; a name that already says its mechanism stays
  // as it is.
  std::string label() const;
};

// Adds a backend. Throws UsageError if the name is taken or the factory is
// empty. Calls nothing of the entry's: safe from a static object's constructor.
void register_backend(BackendInfo info);

// Every registered backend, by preference then name, mechanisms filled in (see
// BackendInfo::find_mechanism).
std::vector<BackendInfo> available_backends();

// $WEFT_BACKEND if set, else the first of available_backends(). Throws
// UnknownNameError if nothing is registered.
std::string default_backend_name();

// The registry entry for `name` (empty: default_backend_name()). Throws UnknownNameError,
// listing the available names, for a name that is not registered.
BackendInfo find_backend(std::string_view name = {});

// Makes a reactor on the named backend; an empty name means
// default_backend_name(). Throws UnknownNameError, listing the available names,
// for a name that is not registered, and std::system_error if the system refuses
// (EMFILE: no descriptor left). Probes nothing beyond the backend it makes.
std::unique_ptr<Reactor> make_reactor(std::string_view name = {});

// Registers a backend when constructed; for a static object in a backend's own
// source file.
struct BackendRegistration {
  explicit BackendRegistration(BackendInfo info) { register_backend(std::move(info)); }
};

}  // namespace weft

#endif  // WEFT_CORE_BACKEND_REGISTRY_H_
