// The plugin loader behind the backend registry (core/backend_registry.h): finds
// weft-backend-<family>.so in the plugin path, loads it, checks its entry point and hands the
// backends it registered to the registry.
//
// A plugin's backends register themselves from static objects while dlopen() runs; the loader
// captures those registrations (thread-locally, on the loading thread) instead of letting them
// reach the registry, and passes them on only once the entry point is checked. A plugin is never
// unloaded: reactors made from it, and copies of its BackendInfo, hold its code.
//
// Threading: every function is thread-safe; loads are serialized.
#ifndef WEFT_CORE_DETAIL_PLUGIN_LOADER_H_
#define WEFT_CORE_DETAIL_PLUGIN_LOADER_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/core/backend_registry.h"

namespace weft::detail {

// Non-null while this thread loads a plugin: register_backend() adds to it instead of the
// registry.
std::vector<BackendInfo>*& plugin_capture();

// "libevent:poll" -> "libevent"; empty if the name cannot be a plugin's (a '/', say).
std::string plugin_family(std::string_view name);

// Registers a plugin's captured backends, all or none, at once: a lookup on another thread
// that sees one of a family's names registered must see all of them. Throws (UsageError) if
// it cannot.
using PluginRegister = std::function<void(std::vector<BackendInfo>)>;

// Loads the plugin of `family` from the first directory of the plugin path that has it, once
// per file, and registers its backends through `add`. nullopt: no such file. The status says
// whether it loaded and, if not, why.
std::optional<BackendPluginStatus> load_plugin(const std::string& family,
                                               const PluginRegister& add);

// The outcome of the earlier load of the plugin at `path`, if there was one that is remembered.
std::optional<BackendPluginStatus> plugin_status(const std::string& path);

// Every plugin file in the plugin path (the first per family), families sorted.
std::vector<std::pair<std::string, std::string>> find_plugin_files();  // (family, path)

std::vector<std::string> plugin_directories();

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_PLUGIN_LOADER_H_
