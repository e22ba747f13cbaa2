// CPU time used by the whole process (all threads), to tell a loop that sleeps from one that
// spins: a spinning loop burns about as much CPU as wall time, an idle one next to none.
#ifndef WEFT_TESTS_RUNNERS_CPU_TIME_H_
#define WEFT_TESTS_RUNNERS_CPU_TIME_H_

#include <time.h>

#include <chrono>

namespace weft::testing {

inline std::chrono::nanoseconds process_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// The CPU time the process used while `work` ran.
template <typename Work>
std::chrono::nanoseconds cpu_time_of(Work&& work) {
  const std::chrono::nanoseconds before = process_cpu_time();
  work();
  return process_cpu_time() - before;
}

}  // namespace weft::testing

#endif  // WEFT_TESTS_RUNNERS_CPU_TIME_H_
