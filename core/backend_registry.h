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
// Plugins: a name that no linked-in backend has is looked up as a plugin, a loadable module
// named weft-backend-<family>.so (the family is the name up to any ':', so "libevent:poll" is
// in weft-backend-libevent.so), searched in $WEFT_PLUGIN_PATH (':'-separated directories),
// then in weft-<major>.<minor>/plugins beside the shared weft core, then in the install
// location. The plugin's backends register themselves as they load; the registry keeps them
// only if its entry point (WEFT_BACKEND_PLUGIN below) carries this weft's version and ABI tag.
// A plugin is never unloaded, so a reactor made from one can outlive anything. Plugins need the
// shared weft core: a program that links weft statically uses the backends it links in and
// refuses plugins with a BackendPluginError. docs/install.md shows a plugin built out of tree.
//
// Threading: every function is thread-safe.
#ifndef WEFT_CORE_BACKEND_REGISTRY_H_
#define WEFT_CORE_BACKEND_REGISTRY_H_

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/options.h"
#include "weft/core/backend.h"
#include "weft/core/reactor.h"
#include "weft/version.h"

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
// default_backend_name(). A name that is not registered loads its plugin first (see
// above). Throws UnknownNameError, listing the available names, for a name that neither a
// registered backend nor a plugin has; BackendPluginError if its plugin cannot be used; and
// std::system_error if the system refuses (EMFILE: no descriptor left). Probes nothing beyond
// the backend it makes.
std::unique_ptr<Reactor> make_reactor(std::string_view name = {});
// The same on `clock` (core/clock.h; null: steady_clock), e.g. a VirtualClock for tests
// (core/virtual_clock.h).
std::unique_ptr<Reactor> make_reactor(std::string_view name, std::unique_ptr<ReactorClock> clock);

// A plugin that exists but cannot be used: a library it needs is missing, it was built for
// another weft version or ABI, or this program links weft statically. The message names the
// plugin's file and what is wrong.
class BackendPluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The directories searched for plugins, in order (see above).
std::vector<std::string> plugin_path();

// One plugin file found in plugin_path(): the first file for each family.
struct BackendPluginStatus {
  std::string family = {};                 // "libevent"
  std::string path = {};                   // the file
  bool loaded = false;                     // its backends are registered
  std::string error = {};                  // why not, if not loaded
  std::vector<std::string> backends = {};  // the names it registered
};

// Loads the plugin of `family` ("glib"; a backend name such as "libevent:poll" is accepted)
// unless a backend of that family is already registered. Returns false if no plugin file exists
// for it; throws BackendPluginError if one exists but cannot be used. Loading is done once per
// file: later calls return the first outcome.
bool load_backend_plugin(std::string_view family);

// Every plugin in plugin_path() whose family has no linked-in backend, each loaded (for
// listings: `weft backends`). Never throws for a plugin that cannot be used: its error says why.
std::vector<BackendPluginStatus> load_backend_plugins();

// Registers a backend when constructed; for a static object in a backend's own
// source file.
struct BackendRegistration {
  explicit BackendRegistration(BackendInfo info) { register_backend(std::move(info)); }
};

// A plugin's entry point: what the loader checks before it keeps the backends the plugin
// registered. The first two members never move, so any weft can read them from any plugin.
struct BackendPluginEntry {
  const char* weft_version;  // WEFT_VERSION_STRING the plugin was built with
  const char* abi_tag;       // WEFT_ABI_TAG, likewise
  const char* family;        // what the file is named after: weft-backend-<family>.so
  const void* core;          // the weft core the plugin is linked to (one per process)
};

namespace detail {
extern const char plugin_core_anchor;
}  // namespace detail

}  // namespace weft

// What a plugin and the program that loads it must agree on beyond weft's own version: the C++
// library and its ABI, and the Abseil release (weft's types hold Abseil's).
#if defined(_LIBCPP_VERSION)
#define WEFT_DETAIL_ABI_STDLIB "libc++"
#elif defined(__GLIBCXX__) && _GLIBCXX_USE_CXX11_ABI
#define WEFT_DETAIL_ABI_STDLIB "libstdc++-cxx11"
#else
#define WEFT_DETAIL_ABI_STDLIB "libstdc++"
#endif
#define WEFT_DETAIL_STRINGIFY2(x) #x
#define WEFT_DETAIL_STRINGIFY(x) WEFT_DETAIL_STRINGIFY2(x)
#if defined(ABSL_OPTION_USE_INLINE_NAMESPACE) && ABSL_OPTION_USE_INLINE_NAMESPACE
#define WEFT_DETAIL_ABI_ABSL WEFT_DETAIL_STRINGIFY(ABSL_OPTION_INLINE_NAMESPACE_NAME)
#else
#define WEFT_DETAIL_ABI_ABSL "plain"
#endif
#define WEFT_ABI_TAG                                                           \
  "weft-" WEFT_DETAIL_STRINGIFY(WEFT_VERSION_MAJOR) "." WEFT_DETAIL_STRINGIFY( \
      WEFT_VERSION_MINOR) " " WEFT_DETAIL_ABI_STDLIB " absl-" WEFT_DETAIL_ABI_ABSL

// Makes the file a backend plugin for `family` (a string literal: "glib"): one use, in one
// source file of a loadable module named weft-backend-<family>.so whose backends register
// themselves with BackendRegistration, each named `family` or "<family>:<variant>".
#define WEFT_BACKEND_PLUGIN(family)                                                    \
  extern "C" {                                                                         \
  extern __attribute__((visibility("default")))                                        \
  const ::weft::BackendPluginEntry weft_backend_plugin_entry;                          \
  const ::weft::BackendPluginEntry weft_backend_plugin_entry = {                       \
      WEFT_VERSION_STRING, WEFT_ABI_TAG, family, &::weft::detail::plugin_core_anchor}; \
  }                                                                                    \
  static_assert(true, "")

#endif  // WEFT_CORE_BACKEND_REGISTRY_H_
