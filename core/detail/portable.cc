#include "weft/core/detail/portable.h"

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"

namespace weft::detail {
namespace {

// What $WEFT_PORTABLE said, read once (a function-local static: thread-safe, and never a
// getenv() racing a setenv() after the first call).
struct FromEnv {
  std::optional<bool> forced;  // nullopt: not a valid value
  std::string raw;             // for the error message
};

const FromEnv& read_environment() {
  static const FromEnv value = [] {
    const char* env = std::getenv("WEFT_PORTABLE");
    if (env == nullptr) return FromEnv{.forced = false, .raw = {}};
    return FromEnv{.forced = parse_portable_switch(env), .raw = env};
  }();
  return value;
}

// A test's override: -1 none, 0 off, 1 on.
std::atomic<int> g_override{-1};

}  // namespace

std::optional<bool> parse_portable_switch(std::string_view value) {
  std::string lower(value);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower.empty() || lower == "0" || lower == "false" || lower == "no" || lower == "off") {
    return false;
  }
  return std::nullopt;
}

bool force_portable_fallbacks() {
  if (const int forced = g_override.load(std::memory_order_relaxed); forced >= 0) {
    return forced == 1;
  }
  const FromEnv& env = read_environment();
  if (env.forced) return *env.forced;
  throw UsageError(absl::StrCat("weft: WEFT_PORTABLE=", env.raw,
                                " is not a switch (1, true, yes, on; or 0, false, no, off)"));
}

void override_portable_fallbacks(std::optional<bool> forced) {
  g_override.store(forced ? (*forced ? 1 : 0) : -1, std::memory_order_relaxed);
}

}  // namespace weft::detail
