// Time: the one clock every weft reactor uses.
//
// weft measures time on std::chrono::steady_clock (CLOCK_MONOTONIC on Linux) in
// nanoseconds, whatever the backend's own clock is; backends translate
// deadlines to their native timers and may fire late, never early, because the
// reactor re-checks the clock before running a timer.
//
// Threading: plain value types; safe anywhere.
#ifndef WEFT_CORE_TIME_H_
#define WEFT_CORE_TIME_H_

#include <chrono>

namespace weft {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

}  // namespace weft

#endif  // WEFT_CORE_TIME_H_
