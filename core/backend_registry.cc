#include "weft/core/backend_registry.h"

#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/core/detail/named_registry.h"

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

}  // namespace

void register_backend(BackendInfo info) {
  if (info.find_mechanism) {
    info.find_mechanism = [probe = std::make_shared<MechanismProbe>(
                               std::move(info.find_mechanism))] { return probe->get(); };
  }
  registry().add(std::move(info));
}

std::vector<BackendInfo> available_backends() {
  std::vector<BackendInfo> all = registry().all();
  for (BackendInfo& info : all) resolve_mechanism(info);
  return all;
}

std::string default_backend_name() { return registry().default_name(); }

BackendInfo find_backend(std::string_view name) {
  BackendInfo info = registry().find(name);
  resolve_mechanism(info);
  return info;
}

std::unique_ptr<Reactor> make_reactor(std::string_view name) {
  // Not find_backend(): making a reactor needs no mechanism, so no probe.
  const BackendInfo info = registry().find(name);
  return std::make_unique<Reactor>(info.name, info.factory);
}

}  // namespace weft
