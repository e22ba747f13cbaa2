#include "weft/runners/detail/poll_until.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

#include "weft/core/detail/portable.h"

#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__)
#define WEFT_HAVE_PPOLL 1
#else
#define WEFT_HAVE_PPOLL 0
#endif

namespace weft::detail {

bool ppoll_supported() { return WEFT_HAVE_PPOLL != 0; }

PollPrecision default_poll_precision() {
  return ppoll_supported() && !force_portable_fallbacks() ? PollPrecision::kNanoseconds
                                                          : PollPrecision::kMilliseconds;
}

int poll_until(pollfd* fds, std::size_t count, std::optional<TimePoint> deadline,
               PollPrecision precision) {
  const auto nfds = static_cast<nfds_t>(count);
  // Measured now, after the caller's work: the kernel's relative timeout starts at the call,
  // so the wait ends at the deadline or later.
  const std::optional<Duration> left =
      deadline ? std::optional<Duration>(
                     std::max(Duration::zero(), sub_saturating(*deadline, Clock::now())))
               : std::nullopt;
#if WEFT_HAVE_PPOLL
  if (precision == PollPrecision::kNanoseconds) {
    if (!left) return ppoll(fds, nfds, nullptr, nullptr);
    const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*left).count();
    // A deadline decades away (TimePoint::max()) waits as long as a time_t of INT_MAX seconds
    // allows; waking then is harmless (the caller finds nothing due and waits again).
    const std::int64_t seconds = std::min<std::int64_t>(ns / 1'000'000'000, INT_MAX);
    const timespec wait{.tv_sec = static_cast<time_t>(seconds),
                        .tv_nsec = static_cast<long>(ns % 1'000'000'000)};
    return ppoll(fds, nfds, &wait, nullptr);
  }
#else
  (void)precision;
#endif
  int timeout_ms = -1;
  if (left) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*left);
    timeout_ms = static_cast<int>(std::clamp<std::int64_t>(ms.count(), 0, INT_MAX));
  }
  return poll(fds, nfds, timeout_ms);
}

}  // namespace weft::detail
