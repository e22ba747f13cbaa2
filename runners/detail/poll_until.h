// poll_until(): poll() for a set of descriptors until an absolute deadline at most, waking at
// the deadline or after it, never before.
//
// poll() takes whole milliseconds, so a deadline 200 us away would cost a 1 ms wait (rounded
// up: rounding down would wake early). Where there is ppoll (Linux, FreeBSD, OpenBSD) the wait
// is given in nanoseconds and ends when the deadline passes, to the kernel's timer precision.
// Elsewhere (macOS, NetBSD), or with the portable fallbacks forced (core/detail/portable.h),
// poll() with the milliseconds rounded up.
//
// Threading: any thread.
#ifndef WEFT_RUNNERS_DETAIL_POLL_UNTIL_H_
#define WEFT_RUNNERS_DETAIL_POLL_UNTIL_H_

#include <poll.h>

#include <cstddef>
#include <optional>

#include "weft/core/time.h"

namespace weft::detail {

enum class PollPrecision {
  kNanoseconds,   // ppoll; only where ppoll_supported()
  kMilliseconds,  // poll, rounded up: everywhere
};

// Whether ppoll exists here.
bool ppoll_supported();
// ppoll where there is one, unless the portable fallbacks are forced.
PollPrecision default_poll_precision();

// Waits for `fds` (poll's events and revents) until `deadline` (nullopt: no limit; a deadline
// already passed: a poll that does not block). Returns what poll() returns (-1 with EINTR if a
// signal came).
int poll_until(pollfd* fds, std::size_t count, std::optional<TimePoint> deadline,
               PollPrecision precision);

}  // namespace weft::detail

#endif  // WEFT_RUNNERS_DETAIL_POLL_UNTIL_H_
