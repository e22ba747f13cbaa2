#include "weft/core/detail/plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "weft/version.h"

// Set by the build (core/CMakeLists.txt): where plugins are installed, and the same directory
// relative to the library directory.
#ifndef WEFT_PLUGIN_SUBDIR
#error "WEFT_PLUGIN_SUBDIR must be defined by the build"
#endif
#ifndef WEFT_PLUGIN_INSTALL_DIR
#error "WEFT_PLUGIN_INSTALL_DIR must be defined by the build"
#endif

namespace weft {

const char* version() { return WEFT_VERSION_STRING; }

namespace detail {

// Its address identifies this copy of weft's core: a plugin records the one it is linked to.
const char plugin_core_anchor = 0;

namespace {

constexpr std::string_view kFilePrefix = "weft-backend-";
constexpr std::string_view kFileSuffix = ".so";

std::string file_name(const std::string& family) {
  return std::string(kFilePrefix) + family + std::string(kFileSuffix);
}

// The directory of the file that holds this code: the shared weft core, or the program.
std::string core_directory() {
  Dl_info info{};
  if (dladdr(&plugin_core_anchor, &info) == 0 || info.dli_fname == nullptr) return {};
  const std::string_view path = info.dli_fname;
  const std::size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || path.front() != '/') return {};
  return std::string(path.substr(0, slash));
}

// "0.2.0" -> "0.2": plugins and weft must agree on major.minor (0.x: each minor is an ABI).
std::string_view major_minor(std::string_view version) {
  const std::size_t first = version.find('.');
  if (first == std::string_view::npos) return version;
  const std::size_t second = version.find('.', first + 1);
  return second == std::string_view::npos ? version : version.substr(0, second);
}

// dlopen's message, said in terms of what the user can fix.
std::string describe_load_failure(const std::string& family, const std::string& path,
                                  const std::string& error) {
  const std::string prefix = absl::StrCat("weft: backend plugin '", family, "' (", path, ")");
  constexpr std::string_view kMissing = ": cannot open shared object file";
  const std::size_t missing = error.find(kMissing);
  if (missing != std::string::npos) {
    // "<plugin>: <library>: cannot open shared object file: No such file or directory"
    const std::size_t start = error.rfind(": ", missing == 0 ? 0 : missing - 1);
    const std::string library =
        error.substr(start == std::string::npos ? 0 : start + 2,
                     missing - (start == std::string::npos ? 0 : start + 2));
    return absl::StrCat(prefix, " cannot be loaded: it needs ", library,
                        ", which is not installed or not in the library path (", error, ")");
  }
  return absl::StrCat(prefix, " cannot be loaded: ", error);
}

// Why the entry point, and what the plugin registered, cannot be accepted; empty if they can.
std::string check_plugin(const std::string& family, const std::string& path,
                         const BackendPluginEntry* entry,
                         const std::vector<BackendInfo>& registered) {
  const std::string prefix = absl::StrCat("weft: backend plugin '", family, "' (", path, ")");
  if (entry == nullptr || entry->weft_version == nullptr || entry->abi_tag == nullptr) {
    return absl::StrCat(prefix,
                        " is not a weft plugin: it has no entry point "
                        "weft_backend_plugin_entry (WEFT_BACKEND_PLUGIN)");
  }
  if (major_minor(entry->weft_version) != major_minor(WEFT_VERSION_STRING)) {
    return absl::StrCat(prefix, " was built for weft ", entry->weft_version, ", this is weft ",
                        WEFT_VERSION_STRING, ": rebuild it against weft ",
                        std::string(major_minor(WEFT_VERSION_STRING)));
  }
  if (std::strcmp(entry->abi_tag, WEFT_ABI_TAG) != 0) {
    return absl::StrCat(prefix, " was built with ABI '", entry->abi_tag, "', this weft has '",
                        WEFT_ABI_TAG, "': rebuild it with the same C++ library and Abseil");
  }
  if (entry->family == nullptr || family != entry->family) {
    return absl::StrCat(prefix, " declares family '", entry->family ? entry->family : "",
                        "', but its file is named for '", family, "'");
  }
  if (entry->core != &plugin_core_anchor) {
    return absl::StrCat(prefix,
                        " is linked to another copy of weft's core than this program's: plugins "
                        "need a program linked to the shared weft core (weft::core, "
                        "pkg-config weft-core), not the static one");
  }
  if (registered.empty()) return absl::StrCat(prefix, " registered no backend");
  for (const BackendInfo& info : registered) {
    if (info.name != family && !info.name.starts_with(family + ":")) {
      return absl::StrCat(prefix, " registered backend '", info.name, "', outside its family '",
                          family, "' (names must be '", family, "' or '", family, ":...')");
    }
  }
  return {};
}

struct Loader {
  std::mutex mu;
  std::map<std::string, BackendPluginStatus> outcomes;  // by path; guarded by mu
};

// Never destroyed: lookups may run during exit.
Loader& loader() {
  static auto* const instance = new Loader;
  return *instance;
}

}  // namespace

std::vector<BackendInfo>*& plugin_capture() {
  thread_local std::vector<BackendInfo>* capture = nullptr;
  return capture;
}

std::string plugin_family(std::string_view name) {
  const std::string_view family = name.substr(0, name.find(':'));
  if (family.empty()) return {};
  for (const char c : family) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return {};
  }
  if (family == "." || family == "..") return {};
  return std::string(family);
}

std::vector<std::string> plugin_directories() {
  std::vector<std::string> dirs;
  auto add = [&dirs](std::string dir) {
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (dir.empty()) return;
    for (const std::string& known : dirs) {
      if (known == dir) return;
    }
    dirs.push_back(std::move(dir));
  };
  if (const char* env = std::getenv("WEFT_PLUGIN_PATH"); env != nullptr) {
    std::vector<std::string> listed = absl::StrSplit(env, ':', absl::SkipEmpty());
    for (std::string& dir : listed) add(std::move(dir));
  }
  if (std::string core = core_directory(); !core.empty()) {
    add(absl::StrCat(core, "/", WEFT_PLUGIN_SUBDIR));
  }
  add(WEFT_PLUGIN_INSTALL_DIR);
  return dirs;
}

std::vector<std::pair<std::string, std::string>> find_plugin_files() {
  std::map<std::string, std::string> found;  // family -> path, first directory wins
  for (const std::string& dir : plugin_directories()) {
    DIR* stream = opendir(dir.c_str());
    if (stream == nullptr) continue;
    while (const dirent* entry = readdir(stream)) {
      const std::string_view name = entry->d_name;
      if (!name.starts_with(kFilePrefix) || !name.ends_with(kFileSuffix)) continue;
      const std::string family = plugin_family(
          name.substr(kFilePrefix.size(), name.size() - kFilePrefix.size() - kFileSuffix.size()));
      if (family.empty()) continue;
      found.emplace(family, absl::StrCat(dir, "/", entry->d_name));
    }
    closedir(stream);
  }
  return {found.begin(), found.end()};
}

std::optional<BackendPluginStatus> plugin_status(const std::string& path) {
  Loader& state = loader();
  std::lock_guard lock(state.mu);
  auto it = state.outcomes.find(path);
  if (it == state.outcomes.end()) return std::nullopt;
  return it->second;
}

std::optional<BackendPluginStatus> load_plugin(const std::string& family,
                                               const PluginRegister& add) {
  std::string path;
  for (const std::string& dir : plugin_directories()) {
    std::string candidate = absl::StrCat(dir, "/", file_name(family));
    if (access(candidate.c_str(), F_OK) == 0) {
      path = std::move(candidate);
      break;
    }
  }
  if (path.empty()) return std::nullopt;

  Loader& state = loader();
  std::lock_guard lock(state.mu);
  if (auto it = state.outcomes.find(path); it != state.outcomes.end()) return it->second;

  BackendPluginStatus status{.family = family, .path = path};
  std::vector<BackendInfo> registered;
  plugin_capture() = &registered;
  dlerror();
  // RTLD_LOCAL: each plugin has its own weft_backend_plugin_entry, and none of a plugin's
  // symbols should stand in for another's. Never dlclose()d (see the header).
  void* const handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  plugin_capture() = nullptr;
  if (handle == nullptr) {
    const char* error = dlerror();
    status.error = describe_load_failure(family, path, error != nullptr ? error : "unknown error");
    // Not remembered: nothing stayed loaded, and the missing library may be installed later.
    return status;
  }
  const auto* entry =
      static_cast<const BackendPluginEntry*>(dlsym(handle, "weft_backend_plugin_entry"));
  status.error = check_plugin(family, path, entry, registered);
  if (status.error.empty()) {
    try {
      for (const BackendInfo& info : registered) status.backends.push_back(info.name);
      add(std::move(registered));
      status.loaded = true;
    } catch (const std::exception& e) {
      status.error = absl::StrCat("weft: backend plugin '", family, "' (", path,
                                  ") cannot be registered: ", e.what());
    }
  }
  // Remembered either way: the module stays loaded, and loading it again would not run its
  // registrations again.
  state.outcomes.emplace(path, status);
  return status;
}

}  // namespace detail
}  // namespace weft
