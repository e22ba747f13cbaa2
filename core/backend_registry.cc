#include "core/backend_registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/detail/named_registry.h"

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

void register_backend(BackendInfo info) { registry().add(std::move(info)); }

std::vector<BackendInfo> available_backends() { return registry().all(); }

std::string default_backend_name() { return registry().default_name(); }

BackendInfo find_backend(std::string_view name) { return registry().find(name); }

std::unique_ptr<Reactor> make_reactor(std::string_view name) {
  const BackendInfo info = find_backend(name);
  return std::make_unique<Reactor>(info.name, info.factory);
}

}  // namespace weft
