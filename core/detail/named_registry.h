// NamedRegistry: the one mechanism behind the backend and runner registries.
//
// Entries have a `name`, a `preference` (lower sorts first; the first is the default) and a
// `factory`. The default can be overridden by an environment variable ($WEFT_BACKEND,
// $WEFT_RUNNER). An unknown name is an UnknownNameError that lists the names that exist.
//
// Threading: every member is thread-safe. Make instances never-destroyed function-local
// statics, so that registrations from static objects in other files, and lookups during exit,
// always find them alive.
#ifndef WEFT_CORE_DETAIL_NAMED_REGISTRY_H_
#define WEFT_CORE_DETAIL_NAMED_REGISTRY_H_

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "weft/core/errors.h"

namespace weft::detail {

template <typename Info>
class NamedRegistry {
 public:
  // `kind` names entries in messages ("backend"); `env` is the variable naming the default.
  NamedRegistry(std::string kind, const char* env, std::vector<Info> builtins = {})
      : kind_(std::move(kind)), env_(env), entries_(std::move(builtins)) {
    sort();
  }

  // Throws UsageError if the name is taken or the entry has no name or factory.
  void add(Info info) {
    std::vector<Info> one;
    one.push_back(std::move(info));
    add_all(std::move(one));
  }
  // Adds every entry or none (same checks, also against each other), seen by other threads
  // all at once.
  void add_all(std::vector<Info> infos) {
    for (const Info& info : infos) {
      if (info.name.empty() || !info.factory) {
        throw UsageError(absl::StrCat("weft: register_", kind_, " needs a name and a factory"));
      }
    }
    std::lock_guard lock(mu_);
    for (auto info = infos.begin(); info != infos.end(); ++info) {
      const auto taken = [&](const Info& other) { return other.name == info->name; };
      if (std::any_of(entries_.begin(), entries_.end(), taken) ||
          std::any_of(infos.begin(), info, taken)) {
        throw UsageError(
            absl::StrCat("weft: ", kind_, " '", info->name, "' is already registered"));
      }
    }
    for (Info& info : infos) entries_.push_back(std::move(info));
    sort();
  }

  std::vector<Info> all() const {
    std::lock_guard lock(mu_);
    return entries_;
  }

  // A copy of the entry named exactly `name`, if there is one (only that entry is copied: a
  // reactor or runner is made by name, and an entry holds strings and std::functions).
  std::optional<Info> get(std::string_view name) const {
    std::lock_guard lock(mu_);
    for (const Info& info : entries_) {
      if (info.name == name) return info;
    }
    return std::nullopt;
  }
  bool empty() const {
    std::lock_guard lock(mu_);
    return entries_.empty();
  }

  // The environment variable if set, else the first entry.
  std::string default_name() const {
    if (const char* env = std::getenv(env_); env != nullptr && *env != '\0') return env;
    std::lock_guard lock(mu_);
    if (entries_.empty()) {
      throw UnknownNameError(
          absl::StrCat("weft: no ", kind_, " is available (weft was built without any)"));
    }
    return entries_.front().name;
  }

  // The entry named `name` (empty: default_name()).
  Info find(std::string_view name) const {
    const bool from_env = name.empty() && std::getenv(env_) != nullptr;
    const std::string chosen = name.empty() ? default_name() : std::string(name);
    if (std::optional<Info> info = get(chosen)) return std::move(*info);
    const std::vector<Info> entries = all();
    throw UnknownNameError(absl::StrCat(
        "weft: unknown ", kind_, " '", chosen, "'",
        from_env ? absl::StrCat(" (from ", env_, ")") : "", "; available: ",
        entries.empty() ? std::string("none")
                        : absl::StrJoin(entries, ", ", [](std::string* out, const Info& info) {
                            out->append(info.name);
                          })));
  }

 private:
  void sort() {
    std::stable_sort(entries_.begin(), entries_.end(), [](const Info& a, const Info& b) {
      return a.preference != b.preference ? a.preference < b.preference : a.name < b.name;
    });
  }

  const std::string kind_;
  const char* const env_;
  mutable std::mutex mu_;
  std::vector<Info> entries_;  // guarded by mu_; sorted by preference, then name
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_NAMED_REGISTRY_H_
