// Helpers for the timer tests of tests/backends/ (the timer source for reactors made in a scope
// is chosen with tests/testing/scoped_env.h): a set of timers at random deadlines that counts the
// ones that ran before their deadline (weft promises none).
#ifndef WEFT_TESTS_BACKENDS_TIMER_CHECKS_H_
#define WEFT_TESTS_BACKENDS_TIMER_CHECKS_H_

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>

#include "tests/testing/scoped_env.h"
#include "weft/core/reactor.h"
#include "weft/core/time.h"

namespace weft::testing {

// Every WEFT_TIMER value a test should cover: the default (a timerfd on Linux) and the
// library's own timer (the portable fallback).
inline constexpr const char* kTimerSources[] = {"auto", "native"};

// `n` timers on `reactor`, due from 0 to 5 ms from now at nanosecond offsets (a third under a
// millisecond). Must outlive the reactor's run; loop thread.
class RandomTimers {
 public:
  RandomTimers(Reactor& reactor, int n, unsigned seed) : n_(n) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::int64_t> sub_ms(0, 999'999);
    std::uniform_int_distribution<std::int64_t> longer(1'000'000, 5'000'000);
    for (int i = 0; i < n; ++i) {
      const TimePoint deadline = Clock::now() + Duration(i % 3 == 0 ? sub_ms(rng) : longer(rng));
      reactor.call_at(deadline, [this, deadline] {
        ++ran_;
        if (Clock::now() < deadline) ++early_;
      });
    }
  }
  bool all_ran() const { return ran_ == n_; }
  int ran() const { return ran_; }
  int early() const { return early_; }

 private:
  const int n_;
  int ran_ = 0;
  int early_ = 0;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_BACKENDS_TIMER_CHECKS_H_
