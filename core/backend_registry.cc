#include "core/backend_registry.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/errors.h"

namespace weft {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<BackendInfo> backends ABSL_GUARDED_BY(mu);
};

// Function-local so that static registrations in other files never see it
// unconstructed.
Registry& registry() {
  static Registry* const instance = new Registry;  // never destroyed: used during exit too
  return *instance;
}

std::string names_of(const std::vector<BackendInfo>& backends) {
  if (backends.empty()) return "none (weft was built without backends)";
  return absl::StrJoin(backends, ", ",
                       [](std::string* out, const BackendInfo& info) { out->append(info.name); });
}

}  // namespace

std::string BackendInfo::label() const {
  if (mechanism.empty() || name.find(mechanism) != std::string::npos) return name;
  return absl::StrCat(name, " (", mechanism, ")");
}

void register_backend(BackendInfo info) {
  if (info.name.empty() || !info.factory) {
    throw UsageError("weft: register_backend needs a name and a factory");
  }
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (const BackendInfo& existing : r.backends) {
    if (existing.name == info.name) {
      throw UsageError(absl::StrCat("weft: backend '", info.name, "' is already registered"));
    }
  }
  r.backends.push_back(std::move(info));
  std::stable_sort(
      r.backends.begin(), r.backends.end(), [](const BackendInfo& a, const BackendInfo& b) {
        return a.preference != b.preference ? a.preference < b.preference : a.name < b.name;
      });
}

std::vector<BackendInfo> available_backends() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  return r.backends;
}

std::string default_backend_name() {
  if (const char* env = std::getenv("WEFT_BACKEND"); env != nullptr && *env != '\0') return env;
  std::vector<BackendInfo> backends = available_backends();
  if (backends.empty()) {
    throw UnknownNameError("weft: no backend is available (weft was built without backends)");
  }
  return backends.front().name;
}

BackendInfo find_backend(std::string_view name) {
  const bool from_env = name.empty() && std::getenv("WEFT_BACKEND") != nullptr;
  const std::string chosen = name.empty() ? default_backend_name() : std::string(name);
  std::vector<BackendInfo> backends = available_backends();
  for (BackendInfo& info : backends) {
    if (info.name == chosen) return std::move(info);
  }
  throw UnknownNameError(absl::StrCat("weft: unknown backend '", chosen, "'",
                                      from_env ? " (from WEFT_BACKEND)" : "",
                                      "; available: ", names_of(backends)));
}

std::unique_ptr<Reactor> make_reactor(std::string_view name) {
  const BackendInfo info = find_backend(name);
  return std::make_unique<Reactor>(info.name, info.factory);
}

}  // namespace weft
