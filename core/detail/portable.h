// Internal: the switch that forces weft's portable fallbacks on a platform that has the
// faster, platform-specific call, so that CI runs the code paths of macOS and the BSDs on
// Linux (docs/portability.md lists them: eventfd -> pipe, timerfd -> the library's own timer,
// accept4 -> accept + fcntl, ppoll -> poll, ...).
//
// $WEFT_PORTABLE: "1", "true", "yes" or "on" forces the fallbacks; unset, empty, "0",
// "false", "no" or "off" does not (case-insensitive). Read once, on the first call; objects
// made afterwards follow it (an object keeps the path it was made with). Any other value is a
// UsageError from every call, so that a misspelt switch never silently tests nothing.
//
// Threading: any thread.
#ifndef WEFT_CORE_DETAIL_PORTABLE_H_
#define WEFT_CORE_DETAIL_PORTABLE_H_

#include <optional>
#include <string_view>

namespace weft::detail {

// True when the portable fallbacks are forced ($WEFT_PORTABLE, or a test's override).
bool force_portable_fallbacks();

// What a value of $WEFT_PORTABLE means (nullopt: not a valid value). Exposed for tests.
std::optional<bool> parse_portable_switch(std::string_view value);

// For tests: what force_portable_fallbacks() returns from now on, whatever the environment
// says (nullopt: back to $WEFT_PORTABLE). Objects already made keep their path.
void override_portable_fallbacks(std::optional<bool> forced);

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_PORTABLE_H_
