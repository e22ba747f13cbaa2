#include "weft/core/backend_registry.h"

#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "weft/core/detail/named_registry.h"
#include "weft/core/detail/plugin_loader.h"

namespace weft {
namespace {

// Never destroyed: backends register from static objects in other files, and reactors may be
// made during exit.
detail::NamedRegistry<BackendInfo>& registry() {
  static auto* const instance = new detail::NamedRegistry<BackendInfo>("backend", "WEFT_BACKEND");
  return *instance;
}

}  // namespace

std::string BackendInfo::label() const {
  if (mechanism.empty() || name.find(mechanism) != std::string::npos) return name;
  return absl::StrCat(name, " (", mechanism, ")");
}

namespace {

// One find_mechanism, called at most until it first succeeds. Shared by every copy of the
// entry the registry hands out.
class MechanismProbe {
 public:
  explicit MechanismProbe(std::function<std::string()> find) : find_(std::move(find)) {}

  std::string get() {
    std::lock_guard lock(mu_);
    if (!found_.has_value()) found_ = find_();  // a throw leaves it to be asked again
    return *found_;
  }

 private:
  std::mutex mu_;
  std::function<std::string()> find_;
  std::optional<std::string> found_;
};

// Fills in `info.mechanism` from its probe, if it has one. A failed probe leaves it empty.
void resolve_mechanism(BackendInfo& info) {
  if (!info.mechanism.empty() || !info.find_mechanism) return;
  try {
    info.mechanism = info.find_mechanism();
  } catch (...) {
  }
}

// Copies of the entry share one probe, which runs once.
BackendInfo with_shared_probe(BackendInfo info) {
  if (info.find_mechanism) {
    info.find_mechanism = [probe = std::make_shared<MechanismProbe>(
                               std::move(info.find_mechanism))] { return probe->get(); };
  }
  return info;
}

// A loaded plugin's backends, registered together (detail::PluginRegister).
void register_plugin_backends(std::vector<BackendInfo> infos) {
  for (BackendInfo& info : infos) info = with_shared_probe(std::move(info));
  registry().add_all(std::move(infos));
}

}  // namespace

void register_backend(BackendInfo info) {
  // A plugin being loaded on this thread: its entry point is checked before its backends count.
  if (std::vector<BackendInfo>* capture = detail::plugin_capture()) {
    capture->push_back(std::move(info));
    return;
  }
  registry().add(with_shared_probe(std::move(info)));
}

namespace {

std::optional<BackendInfo> registered(std::string_view name) { return registry().get(name); }

// Some registered backend is `family` or one of its variants ("libevent:poll").
bool family_registered(std::string_view family) {
  for (const BackendInfo& info : registry().all()) {
    if (info.name == family || (info.name.starts_with(family) && info.name.size() > family.size() &&
                                info.name[family.size()] == ':')) {
      return true;
    }
  }
  return false;
}

// The entry for `name`, loading its plugin if no linked-in backend has the name's family.
BackendInfo lookup(std::string_view name) {
  const std::string chosen = name.empty() ? default_backend_name() : std::string(name);
  if (std::optional<BackendInfo> info = registered(chosen)) return std::move(*info);
  const std::string family = detail::plugin_family(chosen);
  bool plugin_found = false;
  if (!family.empty() && !family_registered(family)) {
    plugin_found = load_backend_plugin(family);  // throws BackendPluginError if unusable
    if (std::optional<BackendInfo> info = registered(chosen)) return std::move(*info);
  }
  try {
    return registry().find(name);  // throws UnknownNameError, listing the names
  } catch (const UnknownNameError& e) {
    if (family.empty() || family_registered(family) || plugin_found) throw;
    throw UnknownNameError(absl::StrCat(e.what(), " (no plugin weft-backend-", family, ".so in ",
                                        absl::StrJoin(plugin_path(), ":"), ")"));
  }
}

}  // namespace

std::vector<BackendInfo> available_backends() {
  std::vector<BackendInfo> all = registry().all();
  for (BackendInfo& info : all) resolve_mechanism(info);
  return all;
}

std::string default_backend_name() {
  // A program that links no backend runs on the plugins: the first by preference is the
  // default.
  const char* env = std::getenv("WEFT_BACKEND");
  if ((env == nullptr || *env == '\0') && registry().empty()) load_backend_plugins();
  return registry().default_name();
}

BackendInfo find_backend(std::string_view name) {
  BackendInfo info = lookup(name);
  resolve_mechanism(info);
  return info;
}

std::unique_ptr<Reactor> make_reactor(std::string_view name) {
  // Not find_backend(): making a reactor needs no mechanism, so no probe.
  const BackendInfo info = lookup(name);
  return std::make_unique<Reactor>(info.name, info.factory);
}

std::unique_ptr<Reactor> make_reactor(std::string_view name, std::unique_ptr<ReactorClock> clock) {
  const BackendInfo info = lookup(name);
  return std::make_unique<Reactor>(info.name, info.factory, std::move(clock));
}

std::vector<std::string> plugin_path() { return detail::plugin_directories(); }

bool load_backend_plugin(std::string_view name) {
  const std::string family = detail::plugin_family(name);
  if (family.empty()) return false;
  if (family_registered(family)) return true;
  const std::optional<BackendPluginStatus> status =
      detail::load_plugin(family, register_plugin_backends);
  if (!status.has_value()) return false;
  if (!status->loaded) throw BackendPluginError(status->error);
  return true;
}

std::vector<BackendPluginStatus> load_backend_plugins() {
  std::vector<BackendPluginStatus> statuses;
  for (const auto& [family, path] : detail::find_plugin_files()) {
    std::optional<BackendPluginStatus> status = detail::plugin_status(path);
    if (!status.has_value()) {
      if (family_registered(family)) continue;  // linked in: its plugin is not needed
      status = detail::load_plugin(family, register_plugin_backends);
    }
    if (status.has_value()) statuses.push_back(std::move(*status));
  }
  return statuses;
}

}  // namespace weft
