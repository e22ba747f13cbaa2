// Time: the one clock every weft reactor uses, and arithmetic on it that cannot overflow.
//
// weft measures time on std::chrono::steady_clock (CLOCK_MONOTONIC on Linux) in
// nanoseconds, whatever the backend's own clock is; backends translate
// deadlines to their native timers and may fire late, never early, because the
// reactor re-checks the clock before running a timer.
//
// Every deadline weft computes goes through add_saturating(): a delay of
// Duration::max() means "never" (TimePoint::max()), not a wrapped-around "due
// now", and a deadline near TimePoint::min() is simply in the past.
//
// Threading: plain value types and pure functions; safe anywhere.
#ifndef WEFT_CORE_TIME_H_
#define WEFT_CORE_TIME_H_

#include <chrono>

namespace weft {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

// `when + delay`, clamped to [TimePoint::min(), TimePoint::max()].
constexpr TimePoint add_saturating(TimePoint when, Duration delay) {
  const auto t = when.time_since_epoch().count();
  const auto d = delay.count();
  using Rep = Duration::rep;
  Rep sum;
  if (__builtin_add_overflow(t, d, &sum)) return d > 0 ? TimePoint::max() : TimePoint::min();
  return TimePoint(Duration(sum));
}

// `later - earlier`, clamped to [Duration::min(), Duration::max()].
constexpr Duration sub_saturating(TimePoint later, TimePoint earlier) {
  using Rep = Duration::rep;
  Rep diff;
  if (__builtin_sub_overflow(later.time_since_epoch().count(), earlier.time_since_epoch().count(),
                             &diff)) {
    return later > earlier ? Duration::max() : Duration::min();
  }
  return Duration(diff);
}

}  // namespace weft

#endif  // WEFT_CORE_TIME_H_
